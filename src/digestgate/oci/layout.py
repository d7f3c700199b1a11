"""An OCI image layout directory as an image store (image-spec 1.1 image-layout.md).

One layout directory is one repository: ``oci-layout`` (``imageLayoutVersion`` 1.0.0),
``index.json`` (an image index, the entry point) and ``blobs/<alg>/<hex>``. Tags are the
``org.opencontainers.image.ref.name`` annotations of ``index.json`` entries, one entry per tag.

Safety rules, all enforced here because this is the only code that touches layouts:

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

import errno
import fcntl
import os
import secrets
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Final

from digestgate.digest import Digest, DigestHasher
from digestgate.errors import (
    DigestgateError,
    IntegrityError,
    InternalError,
    NotFoundError,
    StorageError,
)
from digestgate.jsonutil import JSONFormatError, dumps_canonical, loads_strict
from digestgate.oci import media
from digestgate.oci.manifest import (
    MAX_MANIFEST_SIZE,
    Descriptor,
    ImageIndex,
    ImageManifest,
    InvalidManifestError,
    Manifest,
    parse_manifest,
)
from digestgate.oci.store import ImageStore
from digestgate.reference import LayoutReference, validate_tag

#: Blobs are read and streamed in chunks of this size.
CHUNK_SIZE: Final = 1024 * 1024
#: ``index.json`` larger than this is refused (tens of thousands of entries fit).
MAX_INDEX_SIZE: Final = 32 * 1024 * 1024
#: At most this many listed manifests are read to answer one referrers query.
MAX_REFERRER_READS: Final = 1000
#: The layout tag annotation (image-spec annotations.md; valid on index.json entries only).
REF_NAME: Final = "org.opencontainers.image.ref.name"
LAYOUT_VERSION: Final = "1.0.0"

_LAYOUT_FILE: Final = "oci-layout"
_INDEX_FILE: Final = "index.json"
_LOCK_FILE: Final = ".index.json.lock"
_READ_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_CREATE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _storage_error(exc: OSError, action: str, path: Path | str) -> StorageError:
    """Translate an OSError into a one-line StorageError that names the path."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "free space on that file system and retry; no partial file was left behind"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "check that you may read and write that directory"
    elif exc.errno == errno.ELOOP:
        hint = "the layout contains a symlink where a file belongs; remove it"
    else:
        hint = "check the layout directory and retry"
    return StorageError(f"cannot {action} {path}: {exc.strerror or exc}", hint=hint)


def _unlink_quietly(path: Path) -> None:
    with suppress(OSError):
        path.unlink()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, chunk: bytes) -> None:
    view = memoryview(chunk)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class LayoutStore(ImageStore):
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
            raise _storage_error(exc, "open the layout", path) from exc
        store._initialise(create)
        return store

    def _initialise(self, create: bool) -> None:
        layout = self._root / _LAYOUT_FILE
        index = self._root / _INDEX_FILE
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
    def open_blob(self, descriptor: Descriptor) -> Iterator[Iterator[bytes]]:
        """Stream a blob in 1 MiB chunks, checking size and digest at EOF."""
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
            yield self._stream(fd, path, descriptor, what)
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
        """Listed manifests whose ``subject`` is ``subject`` (at most 1000 are read)."""
        found: list[Descriptor] = []
        reads = 0
        for entry in self._entries():
            if entry.media_type not in media.MANIFESTS:
                continue
            if entry.digest not in self._manifests:
                if reads >= MAX_REFERRER_READS or not self.has_manifest(entry.digest):
                    continue
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
            if any(_entry_digest(e) == str(manifest.digest) for e in entries):
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

    # -- index.json ----------------------------------------------------------------------

    def _read_index(self) -> dict[str, Any]:
        raw = self._read_file(self._root / _INDEX_FILE, MAX_INDEX_SIZE, what="index.json")
        try:
            doc = loads_strict(raw)
        except JSONFormatError as exc:
            raise self._corrupt("index.json", str(exc)) from None
        if not isinstance(doc, dict) or doc.get("schemaVersion") != 2:
            raise self._corrupt("index.json", "not an image index with schemaVersion 2")
        if not isinstance(doc.get("manifests"), list):
            raise self._corrupt("index.json", "'manifests' must be a list")
        return doc

    def _entries(self) -> list[Descriptor]:
        """The index.json entries digestgate understands (others are kept but not used)."""
        out = []
        for raw_entry in self._read_index()["manifests"]:
            try:
                out.append(Descriptor.from_json(raw_entry, "index.json entry"))
            except InvalidManifestError:
                continue
        return out

    def _update_index(self, change: Callable[[list[Any]], bool]) -> None:
        """Read-modify-write index.json under the layout's exclusive lock."""
        with self._locked():
            doc = self._read_index()
            entries = list(doc["manifests"])
            if change(entries):
                doc["manifests"] = entries
                self._write_file(self._root / _INDEX_FILE, [dumps_canonical(doc)])

    def _list(self, manifest: Manifest, tag: str | None) -> None:
        """List a stored manifest in index.json (see the module docstring for the rules)."""
        digest = str(manifest.digest)
        entry: dict[str, Any] = {
            "mediaType": manifest.media_type,
            "digest": digest,
            "size": len(manifest.raw),
        }
        if manifest.artifact_type:
            entry["artifactType"] = manifest.artifact_type
        children = (
            {str(d.digest) for d in manifest.manifests}
            if isinstance(manifest, ImageIndex)
            else set()
        )

        def change(entries: list[Any]) -> bool:
            before = list(entries)
            if tag is not None:
                current = [e for e in entries if _entry_tag(e) == tag]
                if current and all(_entry_digest(e) == digest for e in current):
                    return False
                entries[:] = _untag(entries, tag)
                entries.append({**entry, "annotations": {REF_NAME: tag}})
                entries[:] = [e for e in entries if not (_plain(e) and _entry_digest(e) == digest)]
            elif not any(_entry_digest(e) == digest for e in entries):
                entries.append(entry)
            if children:
                entries[:] = [
                    e for e in entries if not (_plain(e) and _entry_digest(e) in children)
                ]
            return entries != before

        self._update_index(change)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        path = self._root / _LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise _storage_error(exc, "lock", path) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    # -- files ---------------------------------------------------------------------------

    def _blob_path(self, digest: Digest) -> Path:
        # Digest validated hex and algorithm on construction: no separators, no dots.
        return self._root / "blobs" / digest.algorithm / digest.hex

    def _contained(self, path: Path) -> Path:
        """``path`` fully resolved; refused when it leads outside the layout."""
        real = path.resolve()
        if real != self._root and not real.is_relative_to(self._root):
            raise StorageError(
                f"{path} leads outside the layout {self._path} (a symlink?)",
                hint="a layout must not contain symlinks pointing elsewhere; remove them",
            )
        return real

    def _exists(self, path: Path) -> bool:
        try:
            return stat.S_ISREG(self._contained(path).stat().st_mode)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise _storage_error(exc, "inspect", path) from exc

    def _open_for_read(self, path: Path, *, what: str) -> int:
        real = self._contained(path)
        try:
            fd = os.open(real, _READ_FLAGS)
        except FileNotFoundError:
            raise NotFoundError(f"{what} not found", hint="check the digest or tag") from None
        except OSError as exc:
            raise _storage_error(exc, "read", path) from exc
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise StorageError(f"{path} is not a regular file", hint="remove it from the layout")
        return fd

    def _read_file(self, path: Path, limit: int, *, what: str) -> bytes:
        fd = self._open_for_read(path, what=what)
        try:
            if os.fstat(fd).st_size > limit:
                raise StorageError(
                    f"{what} in {self._path} is larger than {limit} bytes",
                    hint="refusing oversized content",
                )
            parts = []
            total = 0
            while chunk := os.read(fd, CHUNK_SIZE):
                total += len(chunk)
                if total > limit:
                    raise StorageError(f"{what} in {self._path} grew while being read")
                parts.append(chunk)
            return b"".join(parts)
        except OSError as exc:
            raise _storage_error(exc, "read", path) from exc
        finally:
            os.close(fd)

    def _stream(self, fd: int, path: Path, descriptor: Descriptor, what: str) -> Iterator[bytes]:
        hasher = DigestHasher(descriptor.digest.algorithm)
        while True:
            try:
                chunk = os.read(fd, CHUNK_SIZE)
            except OSError as exc:
                raise _storage_error(exc, "read", path) from exc
            if not chunk:
                break
            hasher.update(chunk)
            if hasher.size > descriptor.size:
                break  # grew on disk: fails the size check below
            yield chunk
        hasher.check(descriptor.digest, descriptor.size, what=what)

    def _put_bytes(self, digest: Digest, raw: bytes) -> None:
        """Store small content (a manifest) whose digest was computed from ``raw``."""
        path = self._blob_path(digest)
        if self._exists(path):
            present = self._read_file(path, MAX_MANIFEST_SIZE, what=f"manifest {digest.short}")
            if present == raw:
                return  # otherwise damaged on disk: rewrite it
        self._write_file(self._blob_path(digest), [raw])

    def _write_file(
        self,
        final: Path,
        chunks: Iterable[bytes],
        *,
        before_commit: Callable[[], None] | None = None,
    ) -> None:
        """Write atomically: temp file in the same directory, fsync, verify, replace."""
        # Resolve first, so a symlinked directory leading outside is refused before mkdir.
        directory = self._contained(final.parent)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _storage_error(exc, "create the directory", final.parent) from exc
        temp = directory / f".tmp-{final.name[:16]}-{secrets.token_hex(8)}"
        fd: int | None = None
        try:
            fd = os.open(temp, _CREATE_FLAGS, 0o644)
            for chunk in chunks:
                _write_all(fd, chunk)
            os.fsync(fd)
            os.close(fd)
            fd = None
            if before_commit is not None:
                before_commit()
            temp.replace(directory / final.name)
            _fsync_dir(directory)
        except BaseException as exc:
            if fd is not None:
                os.close(fd)
            _unlink_quietly(temp)
            if isinstance(exc, OSError):
                raise _storage_error(exc, "write", final) from exc
            raise

    def _corrupt(self, what: str, reason: str) -> StorageError:
        return StorageError(
            f"invalid {what} in {self._path}: {reason}",
            hint="the layout is damaged or was not written by an OCI tool",
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


def _entry_digest(entry: Any) -> str | None:
    value = entry.get("digest") if isinstance(entry, dict) else None
    return value if isinstance(value, str) else None


def _entry_tag(entry: Any) -> str | None:
    annotations = entry.get("annotations") if isinstance(entry, dict) else None
    value = annotations.get(REF_NAME) if isinstance(annotations, dict) else None
    return value if isinstance(value, str) else None


def _plain(entry: Any) -> bool:
    """An entry that only keeps content listed: no annotations, no artifact type."""
    return isinstance(entry, dict) and not entry.get("annotations") and "artifactType" not in entry


def _untag(entries: list[Any], tag: str) -> list[Any]:
    """Remove ``tag`` from entries; an entry left plain is dropped when listed elsewhere."""
    out: list[Any] = []
    for entry in entries:
        if _entry_tag(entry) != tag:
            out.append(entry)
            continue
        annotations = {k: v for k, v in entry["annotations"].items() if k != REF_NAME}
        rest = {k: v for k, v in entry.items() if k != "annotations"}
        if annotations:
            rest["annotations"] = annotations
        out.append(rest)
    listed_elsewhere = {_entry_digest(e) for e in out if not _plain(e)}
    seen: set[str | None] = set()
    kept = []
    for entry in out:
        if _plain(entry):
            digest = _entry_digest(entry)
            if digest in listed_elsewhere or digest in seen:
                continue
            seen.add(digest)
        kept.append(entry)
    return kept
