"""An OCI image layout directory as an image store (image-spec 1.1 image-layout.md).

One layout directory is one repository: ``oci-layout`` (``imageLayoutVersion`` 1.0.0),
``index.json`` (an image index, the entry point) and ``blobs/<alg>/<hex>``. Tags are the
``org.opencontainers.image.ref.name`` annotations of ``index.json`` entries, one entry per tag.

Safety rules, all enforced here and in :mod:`digestgate.oci.layoutdir` (index.json, its
lock and the file I/O) because this is the only code that touches layouts:

* Paths are built only from validated :class:`Digest` values; tags never become paths. Every
  file is resolved and must stay inside the layout: a symlink that leads outside is refused,
  and files are opened with ``O_NOFOLLOW`` after resolution.
* Writes are atomic: a temporary file in the destination directory, fsync, ``os.replace``.
  A blob becomes visible only after its digest and size were verified while streaming; on any
  failure the temporary file is removed, so no partial blob is ever left behind.
* ``index.json`` is changed under an exclusive ``flock`` with read-modify-write, so concurrent
  processes and threads lose no entries.
* Every read verifies: manifests are hashed, blobs are checked for size and digest at EOF.

What ``index.json`` lists: every tagged manifest; every manifest put by digest at the top
level (so the content stays reachable for tools that collect garbage), except that putting an
index removes the untagged listings of its own children (they stay reachable through it); and
every referrer put with :meth:`LayoutStore.put_referrer` (how evidence is attached to a
layout). A manifest is resolvable by digest whenever its blob is present, listed or not.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from digestgate.digest import Digest
from digestgate.errors import (
    ConcurrentChangeError,
    DigestgateError,
    IncompleteReadError,
    IntegrityError,
    InternalError,
    NotFoundError,
    StorageError,
)
from digestgate.jsonutil import JSONFormatError, dumps_canonical, loads_strict
from digestgate.oci import media
from digestgate.oci.layoutdir import (
    CHUNK_SIZE,
    INDEX_FILE,
    MAX_INDEX_SIZE,
    REF_NAME,
    LayoutDir,
    entry_digest,
    entry_tag,
    storage_error,
)
from digestgate.oci.manifest import (
    MAX_MANIFEST_SIZE,
    Descriptor,
    ImageManifest,
    Manifest,
    parse_manifest,
)
from digestgate.oci.store import ImageStore
from digestgate.reference import LayoutReference, validate_tag

__all__ = [
    "CHUNK_SIZE",
    "LAYOUT_VERSION",
    "MAX_INDEX_SIZE",
    "MAX_REFERRER_READS",
    "REF_NAME",
    "LayoutStore",
]

#: At most this many listed manifests are read to answer one referrers query; a layout that
#: lists more stops the query (exit 3) rather than answering from part of it.
MAX_REFERRER_READS: Final = 1000
LAYOUT_VERSION: Final = "1.0.0"

_LAYOUT_FILE: Final = "oci-layout"


class LayoutStore(LayoutDir, ImageStore):
    """One OCI image layout directory, read and written with verification."""

    def __init__(self, path: str, root: Path) -> None:
        """Use :meth:`open`; ``root`` is the resolved directory."""
        self._path = path
        self._root = root
        self._manifests: dict[Digest, Manifest] = {}

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str, *, create: bool) -> LayoutStore:
        """Open the layout at ``path``, validating it; ``create`` makes a missing one."""
        directory = Path(path)
        try:
            if not directory.exists():
                if not create:
                    raise NotFoundError(
                        f"no OCI image layout at {path}",
                        hint="check the path; only a promotion target is created when missing",
                    )
                directory.mkdir(parents=True, exist_ok=True)
            elif not directory.is_dir():
                raise StorageError(
                    f"{path} is not a directory", hint="an oci: location names a directory"
                )
            store = cls(path, directory.resolve(strict=True))
        except OSError as exc:
            raise storage_error(exc, "open the layout", path) from exc
        store._initialise(create)
        if create:  # opened for writing: clear what killed writers left behind
            store._sweep_stale_temps(time.time())
        return store

    def _initialise(self, create: bool) -> None:
        layout = self._root / _LAYOUT_FILE
        index = self._root / INDEX_FILE
        if not self._exists(layout):
            if not create:
                raise StorageError(
                    f"{self._path} is not an OCI image layout (no oci-layout file)",
                    hint="point at a directory written by digestgate, skopeo or buildx",
                )
            if self._exists(index):
                raise StorageError(
                    f"{self._path} has an index.json but no oci-layout file",
                    hint="refusing to take over a directory that is not an OCI layout",
                )
            with self._locked():
                header = {"imageLayoutVersion": LAYOUT_VERSION}
                self._write_file(layout, [dumps_canonical(header)])
        self._check_layout_file(layout)
        if not self._exists(index):
            if not create:
                raise StorageError(
                    f"{self._path} is not a complete OCI image layout (no index.json)",
                    hint="the layout was not fully written; copy it again",
                )
            with self._locked():
                if not self._exists(index):
                    empty = {"schemaVersion": 2, "mediaType": media.OCI_INDEX, "manifests": []}
                    self._write_file(index, [dumps_canonical(empty)])
        self._read_index()

    def _check_layout_file(self, layout: Path) -> None:
        raw = self._read_file(layout, 64 * 1024, what="oci-layout")
        try:
            doc = loads_strict(raw)
        except JSONFormatError as exc:
            raise self._corrupt("oci-layout", str(exc)) from None
        version = doc.get("imageLayoutVersion") if isinstance(doc, dict) else None
        if version != LAYOUT_VERSION:
            raise self._corrupt("oci-layout", f"imageLayoutVersion is {version!r}, not 1.0.0")

    # -- the ImageStore interface -------------------------------------------------------

    @property
    def location(self) -> LayoutReference:
        """The layout as an ``oci:`` location."""
        return LayoutReference(self._path)

    def resolve(self, reference: str | Digest) -> Descriptor:
        """The manifest at a tag or digest, hashed from the bytes on disk."""
        if isinstance(reference, str) and ":" not in reference:
            found = self.get_tag(reference)
            if found is None:
                raise NotFoundError(
                    f"tag {reference!r} not found in {self.location}",
                    hint="list the layout's tags, or refer to the image by digest",
                )
            return found
        digest = reference if isinstance(reference, Digest) else Digest.parse(reference)
        return self.get_manifest(digest).descriptor

    def get_manifest(self, digest: Digest) -> Manifest:
        """The manifest with this digest, read from its blob and verified."""
        cached = self._manifests.get(digest)
        if cached is not None:
            return cached
        path = self._blob_path(digest)
        try:
            raw = self._read_file(path, MAX_MANIFEST_SIZE, what=f"manifest {digest.short}")
        except NotFoundError:
            raise NotFoundError(
                f"manifest {digest} not found in {self.location}",
                hint="check the digest; `digestgate resolve` prints the layout's digests",
            ) from None
        manifest = parse_manifest(raw, None, expected=digest)
        self._manifests[digest] = manifest
        return manifest

    def has_manifest(self, digest: Digest) -> bool:
        """True when the manifest's blob is present (content is verified when read)."""
        return self._exists(self._blob_path(digest))

    def put_manifest(self, raw: bytes, media_type: str, *, tag: str | None = None) -> Descriptor:
        """Store these exact bytes by digest, list them in index.json, tag them when asked."""
        if tag is not None:
            validate_tag(tag)
        manifest = parse_manifest(raw, media_type)
        self._put_bytes(manifest.digest, raw)
        self._manifests[manifest.digest] = manifest
        self._list(manifest, tag)
        stored = self.resolve(tag if tag is not None else manifest.digest)
        self._check_same(stored.digest, manifest.digest, tag or "the manifest")
        return stored

    def has_blob(self, digest: Digest) -> bool:
        """True when ``blobs/<alg>/<hex>`` exists inside the layout."""
        return self._exists(self._blob_path(digest))

    @contextmanager
    def open_blob(
        self, descriptor: Descriptor, *, hashed: bool = True
    ) -> Iterator[Iterator[bytes]]:
        """Stream a blob in 1 MiB chunks, checking size (and unless ``hashed=False``, the
        digest) at EOF."""
        path = self._blob_path(descriptor.digest)
        what = f"blob {descriptor.digest.short} in {self.location}"
        fd = self._open_for_read(path, what=what)
        try:
            size = os.fstat(fd).st_size
            if size != descriptor.size:
                raise IntegrityError(
                    f"{what}: file holds {size} bytes, expected {descriptor.size}",
                    hint="the layout was altered on disk; copy the image again",
                )
            yield self._stream(fd, path, descriptor, what, hashed=hashed)
        finally:
            os.close(fd)

    def put_blob(self, descriptor: Descriptor, chunks: Iterable[bytes]) -> None:
        """Write a blob from chunks; it appears only once digest and size are verified."""
        hasher = descriptor.digest.hasher()
        what = f"blob {descriptor.digest.short}"

        def verified() -> Iterator[bytes]:
            for chunk in chunks:
                hasher.update(chunk)
                if hasher.size > descriptor.size:
                    raise IntegrityError(
                        f"{what}: more than the expected {descriptor.size} bytes",
                        hint="the source served different content; do not use it",
                    )
                yield chunk

        def check() -> None:
            hasher.check(descriptor.digest, descriptor.size, what=what)

        self._write_file(self._blob_path(descriptor.digest), verified(), before_commit=check)

    def mount_blob(self, descriptor: Descriptor, source: ImageStore) -> bool:
        """A layout has no cross-repository mount: the caller streams the blob."""
        return False

    def get_tag(self, tag: str) -> Descriptor | None:
        """The manifest a tag points to, hashed; None when the tag does not exist."""
        validate_tag(tag)
        digests = {d.digest for d in self._entries() if d.annotations.get(REF_NAME) == tag}
        if not digests:
            return None
        if len(digests) > 1:
            raise StorageError(
                f"tag {tag!r} names {len(digests)} different manifests in {self.location}",
                hint="index.json is ambiguous; fix it by hand or set the tag again",
            )
        return self.get_manifest(digests.pop()).descriptor

    def set_tag(self, tag: str, descriptor: Descriptor) -> None:
        """Point ``tag`` at a stored manifest (moving it), then re-read it to verify."""
        validate_tag(tag)
        self._list(self.get_manifest(descriptor.digest), tag)
        stored = self.get_tag(tag)
        self._check_same(stored.digest if stored else None, descriptor.digest, tag)

    def set_tag_if(self, tag: str, descriptor: Descriptor, expected: Digest | None) -> None:
        """Point ``tag`` at ``descriptor`` only if it still points to ``expected`` (None:
        absent), in one step under the layout's lock; otherwise raise
        :class:`~digestgate.errors.ConcurrentChangeError` carrying where it points now."""
        validate_tag(tag)
        manifest = self.get_manifest(descriptor.digest)

        def unchanged(entries: list[Any]) -> None:
            named = {entry_digest(e) or "" for e in entries if entry_tag(e) == tag}
            current = Digest.parse(next(iter(named))) if len(named) == 1 else None
            if len(named) > 1 or current != expected:
                raise ConcurrentChangeError(
                    f"tag {tag} of {self.location} points to {current or 'nothing'}, not "
                    f"{expected or 'nothing'} as read before",
                    hint="another writer changed the tag meanwhile",
                    current=current,
                )

        self._list(manifest, tag, precondition=unchanged)
        stored = self.get_tag(tag)
        self._check_same(stored.digest if stored else None, descriptor.digest, tag)

    def list_tags(self) -> list[str]:
        """Every valid tag named in index.json, sorted."""
        names = {d.annotations.get(REF_NAME, "") for d in self._entries()}
        valid = set()
        for name in names:
            try:
                valid.add(validate_tag(name))
            except DigestgateError:
                continue  # full references or empty names written by other tools
        return sorted(valid)

    def referrers(self, subject: Digest, artifact_type: str | None = None) -> list[Descriptor]:
        """Listed manifests whose ``subject`` is ``subject``.

        Every listed manifest is read: more than ``MAX_REFERRER_READS`` of them, or one whose
        blob is missing, is :class:`~digestgate.errors.IncompleteReadError` (an answer from
        part of the index could hide a referrer).
        """
        found: list[Descriptor] = []
        reads = 0
        for entry in self._entries():
            if entry.media_type not in media.MANIFESTS:
                continue
            if entry.digest not in self._manifests:
                if reads >= MAX_REFERRER_READS:
                    raise self._incomplete(f"lists more than {MAX_REFERRER_READS} manifests")
                if not self.has_manifest(entry.digest):
                    raise self._incomplete(f"lists {entry.digest} but holds no such manifest")
                reads += 1
            manifest = self.get_manifest(entry.digest)
            if manifest.subject is None or manifest.subject.digest != subject:
                continue
            kind = _artifact_type(manifest)
            if artifact_type is not None and kind != artifact_type:
                continue
            described = Descriptor(
                manifest.media_type,
                manifest.digest,
                len(manifest.raw),
                annotations=dict(manifest.annotations),
                artifact_type=kind,
            )
            if described not in found:
                found.append(described)
        return found

    def put_referrer(self, raw: bytes, media_type: str, subject: Descriptor) -> Descriptor:
        """Store a manifest whose subject is ``subject`` and list it (untagged) in index.json."""
        manifest = parse_manifest(raw, media_type)
        if manifest.subject is None or manifest.subject.digest != subject.digest:
            raise InternalError(
                f"referrer {manifest.digest.short} does not name {subject.digest} as its subject"
            )
        self._put_bytes(manifest.digest, raw)
        self._manifests[manifest.digest] = manifest
        entry: dict[str, Any] = {
            "mediaType": manifest.media_type,
            "digest": str(manifest.digest),
            "size": len(raw),
        }
        kind = _artifact_type(manifest)
        if kind:
            entry["artifactType"] = kind
        # The referrer's annotations go on its entry (distribution-spec 1.1 referrers), but
        # never a ref.name: that would turn the entry into a tag.
        annotations = {k: v for k, v in manifest.annotations.items() if k != REF_NAME}
        if annotations:
            entry["annotations"] = annotations

        def add(entries: list[Any]) -> bool:
            if any(entry_digest(e) == str(manifest.digest) for e in entries):
                return False
            entries.append(entry)
            return True

        self._update_index(add)
        stored = self.get_manifest(manifest.digest).descriptor
        return Descriptor(
            stored.media_type,
            stored.digest,
            stored.size,
            annotations=annotations,
            artifact_type=kind,
        )

    def close(self) -> None:
        """Forget cached manifests (a layout holds no open files between calls)."""
        self._manifests.clear()

    def _incomplete(self, problem: str) -> IncompleteReadError:
        return IncompleteReadError(
            f"{self.location}: index.json {problem}; referrers are read in full or not at all",
            hint="repair or re-create the layout (copy the images into a fresh directory)",
        )

    def _check_same(self, got: Digest | None, want: Digest, what: str) -> None:
        if got != want:
            raise IntegrityError(
                f"{what} in {self.location} reads back as {got}, expected {want}",
                hint="another writer changed the layout at the same time; retry",
            )


def _artifact_type(manifest: Manifest) -> str | None:
    """The artifact type a referrers listing reports (distribution-spec 1.1 referrers)."""
    if manifest.artifact_type:
        return manifest.artifact_type
    if isinstance(manifest, ImageManifest):
        return manifest.config.media_type
    return None
