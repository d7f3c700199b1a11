"""Blob uploads and cross-repository mounts (distribution-spec 1.1 "Pushing blobs").

Monolithic: ``POST /blobs/uploads/`` then one streaming ``PUT <Location>&digest=`` whose
``Content-Length`` comes from the descriptor. Chunked (blobs above the client's threshold):
``PATCH`` with ``Content-Range`` and the newest ``Location`` each time, then ``PUT ?digest=``.
``Location`` is used verbatim (absolute or relative). The bytes sent are hashed and counted
on the way: more bytes than the descriptor says stop the upload at once, and a wrong digest
or size is detected before the upload is committed. A failed session is abandoned (DELETE)
and, when the source can be read again, the whole upload restarts; a chunk is never resent.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Final

import httpx

from digestgate.digest import DigestHasher
from digestgate.errors import IntegrityError, NotFoundError, RegistryError
from digestgate.oci.manifest import Descriptor
from digestgate.oci.registry.auth import mount_scopes
from digestgate.oci.registry.transport import header_int, join_url
from digestgate.oci.store import ImageStore

if TYPE_CHECKING:
    from digestgate.oci.registry.repository import RegistryRepository

log = logging.getLogger("digestgate.registry")

OCTET: Final = "application/octet-stream"


def with_digest(location: httpx.URL, descriptor: Descriptor) -> httpx.URL:
    """``Location`` plus ``digest=``: ``&`` when it already has a query (specs 5.4)."""
    text = str(location)
    sep = "&" if "?" in text else "?"
    return httpx.URL(f"{text}{sep}digest={descriptor.digest}")


def _location(response: httpx.Response) -> httpx.URL:
    value = response.headers.get("location")
    if not value:
        raise RegistryError(
            f"{response.request.method} upload: the registry answered without a Location",
            hint="the registry does not follow the distribution spec for uploads",
        )
    return join_url(response, value, "upload Location")


def _verified(chunks: Iterable[bytes], descriptor: Descriptor, what: str) -> Iterator[bytes]:
    """Pass chunks through, refusing excess bytes at once and a wrong digest at the end."""
    hasher = DigestHasher(descriptor.digest.algorithm)
    for chunk in chunks:
        if not chunk:
            continue
        if hasher.size + len(chunk) > descriptor.size:
            raise IntegrityError(
                f"{what}: the source has more than {descriptor.size} bytes",
                hint="the source content does not match its descriptor",
            )
        hasher.update(chunk)
        yield bytes(chunk)
    hasher.check(descriptor.digest, descriptor.size, what=what)


class _Pieces:
    """Cuts one chunk stream into consecutive pieces, each streamed as it is sent.

    Only the chunk being sent is held (a chunk crossing a piece boundary is split), so a
    chunked upload needs no more memory than a monolithic one, whatever the piece size.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = b""

    def take(self, n: int) -> Iterator[bytes]:
        """Yield the next ``n`` bytes (fewer only when the stream ends)."""
        while n > 0:
            if not self._pending:
                self._pending = next(self._chunks, b"")
                if not self._pending:
                    return
            chunk, self._pending = self._pending[:n], self._pending[n:]
            n -= len(chunk)
            yield chunk

    def finish(self) -> None:
        """Read to the end, so the verifying iterator checks the digest; refuse extra bytes."""
        if self._pending or any(True for chunk in self._chunks if chunk):
            raise IntegrityError(
                "the source has more bytes than its descriptor says",
                hint="the source content does not match its descriptor",
            )


def cancel(repo: RegistryRepository, location: httpx.URL) -> None:
    """Abandon an upload session; failures are ignored (distribution-spec main)."""
    try:
        response = repo.transport.send("DELETE", location, scopes=repo.push, idempotent=False)
        response.close()
    except RegistryError as exc:
        log.debug("could not cancel an upload session: %s", exc)


def _start(repo: RegistryRepository) -> tuple[httpx.URL, int]:
    t = repo.transport
    response = t.send(
        "POST", repo.url("blobs/uploads/"), scopes=repo.push, headers={"Content-Length": "0"}
    )
    try:
        if response.status_code != 202:
            raise t.fail(response)
        minimum = header_int(response.headers.get("oci-chunk-min-length"))
        return _location(response), minimum or 0
    finally:
        response.close()


def _commit(
    repo: RegistryRepository,
    location: httpx.URL,
    descriptor: Descriptor,
    content: bytes | Iterable[bytes],
    size: int,
) -> None:
    """The closing ``PUT <location>&digest=`` (with the whole body, or none); expect 201."""
    t = repo.transport
    try:
        response = t.send(
            "PUT",
            with_digest(location, descriptor),
            scopes=repo.push,
            headers={"Content-Type": OCTET, "Content-Length": str(size)},
            content=content,
            idempotent=False,
        )
    except BaseException:
        cancel(repo, location)
        raise
    try:
        if response.status_code != 201:
            raise t.fail(response)
    finally:
        response.close()


def _monolithic(repo: RegistryRepository, descriptor: Descriptor, chunks: Iterable[bytes]) -> None:
    location, _ = _start(repo)
    what = f"blob {descriptor.digest}"
    _commit(repo, location, descriptor, _verified(chunks, descriptor, what), descriptor.size)


def _chunked(repo: RegistryRepository, descriptor: Descriptor, chunks: Iterable[bytes]) -> None:
    t = repo.transport
    location, minimum = _start(repo)
    size = max(repo.client.chunk_size, minimum, 1)
    what = f"blob {descriptor.digest}"
    offset = 0
    try:
        pieces = _Pieces(_verified(chunks, descriptor, what))
        while offset < descriptor.size:
            length = min(size, descriptor.size - offset)
            end = offset + length - 1
            response = t.send(
                "PATCH",
                location,
                scopes=repo.push,
                headers={
                    "Content-Type": OCTET,
                    "Content-Range": f"{offset}-{end}",
                    "Content-Length": str(length),
                },
                content=pieces.take(length),
                idempotent=False,
            )
            try:
                if response.status_code != 202:
                    raise t.fail(response)
                location = _location(response)
            finally:
                response.close()
            offset = end + 1
        pieces.finish()
    except BaseException:
        cancel(repo, location)
        raise
    _commit(repo, location, descriptor, b"", 0)


def _restartable(exc: RegistryError) -> bool:
    if isinstance(exc, NotFoundError):
        return exc.code == "BLOB_UPLOAD_UNKNOWN"  # the session expired or was lost
    return exc.status is None or exc.status == 429 or exc.status >= 500


def put_blob(repo: RegistryRepository, descriptor: Descriptor, chunks: Iterable[bytes]) -> None:
    """Upload a blob; restart the session on a transient failure when ``chunks`` is replayable.

    A one-shot iterator cannot be read twice, so its upload is attempted once.
    """
    replayable = not isinstance(chunks, Iterator)
    attempts = 1 + max(0, repo.client.options.retries) if replayable else 1
    chunked = descriptor.size > repo.client.chunk_threshold
    for attempt in range(1, attempts + 1):
        try:
            if chunked:
                _chunked(repo, descriptor, chunks)
            else:
                _monolithic(repo, descriptor, chunks)
            return
        except IntegrityError:
            raise
        except RegistryError as exc:
            if not _restartable(exc):
                raise
            if repo.has_blob(descriptor.digest):
                return  # an earlier attempt was committed before its answer was lost
            if attempt >= attempts:
                raise
            delay = repo.client.options.backoff * (2 ** (attempt - 1))
            log.debug("restarting the upload of %s: %s", descriptor.digest.short, exc)
            repo.client.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter


def mount_blob(repo: RegistryRepository, descriptor: Descriptor, source: ImageStore) -> bool:
    """Mount from a repository of the same registry; True on 201, False when it must stream."""
    from digestgate.oci.registry.repository import RegistryRepository

    if not isinstance(source, RegistryRepository):
        return False
    if source.client.registry != repo.client.registry:
        return False
    if source.name == repo.name:
        return repo.has_blob(descriptor.digest)
    t = repo.transport
    url = repo.url("blobs/uploads/").copy_merge_params(
        {"mount": str(descriptor.digest), "from": source.name}
    )
    response = t.send(
        "POST",
        url,
        scopes=mount_scopes(repo.name, source.name),
        headers={"Content-Length": "0"},
    )
    try:
        if response.status_code == 201:
            return True
        if response.status_code == 202:
            # Not mounted: the registry opened a normal session instead; abandon it.
            location = response.headers.get("location")
            if location:
                cancel(repo, join_url(response, location, "upload Location"))
            return False
        raise t.fail(response)
    finally:
        response.close()
