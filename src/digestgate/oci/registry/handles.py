"""What the registry client's parts need of each other, as structural types.

The transport sends requests and calls the authenticator on a 401; the authenticator asks
the token service through the transport. A repository delegates uploads, blob reads and
referrers to their modules, which call back into it. Each part names the narrow face it
uses here (a :class:`~typing.Protocol`) instead of importing the class that has it, so the
imports between the registry modules point one way only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Literal, Protocol, runtime_checkable

import httpx

from digestgate.digest import Digest
from digestgate.errors import RegistryError
from digestgate.oci.manifest import Manifest
from digestgate.oci.options import StoreOptions
from digestgate.oci.registry.homes import BlobHomes
from digestgate.oci.registry.wallclock import Watch

#: The token scopes one request needs (``repository:NAME:pull`` and the like).
Scopes = tuple[str, ...]
ReferrersMode = Literal["api", "tag-schema"]


class AuthHandle(Protocol):
    """The authenticator of one registry host (:class:`.auth.Authenticator`)."""

    def needs_token(self, scopes: Scopes) -> bool: ...


class TransportHandle(Protocol):
    """The HTTP session of one registry host (:class:`.transport.Transport`)."""

    registry: str
    options: StoreOptions
    base: httpx.URL
    sent: int

    @property
    def auth(self) -> AuthHandle: ...

    def url(self, path: str) -> httpx.URL: ...

    def client_for(self, url: httpx.URL | str) -> httpx.Client: ...

    def watch(self) -> Watch: ...

    def check_deadline(self, what: str) -> None: ...

    def pause(self, attempt: int, retry_after: float | None, what: str) -> None: ...

    def lost(
        self, exc: Exception, watch: Watch, what: str, *, body: bool = False
    ) -> RegistryError: ...

    def read_capped(
        self, response: httpx.Response, cap: int, *, truncate: bool = False
    ) -> bytes: ...

    def read_error_body(self, response: httpx.Response) -> bytes: ...

    def stream(self, response: httpx.Response) -> Iterator[bytes]: ...

    def fail(self, response: httpx.Response) -> RegistryError: ...

    def send(
        self,
        method: str,
        url: httpx.URL,
        *,
        scopes: Scopes,
        headers: Mapping[str, str] | None = None,
        content: bytes | Iterable[bytes] | None = None,
        follow_redirects: bool = False,
        idempotent: bool = True,
    ) -> httpx.Response: ...

    def fetch(
        self,
        method: str,
        url: httpx.URL,
        *,
        scopes: Scopes,
        cap: int,
        headers: Mapping[str, str] | None = None,
        absent: tuple[int, ...] = (),
        check: Callable[[httpx.Response], None] | None = None,
    ) -> tuple[httpx.Response, bytes] | None: ...


class ClientHandle(Protocol):
    """The client shared by the repositories of one host (:class:`.client.RegistryClient`)."""

    registry: str
    options: StoreOptions
    chunk_threshold: int
    chunk_size: int
    sleep: Callable[[float], None]
    referrers_mode: ReferrersMode | None
    homes: BlobHomes

    @property
    def transport(self) -> TransportHandle: ...


@runtime_checkable
class RepositoryHandle(Protocol):
    """One repository of a registry (:class:`.repository.RegistryRepository`)."""

    name: str
    pull: Scopes
    push: Scopes

    @property
    def client(self) -> ClientHandle: ...

    @property
    def transport(self) -> TransportHandle: ...

    def url(self, path: str) -> httpx.URL: ...

    def has_blob(self, digest: Digest) -> bool: ...

    def fetch_manifest(self, reference: str | Digest) -> Manifest: ...

    def put_raw_manifest(
        self, reference: str, raw: bytes, media_type: str, digest: Digest
    ) -> httpx.Headers: ...
