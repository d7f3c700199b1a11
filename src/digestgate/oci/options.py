"""How to reach registries: the options every registry request of a session obeys.

A leaf module: the registry client and the store opener both read it, and it imports
nothing of either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StoreOptions:
    """How to reach registries.

    ``insecure_hosts``: hosts (``host[:port]``) reached over plain HTTP even though they are
    not loopback. Loopback hosts (``localhost``, ``127.0.0.0/8``, ``[::1]``) always use plain
    HTTP unless listed in ``tls_hosts``. ``ca_bundle``: a PEM file of extra trusted CAs.

    Deadlines (docs/reliability.md): an answer's headers must arrive within ``timeout``
    seconds, and then every ``timeout``-second window of a body must carry at least
    ``min_rate * timeout`` bytes. ``deadline`` bounds all registry work of a session
    (seconds from :class:`Stores` creation); None means no overall bound. ``retries``
    further attempts follow a transient failure, ``backoff`` seconds apart, doubling.
    """

    insecure_hosts: frozenset[str] = frozenset()
    tls_hosts: frozenset[str] = frozenset()
    ca_bundle: str | None = None
    timeout: float = 30.0
    min_rate: float = 16 * 1024
    deadline: float | None = None
    retries: int = 4
    backoff: float = 0.5
    docker_config: str | None = None
    transport: Any = field(default=None, compare=False)
    """An ``httpx.BaseTransport`` to use instead of the network (tests, fault injection)."""
