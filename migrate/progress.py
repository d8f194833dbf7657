"""A small progress bar: redrawn in place on a terminal, a line every few seconds otherwise
(ECS and CI logs would otherwise fill with carriage returns)."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    def __init__(self, total: int, label: str = "rows", *, stream: TextIO | None = None,
                 enabled: bool = True, width: int = 30, log_interval: float = 5.0):
        self.total = max(total, 0)
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.width = width
        self.log_interval = log_interval
        self.done = 0
        self.detail = ""
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._lock = threading.Lock()  # artifact uploads advance from several threads
        self._tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()

    def advance(self, n: int, detail: str | None = None) -> None:
        with self._lock:
            self.done += n
            if detail is not None:
                self.detail = detail
            self._draw(final=False)

    def set_detail(self, detail: str) -> None:
        self.detail = detail
        self._draw(final=False)

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        fraction = self.done / self.total if self.total else 1.0
        filled = int(self.width * min(fraction, 1.0))
        bar = "#" * filled + "-" * (self.width - filled)
        rate = self.rate
        eta = _duration((self.total - self.done) / rate) if rate > 0 and self.done < self.total else "-"
        text = (f"[{bar}] {fraction:6.1%} {self.done:,}/{self.total:,} {self.label} "
                f"{rate:,.0f}/s ETA {eta}")
        return f"{text} {self.detail}".rstrip()

    def _draw(self, final: bool) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self._tty:
            if final or now - self._last_draw >= 0.1:
                self.stream.write("\r" + self.line()[:200].ljust(100) + ("\n" if final else ""))
                self.stream.flush()
                self._last_draw = now
        elif final or now - self._last_draw >= self.log_interval:
            self.stream.write(self.line() + "\n")
            self.stream.flush()
            self._last_draw = now

    def close(self) -> None:
        self._draw(final=True)
