"""The two ways a migration stops, and keeping passwords out of what we print."""

from __future__ import annotations


class MigrationError(Exception):
    """Bad input or a refused operation: nothing was written (exit code 2)."""

    exit_code = 2


class VerificationError(MigrationError):
    """The copy finished but the target does not match the source (exit code 1)."""

    exit_code = 1

    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = "\n  ".join(problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"verification failed ({len(problems)} problem(s)):\n  {shown}{more}")


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***, safe to print."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not parseable: print nothing of it rather than a secret
        return "<unparseable URL>"


def redact(text: str, *secrets: str | None) -> str:
    """`text` with every given secret replaced, for driver messages we pass on."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
