"""Open image stores for locations; one registry client per host, shared by its repositories.

Heavy modules (the HTTP client) are imported only when a registry location is opened.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING

from digestgate.oci.options import StoreOptions
from digestgate.oci.store import ImageStore
from digestgate.reference import ImageReference, LayoutReference, Location

if TYPE_CHECKING:
    from digestgate.oci.registry.client import RegistryClient


class Stores:
    """A session of open stores: use as a context manager and open locations through it."""

    def __init__(self, options: StoreOptions | None = None) -> None:
        self.options = options or StoreOptions()
        #: When all registry work of this session must be done (``time.monotonic``).
        self.deadline_at = (
            None if self.options.deadline is None else time.monotonic() + self.options.deadline
        )
        self._clients: dict[str, RegistryClient] = {}
        self._open: dict[str, ImageStore] = {}
        # Steps open stores from worker threads: one client per registry and one store per
        # repository, whichever thread asks first.
        self._lock = threading.RLock()

    def client(self, registry: str) -> RegistryClient:
        """The shared client for ``registry`` (``host[:port]``)."""
        with self._lock:
            client = self._clients.get(registry)
            if client is None:
                from digestgate.oci.registry.client import RegistryClient

                client = RegistryClient(registry, self.options, deadline_at=self.deadline_at)
                self._clients[registry] = client
            return client

    def open(self, location: Location, *, create: bool = False) -> ImageStore:
        """The store for a location's repository; ``create`` makes a missing layout.

        One store per repository for the whole session, so what one step fetched and
        verified (the gate confirming a manifest) is not fetched again by the next (the
        promotion copying it).
        """
        key = location.name
        with self._lock:
            store = self._open.get(key)
            if store is not None:
                return store
            if isinstance(location, LayoutReference):
                from digestgate.oci.layout import LayoutStore

                store = LayoutStore.open(location.path, create=create)
            else:
                assert isinstance(location, ImageReference)
                store = self.client(location.registry).repository(location.repository)
            self._open[key] = store
            return store

    def close(self) -> None:
        """Close every store and client opened through this session."""
        for store in self._open.values():
            store.close()
        self._open.clear()
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def __enter__(self) -> Stores:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
