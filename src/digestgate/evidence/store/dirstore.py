"""``dir:PATH``: envelopes as files in a plain directory (what CI uploads as an artifact).

Writing: one envelope per file named ``<predicate>-<sha256 of the envelope>.json``, written
atomically (temp file, fsync, rename), so the same envelope written twice is one file.

Reading: every ``*.json`` (one envelope) and ``*.jsonl`` / ``*.intoto.jsonl`` (one envelope a
line, blank lines ignored; in-toto bundle.md, specs 1.7) below the directory, recursively.
Nothing read here is trusted, and nothing is skipped: the gate never decides on a read it cut
short (design section 8). An entry read in full that is not an envelope becomes a
:class:`StoreProblem` (``evidence.malformed``) and reading goes on; an entry that could not
be read in full -- over a size cap, beyond the file, line or byte count caps, unreadable, a
symlink leaving the directory, a symlinked directory, a FIFO or device, nested too deep --
stops the read with :class:`~digestgate.errors.IncompleteReadError` (exit 3) naming the
entry and the limit. Caps bound the work an attacker-controlled directory can cause; they
are far above what a release produces.

A missing directory is a configuration error (exit 2) when reading: it is almost always a
typo or an artifact download that did not happen, and saying so beats a gate that blocks
with "provenance missing" for every artifact. (The gate could never pass on it either way.)
An unreadable directory is a :class:`~digestgate.errors.StorageError` (exit 3).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Final

from digestgate.atomicfile import write_atomic
from digestgate.digest import Digest
from digestgate.errors import ConfigError, IncompleteReadError, StorageError
from digestgate.evidence.store.base import (
    MAX_ENVELOPE_SIZE,
    StoredEnvelope,
    StoreProblem,
    SubjectLocation,
    check_envelope,
    envelope_problem,
    predicate_name,
)

MAX_BUNDLE_SIZE: Final = 64 * 1024 * 1024
MAX_FILES: Final = 10_000
MAX_LINES: Final = 10_000
#: Bytes of evidence read from one directory in all (bounds the memory of one read).
MAX_TOTAL_BYTES: Final = 512 * 1024 * 1024
#: Directory nesting below the root that is still walked.
MAX_DEPTH: Final = 32

_BUNDLE_SUFFIXES: Final = (".jsonl",)  # covers .intoto.jsonl


class DirStore:
    """Envelopes in a directory tree."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_file_size: int = MAX_ENVELOPE_SIZE,
        max_bundle_size: int = MAX_BUNDLE_SIZE,
        max_files: int = MAX_FILES,
        max_lines: int = MAX_LINES,
        max_total_bytes: int = MAX_TOTAL_BYTES,
    ) -> None:
        self.path = Path(path)
        self.max_file_size = max_file_size
        self.max_bundle_size = max_bundle_size
        self.max_files = max_files
        self.max_lines = max_lines
        self.max_total_bytes = max_total_bytes

    def describe(self) -> str:
        """``dir:PATH``."""
        return f"dir:{self.path}"

    # --- writing -------------------------------------------------------------------------

    def write(
        self, envelope: bytes, *, predicate: str, subjects: Sequence[SubjectLocation]
    ) -> list[str]:
        """Write the envelope once, content-addressed; subjects live inside the envelope."""
        check_envelope(envelope)
        name = f"{predicate_name(predicate)}-{Digest.of(envelope).hex}.json"
        target = self.path / name
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            if _same_content(target, envelope):
                return [str(target)]
            write_atomic(target, envelope)
        except OSError as exc:
            raise StorageError(
                f"cannot write evidence to {self.path}: {exc.strerror or exc}",
                hint="check that the directory is writable",
            ) from exc
        return [str(target)]

    # --- reading -------------------------------------------------------------------------

    def read(self, subjects: Sequence[SubjectLocation]) -> Iterator[StoredEnvelope | StoreProblem]:
        """Every envelope below the directory (the gate filters by subject after verifying).

        Raises :class:`~digestgate.errors.IncompleteReadError` when any entry could not be
        read in full (see the module doc).
        """
        del subjects  # a directory is not indexed by subject
        root = self._root()
        # Origins name files as the user named the directory, not its resolved path: the
        # walk's paths start with the resolved root, and what follows it is joined to the
        # directory as given (joined as pathlib joins, once, not once per file).
        skip = len(str(root / "_")) - 1
        prefix = str(self.path / "_")[:-1]
        budget = [self.max_total_bytes]
        for files, (path, problem) in enumerate(_walk(root, str(root), 0), start=1):
            shown = _origin(prefix + path[skip:])
            if problem is not None:
                raise self._incomplete(shown, problem)
            if files > self.max_files:
                raise self._incomplete(
                    _origin(self.path), f"holds more than {self.max_files} evidence files"
                )
            yield from self._read_file(root, path, shown, budget)
            if budget[0] < 0:
                raise self._incomplete(
                    _origin(self.path), f"holds more than {self.max_total_bytes} bytes of evidence"
                )

    def _incomplete(self, origin: str, problem: str) -> IncompleteReadError:
        return IncompleteReadError(
            f"evidence store {self.describe()}: {origin} {problem}; the gate reads every "
            "entry or decides nothing",
            hint="remove what does not belong in the evidence directory (or fix its "
            "permissions), then run again",
        )

    def _root(self) -> Path:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            raise ConfigError(
                f"evidence directory {self.path} does not exist",
                hint="check the --evidence path (dir:PATH); `attest` creates the directory",
            ) from None
        except OSError as exc:
            raise StorageError(
                f"cannot read evidence directory {self.path}: {exc.strerror or exc}"
            ) from exc
        if not stat.S_ISDIR(info.st_mode):
            raise ConfigError(
                f"evidence store {self.path} is not a directory",
                hint="dir:PATH names a directory of *.json / *.jsonl envelopes",
            )
        try:
            return self.path.resolve(strict=True)
        except OSError as exc:
            raise StorageError(
                f"cannot read evidence directory {self.path}: {exc.strerror or exc}"
            ) from exc

    def _read_file(
        self, root: Path, path: str, origin: str, budget: list[int]
    ) -> Iterator[StoredEnvelope | StoreProblem]:
        bundle = path.endswith(_BUNDLE_SUFFIXES)
        cap = self.max_bundle_size if bundle else self.max_file_size
        try:
            fd, size = _open_inside(root, path)
        except _Refused as exc:
            raise self._incomplete(origin, str(exc)) from None
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python 3.11)
            detail = getattr(exc, "strerror", None) or exc
            raise self._incomplete(origin, f"cannot be read: {detail}") from None
        try:
            if size > cap:
                # Never read an oversized file into memory: its size alone stops the read.
                raise self._incomplete(origin, f"is {size} bytes, over the {cap}-byte limit")
            budget[0] -= size
            if budget[0] < 0:
                return  # the caller reports the exhausted budget once
            if bundle:
                with os.fdopen(fd, "rb", closefd=False) as handle:
                    yield from self._read_lines(handle, origin)
                return
            # Read what fstat announced (plus one byte to notice growth), never the cap: a
            # read of n bytes allocates n bytes up front.
            data = _read_upto(fd, size + 1)
        except OSError as exc:
            raise self._incomplete(origin, f"cannot be read: {exc.strerror or exc}") from None
        finally:
            os.close(fd)
        if len(data) > size:
            raise self._incomplete(origin, "grew while it was read")
        yield _envelope(data, origin)

    def _read_lines(self, handle: BinaryIO, origin: str) -> Iterator[StoredEnvelope | StoreProblem]:
        limit = self.max_file_size + 2
        total = 0
        for number in range(1, self.max_lines + 2):
            line = handle.readline(limit)
            if not line:
                return
            total += len(line)
            if number > self.max_lines:
                raise self._incomplete(origin, f"holds more than {self.max_lines} lines")
            if total > self.max_bundle_size:
                raise self._incomplete(origin, f"is over the {self.max_bundle_size}-byte limit")
            if len(line) >= limit and not line.endswith(b"\n"):
                raise self._incomplete(
                    f"{origin}:{number}", f"is over the {self.max_file_size}-byte limit"
                )
            body = line.strip()
            if body:
                yield _envelope(body, f"{origin}:{number}")


class _Refused(Exception):
    """A path that must not be opened (symlink escape, not a regular file)."""


def _envelope(raw: bytes, origin: str) -> StoredEnvelope | StoreProblem:
    problem = envelope_problem(raw)
    if problem is not None:
        return StoreProblem(origin, problem)
    return StoredEnvelope(raw, origin)


def _origin(path: str | os.PathLike[str]) -> str:
    """``path`` as text that encodes as UTF-8: undecodable name bytes shown as ``\\xNN``.

    Origins end up in reports and signed VSAs; a lone surrogate would make those fail.
    """
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _is_evidence_name(name: str) -> bool:
    return name.endswith((".json", *_BUNDLE_SUFFIXES))


def _walk(root: Path, directory: str, depth: int) -> Iterator[tuple[str, str | None]]:
    """Evidence files below ``directory`` in sorted order, without following directory links."""
    try:
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda e: e.name)
    except OSError as exc:
        if depth == 0:
            raise StorageError(
                f"cannot read evidence directory {directory}: {exc.strerror or exc}"
            ) from exc
        yield directory, f"cannot be listed: {exc.strerror or exc}"
        return
    for entry in entries:
        path = entry.path
        try:
            is_link = entry.is_symlink()
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError as exc:
            yield path, f"cannot be examined: {exc.strerror or exc}"
            continue
        if is_dir:
            if depth + 1 > MAX_DEPTH:
                yield path, f"is nested deeper than {MAX_DEPTH} directories"
            else:
                yield from _walk(root, path, depth + 1)
        elif _is_evidence_name(entry.name):
            if is_link and Path(path).is_dir():
                yield path, "is a symlinked directory, which is not followed"
            else:
                yield path, None


def _is_link(path: str) -> bool:
    """``Path.is_symlink``: False for a path that is gone or not a directory's entry."""
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP):
            return False
        raise


def _open_inside(root: Path, path: str) -> tuple[int, int]:
    """Open a regular file that is (or whose symlink target is) inside ``root``; return the
    descriptor and the file's size."""
    if _is_link(path):
        target = Path(path).resolve(strict=True)
        if not target.is_relative_to(root):
            raise _Refused("is a symlink pointing outside the evidence directory")
        path = str(target)
    # O_NOFOLLOW: a file swapped for a symlink after the walk is refused, not followed;
    # O_NONBLOCK: a FIFO planted in the directory cannot hang the read.
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Refused("is not a regular file")
        return fd, info.st_size
    except BaseException:
        os.close(fd)
        raise


def _read_upto(fd: int, limit: int) -> bytes:
    """Up to ``limit`` bytes from ``fd``: until end of file or ``limit`` (a read may be short)."""
    data = os.read(fd, limit)
    while data and len(data) < limit:
        more = os.read(fd, limit - len(data))
        if not more:
            break
        data += more
    return data


def _same_content(target: Path, data: bytes) -> bool:
    try:
        if target.is_symlink() or target.stat().st_size != len(data):
            return False
        return target.read_bytes() == data
    except FileNotFoundError:
        return False
