"""The directory side of an OCI image layout: index.json, its lock, and safe file I/O.

:class:`LayoutDir` is the base of :class:`~digestgate.oci.layout.LayoutStore`. It holds
what the safety rules of :mod:`digestgate.oci.layout` rest on: paths built from validated
digests and kept inside the layout (``O_NOFOLLOW``), size-capped verified reads, atomic
writes (temporary file, fsync, ``os.replace``), and the read-modify-write of ``index.json``
under an exclusive ``flock``, with the rules of which entries it lists (image-spec 1.1
image-layout.md).
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
from digestgate.errors import IntegrityError, NotFoundError, StorageError
from digestgate.jsonutil import JSONFormatError, dumps_canonical, loads_strict
from digestgate.oci.manifest import (
    MAX_MANIFEST_SIZE,
    Descriptor,
    ImageIndex,
    InvalidManifestError,
    Manifest,
)

#: Blobs are read and streamed in chunks of this size.
CHUNK_SIZE: Final = 1024 * 1024
#: ``index.json`` larger than this is refused (tens of thousands of entries fit).
MAX_INDEX_SIZE: Final = 32 * 1024 * 1024
#: The layout tag annotation (image-spec annotations.md; valid on index.json entries only).
REF_NAME: Final = "org.opencontainers.image.ref.name"

INDEX_FILE: Final = "index.json"
_LOCK_FILE: Final = ".index.json.lock"
_TEMP_PREFIX: Final = ".tmp-"
#: A temporary file this old, that no writer holds locked, was left by a killed run.
STALE_TEMP_AGE: Final = 60.0
#: O_NONBLOCK: a FIFO planted in the layout is refused by the fstat check, not waited on.
_READ_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_CREATE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def storage_error(exc: OSError, action: str, path: Path | str) -> StorageError:
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


class LayoutDir:
    """The files of one layout directory, beneath :class:`~digestgate.oci.layout.LayoutStore`."""

    _path: str
    _root: Path

    # -- index.json ----------------------------------------------------------------------

    def _read_index(self) -> dict[str, Any]:
        raw = self._read_file(self._root / INDEX_FILE, MAX_INDEX_SIZE, what="index.json")
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
                self._write_file(self._root / INDEX_FILE, [dumps_canonical(doc)])

    def _list(
        self,
        manifest: Manifest,
        tag: str | None,
        precondition: Callable[[list[Any]], None] | None = None,
    ) -> None:
        """List a stored manifest in index.json (see the module docstring for the rules).

        ``precondition`` runs under the lock on the entries as they are, before any change:
        raising there leaves index.json untouched (a compare-and-set of a tag).
        """
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
            if precondition is not None:
                precondition(entries)
            before = list(entries)
            if tag is not None:
                current = [e for e in entries if entry_tag(e) == tag]
                if current and all(entry_digest(e) == digest for e in current):
                    return False
                entries[:] = _untag(entries, tag)
                entries.append({**entry, "annotations": {REF_NAME: tag}})
                entries[:] = [e for e in entries if not (_plain(e) and entry_digest(e) == digest)]
            elif not any(entry_digest(e) == digest for e in entries):
                entries.append(entry)
            if children:
                entries[:] = [e for e in entries if not (_plain(e) and entry_digest(e) in children)]
            return entries != before

        self._update_index(change)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        path = self._root / _LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise storage_error(exc, "lock", path) from exc
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
            raise storage_error(exc, "inspect", path) from exc

    def _open_for_read(self, path: Path, *, what: str) -> int:
        real = self._contained(path)
        try:
            fd = os.open(real, _READ_FLAGS)
        except FileNotFoundError:
            raise NotFoundError(f"{what} not found", hint="check the digest or tag") from None
        except OSError as exc:
            raise storage_error(exc, "read", path) from exc
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
            raise storage_error(exc, "read", path) from exc
        finally:
            os.close(fd)

    def _stream(
        self, fd: int, path: Path, descriptor: Descriptor, what: str, *, hashed: bool = True
    ) -> Iterator[bytes]:
        hasher = DigestHasher(descriptor.digest.algorithm) if hashed else None
        size = 0
        while True:
            try:
                chunk = os.read(fd, CHUNK_SIZE)
            except OSError as exc:
                raise storage_error(exc, "read", path) from exc
            if not chunk:
                break
            size += len(chunk)
            if hasher is not None:
                hasher.update(chunk)
            if size > descriptor.size:
                break  # grew on disk: fails the size check below
            yield chunk
        if hasher is not None:
            hasher.check(descriptor.digest, descriptor.size, what=what)
        elif size != descriptor.size:
            raise IntegrityError(
                f"{what}: {size} bytes, expected {descriptor.size}",
                hint="the layout was altered on disk; copy the image again",
            )

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
            raise storage_error(exc, "create the directory", final.parent) from exc
        temp = directory / f"{_TEMP_PREFIX}{final.name[:16]}-{secrets.token_hex(8)}"
        fd: int | None = None
        try:
            fd = os.open(temp, _CREATE_FLAGS, 0o644)
            # Held while the file is written: the sweep of a later run leaves it alone.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
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
                raise storage_error(exc, "write", final) from exc
            raise

    def _sweep_stale_temps(self, now: float) -> list[Path]:
        """Remove temporary files left by killed writers; return what was removed.

        Under the index lock, a file is removed only when it is older than
        ``STALE_TEMP_AGE`` and no process holds its lock (a live writer always does, so a
        concurrent promotion's blob in flight survives).
        """
        removed: list[Path] = []
        blobs = self._root / "blobs"
        directories = [self._root]
        with suppress(OSError):
            directories += [d for d in blobs.iterdir() if d.is_dir() and not d.is_symlink()]
        with self._locked():
            for directory in directories:
                try:
                    temps = [p for p in directory.iterdir() if p.name.startswith(_TEMP_PREFIX)]
                except OSError:
                    continue
                removed.extend(path for path in temps if _stale(path, now))
        return removed

    def _corrupt(self, what: str, reason: str) -> StorageError:
        return StorageError(
            f"invalid {what} in {self._path}: {reason}",
            hint="the layout is damaged or was not written by an OCI tool",
        )


def _stale(path: Path, now: float) -> bool:
    """Remove ``path`` when it is an old regular file nobody holds locked; True if removed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or now - info.st_mtime < STALE_TEMP_AGE:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # a live writer holds it
        path.unlink()
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def entry_digest(entry: Any) -> str | None:
    value = entry.get("digest") if isinstance(entry, dict) else None
    return value if isinstance(value, str) else None


def entry_tag(entry: Any) -> str | None:
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
        if entry_tag(entry) != tag:
            out.append(entry)
            continue
        annotations = {k: v for k, v in entry["annotations"].items() if k != REF_NAME}
        rest = {k: v for k, v in entry.items() if k != "annotations"}
        if annotations:
            rest["annotations"] = annotations
        out.append(rest)
    listed_elsewhere = {entry_digest(e) for e in out if not _plain(e)}
    seen: set[str | None] = set()
    kept = []
    for entry in out:
        if _plain(entry):
            digest = entry_digest(entry)
            if digest in listed_elsewhere or digest in seen:
                continue
            seen.add(digest)
        kept.append(entry)
    return kept
