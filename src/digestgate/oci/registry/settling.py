"""Checks of referrers-index writes, deferred to the end of a scope so their pauses overlap.

A write to a ``sha256-<hex>`` fallback index is checked after a settle pause (see
:mod:`digestgate.oci.registry.referrers`). Inside :meth:`digestgate.oci.open.Stores.settling`
the check is not waited for where the write happened: it is queued here with the time it is
due, and the scope's end waits once, until the latest is due, then runs every check. Each
check therefore still comes at least its own pause after its write (later is only safer:
a writer that dropped our entries meanwhile is caught all the same), while other artifacts'
copies fill the pauses. A check that finds entries missing writes them again, waiting for
its own pause and check as outside a scope.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

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
