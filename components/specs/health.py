"""A container health check, in the units both Docker and ECS take."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HealthCheck:
    # Exec form, run inside the container (no shell).
    command: tuple[str, ...]
    interval_seconds: int = 10
    timeout_seconds: int = 5
    retries: int = 6
    start_period_seconds: int = 30
    # "CMD" (exec form) or "CMD-SHELL" (one string run by /bin/sh).
    kind: str = "CMD"

    @property
    def test(self) -> list[str]:
        """Docker's `test` / ECS's `command` list."""
        return [self.kind, *self.command]
