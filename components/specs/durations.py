"""Durations written the way the Docker provider reads them back.

pulumi-docker (terraform-provider-docker) stores a container's health-check durations as Go's
`time.Duration.String()` prints them: 120 seconds is "2m0s", not "120s". An input written any
other way differs from the state on every refresh, so each preview shows a change.
"""

from __future__ import annotations


def go_duration(seconds: int) -> str:
    """Whole seconds as Go prints a Duration: 0 -> '0s', 90 -> '1m30s', 3600 -> '1h0m0s'."""
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0:
        raise ValueError(f"expected a whole, non-negative number of seconds, got {seconds!r}")
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
