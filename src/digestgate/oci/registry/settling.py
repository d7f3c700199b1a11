"""Checks of referrers-index writes, deferred to the end of a scope so their pauses overlap.

A write to a ``sha256-<hex>`` fallback index is checked after a settle pause (see
:mod:`digestgate.oci.registry.referrers`). Inside :func:`deferred_checks` the check is not
waited for where the write happened: it is queued with the time it is due on the scope's
own :class:`Settling`, and the scope's end waits once, until the latest is due, then runs
every check. The scope is a context variable: it follows the promotion into the threads
:func:`~digestgate.concurrency.run_all` starts, and two promotions (one ``Stores`` or not)
or nested scopes never share or drop each other's checks. Each
check therefore still comes at least its own pause after its write (later is only safer:
a writer that dropped our entries meanwhile is caught all the same), while other artifacts'
copies fill the pauses. A check that finds entries missing writes them again, waiting for
its own pause and check as outside a scope.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from digestgate.concurrency import run_all


class Settling:
    """The deferred checks of one scope."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._checks: list[tuple[float, Callable[[], None]]] = []

    def add(self, due: float, check: Callable[[], None]) -> None:
        """Queue ``check``, to run no earlier than ``due`` (on the clock given to :meth:`run`)."""
        with self._lock:
            self._checks.append((due, check))

    def run(
        self, *, sleep: Callable[[float], None], clock: Callable[[], float], workers: int
    ) -> None:
        """Wait until every check is due, then run them all (``workers`` at once)."""
        with self._lock:
            checks, self._checks = self._checks, []
        if not checks:
            return
        wait = max(due for due, _ in checks) - clock()
        if wait > 0:
            sleep(wait)
        run_all([check for _, check in checks], workers=workers)


_CURRENT: ContextVar[Settling | None] = ContextVar("digestgate_settling", default=None)


def current() -> Settling | None:
    """The innermost open scope's checks, or None outside :func:`deferred_checks`."""
    return _CURRENT.get()


@contextmanager
def deferred_checks(workers: int) -> Iterator[None]:
    """Defer the checks of referrers-index writes made inside the block to its end.

    The end waits once, until the latest check is due, then runs them all (``workers`` at
    once); a check that fails raises there. A block left by an exception runs none (its
    run has failed).
    """
    settling = Settling()
    token = _CURRENT.set(settling)
    try:
        yield
    finally:
        _CURRENT.reset(token)
    settling.run(sleep=time.sleep, clock=time.monotonic, workers=workers)
