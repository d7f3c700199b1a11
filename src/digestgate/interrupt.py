"""Cancellation on SIGTERM and Ctrl-C: stop streaming, clean up, leave nothing half-written.

CI systems cancel a job with SIGTERM (then SIGKILL after a grace period). The command-line
entry point installs :func:`install`; the signal handler raises :class:`Interrupted` in the
main thread and sets a flag that transfers in worker threads check between chunks
(:func:`check`), so every partial file is removed by the writer's own clean-up and no tag
is moved after the signal. Signals are process-wide, so the flag is too.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Final

_requested: Final = threading.Event()


class Interrupted(KeyboardInterrupt):
    """The process was asked to stop (SIGTERM or SIGINT)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def check() -> None:
    """Raise :class:`Interrupted` when a stop was requested (called between chunks)."""
    if _requested.is_set():
        raise Interrupted(signal.SIGTERM)


def requested() -> bool:
    """True once SIGTERM arrived."""
    return _requested.is_set()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _requested.set()
    raise Interrupted(signum)


def install() -> None:
    """Handle SIGTERM like Ctrl-C (only possible from the main thread)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def reset() -> None:
    """Forget a request (tests run several commands in one process)."""
    _requested.clear()
