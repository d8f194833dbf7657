"""Progress of the row copy and the artifact upload, drawn by tqdm.

On a terminal tqdm redraws one line in place. Anywhere else (CI, ECS/CloudWatch logs) the
same line is written as a plain ASCII log line, newline-terminated and without carriage
returns, at most once every `log_interval` seconds plus one at the start and one at the end:
logs would otherwise fill with redraws. Uploads advance from several threads; tqdm's
`update` is not atomic, so this adapter serialises it.

tqdm is optional at run time: the MLflow image, where the docs run the migration in the Docker
dev stack and in a one-off ECS task, does not ship it. Without it the migration runs the same,
only without progress lines (and says so once).
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

try:
    from tqdm import tqdm as _tqdm
except ImportError:
    _tqdm = None

if _tqdm is not None:

    class _Bar(_tqdm):
        # No monitor thread: it only tunes tqdm's automatic `miniters`, which we fix at 1
        # so that time alone (mininterval) decides when a line is drawn.
        monitor_interval = 0


_missing_noted = False


class _LogLines:
    """A file for tqdm that turns its in-place redraws ("\\r" + line + padding) into log lines."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").rstrip()
        if line:  # tqdm's closing "\n" and its empty probe writes carry no line
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Progress:
    """`advance(n, detail)` from any thread, `close()` once at the end (idempotent).

    `label` "bytes" shows sizes (K, M, G: binary prefixes); anything else is the unit counted.
    Nothing is drawn when disabled or when there is nothing to do (`total` <= 0).
    """

    def __init__(
        self,
        total: int,
        label: str = "rows",
        *,
        stream: TextIO | None = None,
        enabled: bool = True,
        log_interval: float = 5.0,
    ):
        global _missing_noted
        stream = stream or sys.stderr
        self._lock = threading.Lock()
        self._bar = None
        if not enabled or total <= 0:
            return
        if _tqdm is None:
            if not _missing_noted:
                _missing_noted = True
                stream.write("note: no progress is shown: tqdm is not installed (see docs/migrate.md)\n")
                stream.flush()
            return
        terminal = _is_terminal(stream)
        size = label == "bytes"
        self._bar = _Bar(
            total=total,
            file=stream if terminal else _LogLines(stream),
            unit="B" if size else label,
            # Sizes scaled (12.3M/45.6M); counts exact, as the verification will compare them.
            unit_scale=size,
            unit_divisor=1024,
            bar_format=None if size else "{l_bar}{bar}| {n:,}/{total:,} [{elapsed}<{remaining}, {rate_fmt}{postfix}]",
            miniters=1,  # every advance may draw; mininterval rate-limits it
            mininterval=0.1 if terminal else log_interval,
            dynamic_ncols=terminal,  # follow the terminal's width
            ncols=None if terminal else 100,
            ascii=None if terminal else True,  # log lines: "#", no block characters
            leave=True,
        )

    @property
    def done(self) -> int:
        return self._bar.n if self._bar is not None else 0

    def advance(self, n: int, detail: str | None = None) -> None:
        """Count `n` more; `detail` (e.g. the table being copied) is shown after the numbers."""
        if self._bar is None:
            return
        with self._lock:
            if detail is not None and detail != self._bar.postfix:
                self._bar.set_postfix_str(detail, refresh=False)
            self._bar.update(n)

    def close(self) -> None:
        """Draw the final line and end it with a newline."""
        if self._bar is None:
            return
        with self._lock:
            self._bar.close()
