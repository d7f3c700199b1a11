"""The registry client: one HTTP connection pool per registry host, shared by its repositories.

``Stores.client(registry)`` builds it; ``repository(name)`` gives the
:class:`~digestgate.oci.store.ImageStore` for one repository. The client also remembers what
it learned about the registry: how to authenticate, whether referrers come from the
Referrers API or from the ``sha256-<hex>`` tag-schema fallback (``referrers_mode``), and
which repository holds each blob it put or found (``homes``, for mounting).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Final

from digestgate.errors import InvalidReferenceError
from digestgate.oci.options import StoreOptions
from digestgate.oci.registry.credentials import Credentials, lookup_credentials
from digestgate.oci.registry.handles import ReferrersMode
from digestgate.oci.registry.homes import BlobHomes
from digestgate.oci.registry.transport import Transport
from digestgate.reference import parse_registry_reference

if TYPE_CHECKING:
    from digestgate.oci.registry.repository import RegistryRepository


#: Blobs larger than this go up in chunks (PATCH), smaller ones in one PUT.
DEFAULT_CHUNK_THRESHOLD: Final = 64 * 1024 * 1024
DEFAULT_CHUNK_SIZE: Final = 16 * 1024 * 1024


class RegistryClient:
    """Access to one registry (``host[:port]``) under the given options."""

    def __init__(
        self,
        registry: str,
        options: StoreOptions,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        environ: Mapping[str, str] | None = None,
        chunk_threshold: int = DEFAULT_CHUNK_THRESHOLD,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        deadline_at: float | None = None,
    ) -> None:
        """``deadline_at`` (on ``clock``) ends all registry work; by default it is
        ``options.deadline`` seconds from now, when that is set."""
        self.registry = registry
        self.options = options
        self.chunk_threshold = chunk_threshold
        self.chunk_size = chunk_size
        self.sleep = sleep
        #: "api" or "tag-schema" once the first referrers lookup found out; None before.
        self.referrers_mode: ReferrersMode | None = None
        #: Where this run put or found blobs, so other repositories can mount them.
        self.homes = BlobHomes()

        def credentials() -> Credentials | None:
            return lookup_credentials(
                registry, docker_config=options.docker_config, environ=environ
            )

        if deadline_at is None and options.deadline is not None:
            deadline_at = clock() + options.deadline
        self.transport = Transport(
            registry, options, credentials, sleep=sleep, clock=clock, deadline_at=deadline_at
        )

    def repository(self, name: str) -> RegistryRepository:
        """The store for repository ``name`` on this registry."""
        from digestgate.oci.registry.repository import RegistryRepository

        parsed = parse_registry_reference(f"{self.registry}/{name}")
        if parsed.repository != name or parsed.tag or parsed.digest:
            raise InvalidReferenceError(
                f"invalid repository name {name[:140]!r}",
                hint="lowercase path components joined by '/', e.g. org/app/backend",
            )
        return RegistryRepository(self, name)

    def close(self) -> None:
        """Close the connection pool."""
        self.transport.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
