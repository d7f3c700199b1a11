"""Run a few independent I/O calls side by side (registry requests spend their time waiting).

Used where one step needs several small requests whose order does not matter, such as the
uploads of an artifact's evidence. Every call finishes (or fails) before this returns; the
first failure, in submission order, is re-raised with its own class.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Final, TypeVar

T = TypeVar("T")

#: At most this many calls in flight: enough to hide request latency, few enough for 2 cores.
MAX_WORKERS: Final = 4


def run_all(calls: Sequence[Callable[[], T]], *, workers: int = MAX_WORKERS) -> list[T]:
    """Results of ``calls`` in order; runs inline when there is only one."""
    if len(calls) <= 1 or workers <= 1:
        return [call() for call in calls]
    with ThreadPoolExecutor(min(workers, len(calls)), thread_name_prefix="digestgate-io") as pool:
        # Each call runs in a copy of the caller's context (a promotion's deferred checks).
        futures = [pool.submit(contextvars.copy_context().run, call) for call in calls]
    errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        raise errors[0]  # type: ignore[misc]
    return [f.result() for f in futures]
