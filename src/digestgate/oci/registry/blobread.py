"""Blob downloads that survive a connection breaking mid-body (distribution-spec 1.1 "Pulling
blobs", RFC 9110 "Range Requests").

Bytes are hashed (unless the consumer hashes them itself) and counted as they are handed
out. When the body breaks off or comes too slowly, the blob is requested again from the
first byte not yet handed out, with ``Range: bytes=N-``. A registry that ignores the range
answers 200 with the whole blob and the bytes already handed out are skipped; a 206 must
cover exactly ``N`` to the end, else the next attempt asks for the whole blob. Digest and
size are checked once, at the end, over exactly the bytes handed out, however many attempts
it took.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

import httpx

from digestgate.errors import IntegrityError
from digestgate.oci.manifest import Descriptor
from digestgate.oci.registry.errors import BrokenBodyError, redact_url
from digestgate.oci.registry.handles import RepositoryHandle
from digestgate.oci.registry.urls import header_int

#: An attempt that hands out this much more (or the rest of the blob) made progress: the
#: retry budget starts over, so a long download over a flaky link still completes.
PROGRESS: Final = 1024 * 1024
_CONTENT_RANGE_RE: Final = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class BlobReader:
    """One blob download, resumed where it broke off; use :meth:`open` then :meth:`chunks`."""

    def __init__(
        self, repo: RepositoryHandle, descriptor: Descriptor, *, hashed: bool = True
    ) -> None:
        self.repo = repo
        self.descriptor = descriptor
        self.hashed = hashed
        """False: sizes are checked, the digest is left to a consumer that hashes itself."""
        self.url = repo.url(f"blobs/{descriptor.digest}")
        self.what = f"GET {redact_url(self.url)}"
        self.attempts = 0
        """Requests made for the body (1 when nothing broke)."""
        self._response: httpx.Response | None = None
        self._skip = 0
        self._ranges = True

    def open(self, offset: int = 0) -> None:
        """Request the blob from byte ``offset``; the status and length are checked here."""
        t = self.repo.transport
        headers = {"Accept-Encoding": "identity"}
        if offset and self._ranges:
            headers["Range"] = f"bytes={offset}-"
        self.attempts += 1
        response = t.send(
            "GET", self.url, scopes=self.repo.pull, headers=headers, follow_redirects=True
        )
        try:
            self._skip = self._accept(response, offset)
        except BaseException:
            response.close()
            raise
        self._response = response

    def _accept(self, response: httpx.Response, offset: int) -> int:
        """How many leading bytes of this answer were handed out already."""
        size = self.descriptor.size
        announced = header_int(response.headers.get("content-length"))
        if response.status_code == 200:
            if announced is not None and announced != size:
                raise IntegrityError(
                    f"blob {self.descriptor.digest}: the registry announces {announced} bytes, "
                    f"expected {size}",
                    hint="the registry serves different content for this digest",
                )
            return offset
        if response.status_code == 206 and "Range" in response.request.headers:
            match = _CONTENT_RANGE_RE.fullmatch(response.headers.get("content-range", ""))
            total = match and match.group(3)
            if (
                match is None
                or (int(match.group(1)), int(match.group(2))) != (offset, size - 1)
                or total not in ("*", str(size))
                or (announced is not None and announced != size - offset)
            ):
                self._ranges = False  # ask for the whole blob next time
                raise BrokenBodyError(
                    f"{self.what}: asked for bytes {offset}- and got another range",
                    hint="the registry answers range requests wrongly; try again",
                )
            return 0
        raise self.repo.transport.fail(response)

    def close(self) -> None:
        """Close the current answer, if any."""
        if self._response is not None:
            self._response.close()
            self._response = None

    def _body(self) -> Iterator[bytes]:
        assert self._response is not None
        skip = self._skip
        for chunk in self.repo.transport.stream(self._response):
            if skip:
                if len(chunk) <= skip:
                    skip -= len(chunk)
                    continue
                chunk, skip = chunk[skip:], 0
            yield chunk

    def chunks(self) -> Iterator[bytes]:
        """The blob's bytes; digest (unless not ``hashed``) and size are checked when the last
        one is handed out."""
        t = self.repo.transport
        descriptor = self.descriptor
        hasher = descriptor.digest.hasher() if self.hashed else None
        done = 0  # bytes handed out
        failures = 0
        mark = 0
        body: Iterator[bytes] | None = self._body()
        while True:
            try:
                if body is None:
                    self.open(done)
                    body = self._body()
                chunk = next(body, None)
                if chunk is None:
                    if done >= descriptor.size:
                        break
                    raise BrokenBodyError(
                        f"{self.what}: the answer ended after {done} of {descriptor.size} bytes",
                        hint="the connection or the registry cut the download short",
                    )
            except BrokenBodyError:
                # The request and the read go together: request again from the first byte
                # not handed out yet (the next attempt cannot start before it).
                enough = min(PROGRESS, descriptor.size - mark)
                failures = 1 if done - mark >= max(1, enough) else failures + 1
                mark = done
                if failures > max(0, t.options.retries):
                    raise
                self.close()
                t.pause(failures, None, self.what)
                body = None
                continue
            if done + len(chunk) > descriptor.size:
                raise IntegrityError(
                    f"blob {descriptor.digest}: more than the expected {descriptor.size} bytes",
                    hint="the registry serves different content for this digest",
                )
            done += len(chunk)
            if hasher is not None:
                hasher.update(chunk)
            yield chunk
        if hasher is not None:
            hasher.check(descriptor.digest, descriptor.size, what=f"blob {descriptor.digest}")
