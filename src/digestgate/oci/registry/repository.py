"""One registry repository as an :class:`~digestgate.oci.store.ImageStore` (distribution 1.1).

Manifests are fetched with GET (never trusted from HEAD), read with a 4 MiB cap while
streaming, and hashed from the exact bytes received. ``Docker-Content-Digest`` is only ever
compared against that hash: a disagreement is an :class:`IntegrityError`. An answer that
breaks off is fetched again, and bytes that hash wrongly are fetched once more before that
error is raised. Blobs stream in chunks with size and digest checked as they arrive and at
the end, resuming where a broken download stopped (:mod:`~digestgate.oci.registry.blobread`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Final

import httpx

from digestgate.digest import Digest
from digestgate.errors import IntegrityError, InvalidReferenceError, NotFoundError
from digestgate.oci import media
from digestgate.oci.manifest import (
    MAX_MANIFEST_SIZE,
    Descriptor,
    InvalidManifestError,
    Manifest,
    parse_manifest,
)
from digestgate.oci.registry import referrers, upload
from digestgate.oci.registry.auth import pull_scope, push_scope
from digestgate.oci.registry.blobread import BlobReader
from digestgate.oci.registry.errors import json_object
from digestgate.oci.registry.handles import ClientHandle, Scopes, TransportHandle
from digestgate.oci.registry.urls import header_int, next_link
from digestgate.oci.store import ImageStore
from digestgate.reference import ImageReference, validate_tag

MAX_TAG_PAGES: Final = 100
MAX_TAG_LIST: Final = 4 * 1024 * 1024


def check_header_digest(header: str | None, raw: bytes, computed: Digest, what: str) -> None:
    """Compare ``Docker-Content-Digest`` with the hash of the bytes; disagreement is fatal."""
    if not header:
        return
    try:
        claimed = Digest.parse(header.strip())
    except InvalidReferenceError:
        return  # an algorithm we cannot check; the header is never needed anyway
    actual = (
        computed if claimed.algorithm == computed.algorithm else Digest.of(raw, claimed.algorithm)
    )
    if actual != claimed:
        raise IntegrityError(
            f"{what}: the registry says Docker-Content-Digest {claimed}, the bytes hash to "
            f"{actual}",
            hint="the registry or a proxy is serving inconsistent content; do not use it",
        )


class RegistryRepository(ImageStore):
    """A repository on a registry; all requests go through the client's transport."""

    def __init__(self, client: ClientHandle, name: str) -> None:
        self.client = client
        self.name = name
        self.pull: Scopes = (pull_scope(name),)
        self.push: Scopes = (push_scope(name),)
        # Manifests fetched by digest and verified: content-addressed, so the same process
        # may reuse them instead of fetching again. A put of that digest drops the entry,
        # so the read-back after a write is always a real fetch.
        self._known: dict[Digest, Manifest] = {}

    @property
    def transport(self) -> TransportHandle:
        """The client's HTTP transport."""
        return self.client.transport

    @property
    def location(self) -> ImageReference:
        """``registry/name``."""
        return ImageReference(self.client.registry, self.name)

    def url(self, path: str) -> httpx.URL:
        """``/v2/<name>/<path>`` on this registry."""
        return self.transport.url(f"/v2/{self.name}/{path}")

    def __repr__(self) -> str:
        return f"RegistryRepository({self.client.registry}/{self.name})"

    # -- manifests ---------------------------------------------------------------------------

    def fetch_manifest(self, reference: str | Digest) -> Manifest:
        """GET a manifest by tag or digest, hash the bytes, verify, parse.

        Bytes that hash to something else (than the digest asked for, or than the
        registry's ``Docker-Content-Digest``) are fetched once more before the
        :class:`IntegrityError`: a fault on the way is not mistaken for wrong content.
        """
        if isinstance(reference, Digest) and reference in self._known:
            return self._known[reference]
        what = (
            f"manifest {self.name}:{reference}"
            if isinstance(reference, str)
            else (f"manifest {self.name}@{reference}")
        )
        attempts = min(2, 1 + max(0, self.client.options.retries))
        for attempt in range(1, attempts + 1):
            try:
                return self._fetch_manifest(reference, what)
            except IntegrityError:
                if attempt >= attempts:
                    raise
            self.transport.pause(attempt, None, f"GET {what}")
        raise AssertionError("unreachable")  # pragma: no cover

    def _fetch_manifest(self, reference: str | Digest, what: str) -> Manifest:
        def check(response: httpx.Response) -> None:
            announced = header_int(response.headers.get("content-length"))
            if announced is not None and announced > MAX_MANIFEST_SIZE:
                raise InvalidManifestError(
                    f"{what}: {announced} bytes is over the {MAX_MANIFEST_SIZE}-byte limit",
                    hint="digestgate refuses manifests over 4 MiB",
                )

        fetched = self.transport.fetch(
            "GET",
            self.url(f"manifests/{reference}"),
            scopes=self.pull,
            headers={"Accept": media.MANIFEST_ACCEPT, "Accept-Encoding": "identity"},
            cap=MAX_MANIFEST_SIZE,
            check=check,
        )
        assert fetched is not None
        response, raw = fetched
        expected = reference if isinstance(reference, Digest) else None
        computed = Digest.of(raw, expected.algorithm if expected else "sha256")
        if expected is not None and computed != expected:
            raise IntegrityError(
                f"{what}: the bytes hash to {computed}",
                hint="the registry served different bytes; do not use this content",
            )
        check_header_digest(response.headers.get("docker-content-digest"), raw, computed, what)
        manifest = parse_manifest(raw, response.headers.get("content-type"), expected=computed)
        if expected is not None:
            self._known[expected] = manifest
        return manifest

    def resolve(self, reference: str | Digest) -> Descriptor:
        """The descriptor of the manifest at a tag or digest, hashed from its bytes."""
        if isinstance(reference, str) and ":" in reference:
            reference = Digest.parse(reference)
        elif isinstance(reference, str):
            validate_tag(reference)
        return self.fetch_manifest(reference).descriptor

    def get_manifest(self, digest: Digest) -> Manifest:
        """The manifest with this digest, verified against it."""
        return self.fetch_manifest(digest)

    def has_manifest(self, digest: Digest) -> bool:
        """HEAD the manifest: presence only, never its identity."""
        return self._head(self.url(f"manifests/{digest}"), {"Accept": media.MANIFEST_ACCEPT})

    def put_raw_manifest(
        self, reference: str, raw: bytes, media_type: str, digest: Digest
    ) -> httpx.Headers:
        """PUT exact bytes at a tag or digest; check status and any Docker-Content-Digest."""
        self._known.pop(digest, None)
        t = self.transport
        response = t.send(
            "PUT",
            self.url(f"manifests/{reference}"),
            scopes=self.push,
            headers={"Content-Type": media_type},
            content=raw,
        )
        try:
            if response.status_code not in (200, 201):
                raise t.fail(response)
            check_header_digest(
                response.headers.get("docker-content-digest"),
                raw,
                digest,
                f"manifest {self.name}:{reference} after upload",
            )
            return response.headers
        finally:
            response.close()

    def put_manifest(self, raw: bytes, media_type: str, *, tag: str | None = None) -> Descriptor:
        """Store exact bytes by digest, then at ``tag`` when given."""
        manifest = parse_manifest(raw, media_type)
        self.put_raw_manifest(str(manifest.digest), raw, manifest.media_type, manifest.digest)
        if tag is not None:
            self.put_raw_manifest(validate_tag(tag), raw, manifest.media_type, manifest.digest)
        return manifest.descriptor

    # -- tags --------------------------------------------------------------------------------

    def get_tag(self, tag: str) -> Descriptor | None:
        """The manifest a tag points to (hashed), or None."""
        try:
            return self.resolve(validate_tag(tag))
        except NotFoundError:
            return None

    def set_tag(self, tag: str, descriptor: Descriptor) -> None:
        """PUT the manifest's verified bytes at ``tag``, then re-read the tag to verify."""
        validate_tag(tag)
        manifest = self.get_manifest(descriptor.digest)
        self.put_raw_manifest(tag, manifest.raw, manifest.media_type, manifest.digest)
        now = self.resolve(tag)
        if now.digest != descriptor.digest:
            raise IntegrityError(
                f"tag {self.name}:{tag} points to {now.digest} after setting it to "
                f"{descriptor.digest}",
                hint="someone else moved the tag at the same time, or the registry converted "
                "the manifest",
            )

    def list_tags(self) -> list[str]:
        """Every tag, following ``Link`` pagination; an unknown repository has none."""
        t = self.transport
        tags: set[str] = set()
        url: httpx.URL | None = self.url("tags/list")
        pages = 0
        while url is not None and pages < MAX_TAG_PAGES:
            pages += 1
            fetched = t.fetch("GET", url, scopes=self.pull, cap=MAX_TAG_LIST, absent=(404,))
            if fetched is None:
                return sorted(tags)
            response, body = fetched
            tags.update(_parse_tags(body, self.name))
            url = next_link(response)
        return sorted(tags)

    # -- blobs -------------------------------------------------------------------------------

    def _head(self, url: httpx.URL, headers: dict[str, str] | None = None) -> bool:
        t = self.transport
        response = t.send("HEAD", url, scopes=self.pull, headers=headers, follow_redirects=True)
        try:
            if response.status_code == 200:
                return True
            if response.status_code == 404:
                return False
            raise t.fail(response)
        finally:
            response.close()

    def has_blob(self, digest: Digest) -> bool:
        """HEAD the blob: presence only."""
        found = self._head(self.url(f"blobs/{digest}"))
        if found:
            self.client.homes.note(digest, self.name)
        return found

    @contextmanager
    def open_blob(
        self, descriptor: Descriptor, *, hashed: bool = True
    ) -> Iterator[Iterator[bytes]]:
        """Stream a blob; digest and size are checked as bytes arrive and at the end.

        A download that breaks off is resumed where it stopped (with ``Range`` where the
        registry honours it); the checks cover exactly the bytes handed out.
        """
        reader = BlobReader(self, descriptor, hashed=hashed)
        reader.open()
        try:
            yield reader.chunks()
        finally:
            reader.close()

    def put_blob(self, descriptor: Descriptor, chunks: Iterable[bytes]) -> None:
        """Upload a blob (monolithic or chunked), verifying what is sent."""
        upload.put_blob(self, descriptor, chunks)

    def mount_blob(self, descriptor: Descriptor, source: ImageStore) -> bool:
        """Cross-repository mount within the same registry; False means stream it."""
        return upload.mount_blob(self, descriptor, source)

    # -- referrers ---------------------------------------------------------------------------

    def referrers(self, subject: Digest, artifact_type: str | None = None) -> list[Descriptor]:
        """Referrers of ``subject`` (Referrers API, else the tag-schema fallback)."""
        return referrers.list_referrers(self, subject, artifact_type)

    def put_referrer(self, raw: bytes, media_type: str, subject: Descriptor) -> Descriptor:
        """Store a manifest with ``subject`` and make it discoverable."""
        return referrers.put_referrer(self, raw, media_type, subject)

    def put_referrers(
        self, subject: Descriptor, manifests: Sequence[tuple[bytes, str]]
    ) -> list[Descriptor]:
        """Store several referrers of ``subject``, listed with one fallback-index update."""
        return referrers.put_referrers(self, subject, manifests)

    def close(self) -> None:
        """Nothing to release per repository: the client owns the connections."""


def _parse_tags(body: bytes, name: str) -> list[str]:
    bad = InvalidManifestError(
        f"the tag list of {name} is not valid", hint="the registry answered with malformed JSON"
    )
    doc = json_object(body, bad)
    tags = doc.get("tags")
    if tags is None:
        return []
    if not isinstance(tags, list) or not all(isinstance(x, str) for x in tags):
        raise bad
    return list(tags)
