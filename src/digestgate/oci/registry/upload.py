"""Blob uploads and cross-repository mounts (distribution-spec 1.1 "Pushing blobs").

Monolithic: ``POST /blobs/uploads/`` then one streaming ``PUT <Location>&digest=`` whose
``Content-Length`` comes from the descriptor. Chunked (blobs above the client's threshold):
``PATCH`` with ``Content-Range`` and the newest ``Location`` each time, then ``PUT ?digest=``.
``Location`` is used verbatim (absolute or relative). The bytes sent are hashed and counted
on the way: more bytes than the descriptor says stop the upload at once, and a wrong digest
or size is detected before the upload is committed.

An upload request is never resent blindly: the registry may have applied it although the
answer was lost. After a transient failure (429 or 503, honouring ``Retry-After``; another
5xx; a lost connection; a request that was too slow) the blob is looked for first (a commit
whose answer was lost). Then a chunked upload asks the registry how much it holds
(``GET <Location>``: 204 with ``Range: 0-<last>``, distribution-spec 1.1 "Pushing a blob in
chunks") and goes on from there; a session the registry no longer knows (404, or 400 as the
reference registry answers once a chunk was partly stored) and a monolithic upload start
again. Either way the source is read again from its start, the bytes the registry already
holds hashed but not sent; a one-shot iterator cannot be read twice, so its upload gets one
attempt. An attempt that got further than any before restores the retry budget.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

import httpx

from digestgate.digest import DigestHasher
from digestgate.errors import IntegrityError, NotFoundError, RegistryError
from digestgate.oci.manifest import Descriptor
from digestgate.oci.registry.auth import mount_scopes
from digestgate.oci.registry.errors import TransientError
from digestgate.oci.registry.handles import RepositoryHandle
from digestgate.oci.registry.urls import header_int, join_url
from digestgate.oci.store import ImageStore

log = logging.getLogger("digestgate.registry")

OCTET: Final = "application/octet-stream"
#: ``Range`` of an upload session: ``0-<last byte>`` (or Docker's ``bytes=0-<last>``);
#: ``0--1`` is how some registries say "nothing yet".
_RANGE_RE: Final = re.compile(r"(?:bytes=)?0-(-1|\d+)")


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
    """Pass chunks through, refusing excess bytes at once and a wrong digest at the end.

    Each chunk is handed on only once the next one has been read, and the last only after
    the digest matched: bytes that do not hash to the digest never reach the registry in
    full, so not even a registry that checks nothing can commit them.
    """
    hasher = DigestHasher(descriptor.digest.algorithm)
    held = b""
    try:
        for chunk in chunks:
            if not chunk:
                continue
            if hasher.size + len(chunk) > descriptor.size:
                raise IntegrityError(
                    f"{what}: the source has more than {descriptor.size} bytes",
                    hint="the source content does not match its descriptor",
                )
            hasher.update(chunk)
            if held:
                yield held
            held = bytes(chunk)
        hasher.check(descriptor.digest, descriptor.size, what=what)
        if held:
            yield held
    finally:
        _close(chunks)


def _close(chunks: object) -> None:
    """Close an iterator that may hold a source open.

    Never left to the garbage collector: a source stream finalised at an arbitrary moment
    may close its connection while this thread holds the connection pool's lock.
    """
    close = getattr(chunks, "close", None)
    if close is not None:
        close()


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

    def skip(self, n: int) -> None:
        """Read ``n`` bytes without sending them (the registry holds them already)."""
        for _ in self.take(n):
            pass

    def close(self) -> None:
        """Close the stream (and the source behind it) now, whatever was read."""
        _close(self._chunks)

    def finish(self) -> None:
        """Read to the end, so the verifying iterator checks the digest; refuse extra bytes."""
        if self._pending or any(True for chunk in self._chunks if chunk):
            raise IntegrityError(
                "the source has more bytes than its descriptor says",
                hint="the source content does not match its descriptor",
            )


def cancel(repo: RepositoryHandle, location: httpx.URL) -> None:
    """Abandon an upload session; failures are ignored (distribution-spec main)."""
    try:
        response = repo.transport.send("DELETE", location, scopes=repo.push, idempotent=False)
        response.close()
    except RegistryError as exc:
        log.debug("could not cancel an upload session: %s", exc)


class _SourceError(Exception):
    """An error raised by the source while it fed a request: it ends the upload as it is."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _guarded(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The source's chunks; its own errors are carried past the upload's retry logic."""
    iterator = iter(chunks)
    try:
        while True:
            try:
                chunk = next(iterator)
            except StopIteration:
                return
            except Exception as exc:
                raise _SourceError(exc) from exc
            yield chunk
    finally:
        _close(iterator)


def _received(value: str | None, confirmed: int) -> int | None:
    """How many bytes an upload session holds, from its ``Range`` header (None: unreadable).

    The reference registry says ``0-0`` for an empty session as well as for one byte: with
    nothing confirmed yet it is read as empty, which a registry holding one byte answers with
    416 on the next chunk rather than storing a gap.
    """
    match = _RANGE_RE.fullmatch((value or "").strip())
    if match is None:
        return None
    last = int(match.group(1))
    if last == 0 and confirmed == 0:
        return 0
    return last + 1


@dataclass
class _Session:
    location: httpx.URL
    offset: int
    """Bytes the registry confirmed holding."""
    minimum: int = 0
    """``OCI-Chunk-Min-Length``: the least every chunk but the last should carry."""


class _Upload:
    """One blob upload with its retries: see the module docstring."""

    def __init__(
        self, repo: RepositoryHandle, descriptor: Descriptor, source: Iterable[bytes]
    ) -> None:
        self.repo = repo
        self.t = repo.transport
        self.descriptor = descriptor
        self.source = source
        self.replayable = not isinstance(source, Iterator)
        self.chunked = descriptor.size > repo.client.chunk_threshold
        self.what = f"upload of blob {descriptor.digest} to {repo.name}"
        self.session: _Session | None = None

    def run(self) -> None:
        """Upload, retrying transient failures; the blob is present when this returns."""
        failures = 0
        best = 0
        while True:
            try:
                self._attempt()
                return
            except _SourceError as failed:
                self._abandon()
                raise failed.error from None
            except RegistryError as exc:
                if not _transient(exc):
                    self._abandon()
                    raise
                if self.repo.has_blob(self.descriptor.digest):
                    self.session = None  # committed before its answer was lost
                    return
                held = self.session.offset if self.session else 0
                failures = 1 if held > best else failures + 1
                best = max(best, held)
                if not self.replayable or failures > max(0, self.t.options.retries):
                    self._abandon()
                    raise
                wait = exc.retry_after if isinstance(exc, TransientError) else None
                log.debug("%s: %s; trying again", self.what, exc)
                self.t.pause(failures, wait, self.what)
            except BaseException:
                self._abandon()
                raise

    def _abandon(self) -> None:
        if self.session is not None:
            cancel(self.repo, self.session.location)
            self.session = None

    def _verified_source(self) -> _Pieces:
        what = f"blob {self.descriptor.digest}"
        return _Pieces(_verified(_guarded(self.source), self.descriptor, what))

    def _attempt(self) -> None:
        if not self.chunked:
            self._abandon()  # a monolithic session is never continued
            location, _ = self._start()
            self.session = _Session(location, 0)
            self._commit(self._whole(), self.descriptor.size)
            self.session = None
            return
        if self.session is not None:
            self._query()
        if self.session is None:
            location, minimum = self._start()
            self.session = _Session(location, 0, minimum)
        self._send_chunks(self.session)
        self._commit(b"", 0)
        self.session = None

    def _whole(self) -> Iterator[bytes]:
        """The whole source; its digest is checked before the last byte leaves."""
        pieces = self._verified_source()
        try:
            yield from pieces.take(self.descriptor.size)
            pieces.finish()
        finally:
            pieces.close()

    def _start(self) -> tuple[httpx.URL, int]:
        """Open an upload session: its Location and chunk minimum."""
        # Sent once: a retry belongs to the upload's own loop, with one budget for it all.
        response = self.t.send(
            "POST",
            self.repo.url("blobs/uploads/"),
            scopes=self.repo.push,
            headers={"Content-Length": "0"},
            idempotent=False,
        )
        try:
            if response.status_code != 202:
                raise self.t.fail(response)
            minimum = header_int(response.headers.get("oci-chunk-min-length"))
            return _location(response), minimum or 0
        finally:
            response.close()

    def _query(self) -> None:
        """Ask the session how much it holds (never guess); forget a session it lost."""
        session = self.session
        assert session is not None
        response = self.t.send("GET", session.location, scopes=self.repo.push, idempotent=False)
        try:
            if response.status_code in (400, 404):
                self.t.read_error_body(response)
                self._abandon()  # unknown, or invalid after a partly stored chunk
                return
            if response.status_code not in (200, 204):
                raise self.t.fail(response)
            held = _received(response.headers.get("range"), session.offset)
            if held is None or held > self.descriptor.size:
                self._abandon()
                return
            if response.headers.get("location"):
                session.location = _location(response)
            log.debug("%s: the registry holds %d bytes", self.what, held)
            session.offset = held
        finally:
            response.close()

    def _send_chunks(self, session: _Session) -> None:
        piece = max(self.repo.client.chunk_size, session.minimum, 1)
        pieces = self._verified_source()
        try:
            self._send_pieces(session, pieces, piece)
        finally:
            pieces.close()

    def _send_pieces(self, session: _Session, pieces: _Pieces, piece: int) -> None:
        size = self.descriptor.size
        pieces.skip(session.offset)
        while session.offset < size:
            length = min(piece, size - session.offset)
            end = session.offset + length - 1
            response = self.t.send(
                "PATCH",
                session.location,
                scopes=self.repo.push,
                headers={
                    "Content-Type": OCTET,
                    "Content-Range": f"{session.offset}-{end}",
                    "Content-Length": str(length),
                },
                content=pieces.take(length),
                idempotent=False,
            )
            try:
                if response.status_code == 416:
                    raise TransientError(
                        f"PATCH {self.what}: the registry holds another amount than the "
                        f"{session.offset} bytes confirmed",
                        hint="the registry lost or kept part of a chunk; the upload resumes",
                        status=416,
                    )
                if response.status_code != 202:
                    raise self.t.fail(response)
                location = _location(response)
            finally:
                response.close()
            session.location = location
            held = _received(response.headers.get("range"), end + 1)
            if held is not None and held != end + 1:
                raise TransientError(
                    f"PATCH {self.what}: the registry says it holds {held} bytes after a "
                    f"chunk ending at byte {end}",
                    hint="the registry stored a chunk in part; the upload resumes",
                )
            session.offset = end + 1
        pieces.finish()

    def _commit(self, content: bytes | Iterable[bytes], size: int) -> None:
        """The closing ``PUT <location>&digest=`` (with the whole body, or none); expect 201."""
        assert self.session is not None
        try:
            response = self.t.send(
                "PUT",
                with_digest(self.session.location, self.descriptor),
                scopes=self.repo.push,
                headers={"Content-Type": OCTET, "Content-Length": str(size)},
                content=content,
                idempotent=False,
            )
        finally:
            _close(content)
        try:
            if response.status_code != 201:
                raise self.t.fail(response)
        finally:
            response.close()
        self.repo.client.homes.note(self.descriptor.digest, self.repo.name)


#: A blob at least this large is mounted from its home even when the mount needs a token of
#: its own (a token registry scopes the source repository into it): bytes saved outweigh it.
MOUNT_WITH_NEW_TOKEN: Final = 1024 * 1024


def _home(repo: RepositoryHandle, descriptor: Descriptor) -> str | None:
    """The repository of this registry to mount ``descriptor`` from, if it is worth it."""
    home = repo.client.homes.home(descriptor.digest, repo.name)
    if home is None:
        return None
    if descriptor.size < MOUNT_WITH_NEW_TOKEN and repo.transport.auth.needs_token(
        mount_scopes(repo.name, home)
    ):
        return None
    return home


def _transient(exc: RegistryError) -> bool:
    if isinstance(exc, NotFoundError):
        return exc.code == "BLOB_UPLOAD_UNKNOWN"  # the session expired or was lost
    return isinstance(exc, TransientError)


def put_blob(repo: RepositoryHandle, descriptor: Descriptor, chunks: Iterable[bytes]) -> None:
    """Upload a blob; transient failures are retried when ``chunks`` can be read again.

    ``chunks`` that is not an iterator (a list, or an object whose every ``iter()`` opens
    the source afresh) can be read again; a one-shot iterator gets one attempt.
    """
    if mount_from_home(repo, descriptor):
        _close(chunks)
        return
    _Upload(repo, descriptor, chunks).run()


def mount_blob(repo: RepositoryHandle, descriptor: Descriptor, source: ImageStore) -> bool:
    """Mount from ``source`` when it is a repository of the same registry, else from the
    blob's home (:func:`mount_from_home`); True on 201, False when it must be streamed."""
    if not isinstance(source, RepositoryHandle) or source.client.registry != repo.client.registry:
        return mount_from_home(repo, descriptor)
    if source.name == repo.name:
        return repo.has_blob(descriptor.digest)
    return _mount(repo, descriptor, source.name)


def mount_from_home(repo: RepositoryHandle, descriptor: Descriptor) -> bool:
    """Mount from a repository of this registry where this run put or found the blob.

    Only an optimisation: a mount the registry declines or refuses (the blob gone from its
    home, no pull right there, an error) forgets that home and returns False, and the
    caller uploads the blob as it would have.
    """
    home = _home(repo, descriptor)
    if home is None:
        return False
    try:
        if _mount(repo, descriptor, home):
            return True
    except RegistryError as exc:
        log.debug("mounting %s from %s failed: %s", descriptor.digest, home, exc)
    repo.client.homes.forget(descriptor.digest)
    return False


def _mount(repo: RepositoryHandle, descriptor: Descriptor, source: str) -> bool:
    t = repo.transport
    url = repo.url("blobs/uploads/").copy_merge_params(
        {"mount": str(descriptor.digest), "from": source}
    )
    response = t.send(
        "POST", url, scopes=mount_scopes(repo.name, source), headers={"Content-Length": "0"}
    )
    try:
        if response.status_code == 201:
            repo.client.homes.note(descriptor.digest, repo.name)
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
