"""Copy progress on a terminal: the CLI's renderer for the library's progress events."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from digestgate.promotion.copy import human_size


class StderrProgress:
    """A one-line byte counter on a terminal's stderr; silent when stderr is not a TTY."""

    def __init__(
        self, stream: TextIO | None = None, *, label: str = "copying", interval: float = 0.2
    ) -> None:
        """``stream`` defaults to ``sys.stderr``; redraws at most every ``interval`` s."""
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = self._stream.isatty()
        self._label = label
        self._interval = interval
        self._lock = threading.Lock()
        self._total = 0
        self._done = 0
        self._last = 0.0

    def start(self, total_bytes: int) -> None:
        """Begin counting towards ``total_bytes``."""
        with self._lock:
            self._total, self._done, self._last = total_bytes, 0, 0.0
        self._render(force=True)

    def advance(self, n: int) -> None:
        """Count ``n`` more bytes; redraws when the interval has passed."""
        with self._lock:
            self._done += n
        self._render(force=False)

    def done(self) -> None:
        """Draw the final state and end the line."""
        self._render(force=True)
        if self._enabled:
            self._stream.write("\n")
            self._stream.flush()

    def _render(self, *, force: bool) -> None:
        if not self._enabled:
            return
        with self._lock:
            now = time.monotonic()
            if not force and now - self._last < self._interval:
                return
            self._last = now
            done, total = min(self._done, self._total), self._total
            percent = 100 * done // total if total else 100
            self._stream.write(
                f"\r{self._label}: {human_size(done)} / {human_size(total)} ({percent}%)\x1b[K"
            )
            self._stream.flush()
