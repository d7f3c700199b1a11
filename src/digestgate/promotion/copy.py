"""Copy an image by digest between two image stores, verifying every step.

The promotion copy: blobs first (skipped when present, mounted when the target can, else
streamed with the digest verified by both ends, in constant memory), then child manifests
by digest, then the index by digest with its exact bytes (distribution-spec 1.1 "Pushing
manifests": blobs, then children, then the index). Each manifest written is read back and
hashed. Tags are never touched here: the caller applies them only after every artifact is
copied, so a failure never leaves a half-promoted tag.

A manifest the target already holds is skipped together with everything below it: a
registry accepts a manifest only when the blobs and children it names are present, and a
layout written by this code stores them first, so its presence vouches for its content.

Only the :class:`~digestgate.oci.store.ImageStore` interface is used, so any pair of stores
(registry, layout) works.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from typing import Final, Protocol

from digestgate import interrupt
from digestgate.concurrency import run_all
from digestgate.digest import Digest
from digestgate.errors import IntegrityError, StorageError, UsageError
from digestgate.oci.manifest import Descriptor, ImageIndex, InvalidManifestError, Manifest
from digestgate.oci.store import ImageStore
from digestgate.reference import ImageReference

#: Indexes nested deeper than this are refused (real images nest one or two levels).
MAX_NESTING: Final = 8
#: Distinct manifests and blobs one copy accepts. A multi-platform image with attestations
#: has a few dozen manifests and at most ~127 layers per platform; the caps stop a hostile
#: index from holding thousands of 4 MiB manifests in memory or queueing endless transfers.
MAX_MANIFESTS: Final = 1000
MAX_BLOBS: Final = 20_000


class ProgressSink(Protocol):
    """Receives byte counts while blobs are copied; called from worker threads."""

    def start(self, total_bytes: int) -> None:
        """The copy begins; ``total_bytes`` is the size of every blob involved."""

    def advance(self, n: int) -> None:
        """``n`` more bytes are done (streamed, mounted or found present)."""

    def done(self) -> None:
        """The copy ended (successfully or not)."""


def human_size(n: int) -> str:
    """``n`` bytes for a person: ``512 B``, ``1.5 MiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


@dataclass
class CopyReport:
    """What a copy did, filled in as it goes so a failed copy can still say what it copied."""

    blobs_mounted: int = 0
    bytes_mounted: int = 0
    blobs_uploaded: int = 0
    bytes_uploaded: int = 0
    blobs_skipped: int = 0
    bytes_skipped: int = 0
    manifests_put: int = 0
    manifests_skipped: int = 0
    copied: list[Digest] = field(default_factory=list)
    """Digests of the blobs and manifests written to the target, in completion order."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def _blob(self, blob: Descriptor, how: str) -> None:
        with self._lock:
            if how == "mounted":
                self.blobs_mounted += 1
                self.bytes_mounted += blob.size
            elif how == "uploaded":
                self.blobs_uploaded += 1
                self.bytes_uploaded += blob.size
            else:
                self.blobs_skipped += 1
                self.bytes_skipped += blob.size
                return
            self.copied.append(blob.digest)

    def _manifest(self, digest: Digest, *, put: bool) -> None:
        with self._lock:
            if put:
                self.manifests_put += 1
                self.copied.append(digest)
            else:
                self.manifests_skipped += 1

    def summary(self) -> str:
        """One line for people: what moved and what was already there."""
        return (
            f"{self.manifests_put} manifest(s) written, {self.manifests_skipped} already present; "
            f"blobs: {self.blobs_uploaded} uploaded ({human_size(self.bytes_uploaded)}), "
            f"{self.blobs_mounted} mounted, {self.blobs_skipped} already present"
        )


@dataclass(frozen=True)
class CopyPlan:
    """What a copy would do (``--dry-run``); computing it writes nothing."""

    manifests_to_put: tuple[Descriptor, ...]
    """Manifests missing from the target, children before the index naming them."""
    manifests_present: tuple[Descriptor, ...]
    blobs_to_copy: tuple[Descriptor, ...]
    blobs_present: tuple[Descriptor, ...]
    mount_possible: bool
    """True when both stores are repositories of one registry: the registry then decides,
    blob by blob, whether a mount works. False means every missing blob is streamed."""

    @property
    def bytes_to_copy(self) -> int:
        """Bytes of the blobs the target lacks."""
        return sum(blob.size for blob in self.blobs_to_copy)


@dataclass
class _Walk:
    manifests: list[Manifest] = field(default_factory=list)
    present: list[Descriptor] = field(default_factory=list)
    blobs: dict[Digest, Descriptor] = field(default_factory=dict)


def _walk(source: ImageStore, target: ImageStore, root: Descriptor) -> _Walk:
    """Read the source tree below ``root``, pruned at manifests the target already has."""
    walk = _Walk()
    seen: set[Digest] = set()

    def visit(descriptor: Descriptor, depth: int) -> None:
        if descriptor.digest in seen:
            return
        seen.add(descriptor.digest)
        if depth > MAX_NESTING:
            raise InvalidManifestError(
                f"index nested deeper than {MAX_NESTING} levels at {descriptor.digest.short}",
                hint="refusing to copy an unusual image structure",
            )
        # Both answers are needed in the usual case (the target lacks it): ask side by side.
        calls: list[Callable[[], object]] = [
            partial(target.has_manifest, descriptor.digest),
            partial(source.get_manifest, descriptor.digest),
        ]
        present, manifest = run_all(calls)
        if present:
            walk.present.append(descriptor)
            return
        assert isinstance(manifest, Manifest)
        if len(manifest.raw) != descriptor.size:
            raise IntegrityError(
                f"manifest {descriptor.digest.short} has {len(manifest.raw)} bytes, "
                f"its descriptor says {descriptor.size}",
                hint="the source serves content that does not match its index; do not copy it",
            )
        if len(seen) > MAX_MANIFESTS:
            raise _too_big(root, f"more than {MAX_MANIFESTS} manifests")
        if isinstance(manifest, ImageIndex):
            for child in manifest.manifests:
                visit(child, depth + 1)
        else:
            for blob in manifest.blobs:
                walk.blobs.setdefault(blob.digest, blob)
            if len(walk.blobs) > MAX_BLOBS:
                raise _too_big(root, f"more than {MAX_BLOBS} blobs")
        walk.manifests.append(manifest)

    visit(root, 0)
    return walk


def _too_big(root: Descriptor, what: str) -> InvalidManifestError:
    return InvalidManifestError(
        f"image {root.digest.short} names {what}",
        hint="refusing to copy an unusual image structure",
    )


def _same_registry(source: ImageStore, target: ImageStore) -> bool:
    a, b = source.location, target.location
    return (
        isinstance(a, ImageReference)
        and isinstance(b, ImageReference)
        and (a.registry == b.registry)
    )


def plan_copy(source: ImageStore, target: ImageStore, descriptor: Descriptor) -> CopyPlan:
    """What :func:`copy_image` would do; only reads from both stores."""
    walk = _walk(source, target, descriptor)
    present: list[Descriptor] = []
    missing: list[Descriptor] = []
    for blob in walk.blobs.values():
        (present if target.has_blob(blob.digest) else missing).append(blob)
    return CopyPlan(
        manifests_to_put=tuple(m.descriptor for m in walk.manifests),
        manifests_present=tuple(walk.present),
        blobs_to_copy=tuple(missing),
        blobs_present=tuple(present),
        mount_possible=_same_registry(source, target),
    )


def copy_image(
    source: ImageStore,
    target: ImageStore,
    descriptor: Descriptor,
    *,
    concurrency: int = 4,
    progress: ProgressSink | None = None,
    report: CopyReport | None = None,
) -> CopyReport:
    """Copy the manifest or index ``descriptor`` and everything it names, by digest.

    ``report`` (optional) is filled in as the copy proceeds, so after a failure the caller
    still knows what reached the target. Errors are the stores' own
    :class:`~digestgate.errors.DigestgateError` subclasses, raised once in-flight blob
    transfers have finished; a re-run continues where the failed one stopped.
    """
    if concurrency < 1:
        raise UsageError("concurrency must be at least 1", hint="use --concurrency 1 or more")
    report = report if report is not None else CopyReport()
    try:
        walk = _walk(source, target, descriptor)
        for present in walk.present:
            report._manifest(present.digest, put=False)
        blobs = list(walk.blobs.values())
        if progress is not None:
            progress.start(sum(blob.size for blob in blobs))
        try:
            copy_blobs(source, target, blobs, concurrency, report, progress)
        finally:
            if progress is not None:
                progress.done()
        for manifest in walk.manifests:
            _put_manifest(target, manifest)
            report._manifest(manifest.digest, put=True)
    except OSError as exc:
        # A store should translate its own OS errors; this keeps a traceback from leaking.
        raise StorageError(
            f"copy to {target.location} failed: {exc.strerror or exc}",
            hint="check free space and permissions, then run the copy again",
        ) from exc
    return report


def copy_blobs(
    source: ImageStore,
    target: ImageStore,
    blobs: list[Descriptor],
    concurrency: int,
    report: CopyReport,
    progress: ProgressSink | None,
) -> None:
    """Copy blobs with at most ``concurrency`` in flight; stop at the first failure.

    Each blob is mounted (same registry), skipped (already there) or streamed from a
    reopenable source, so an upload retries and resumes; the target hashes every byte.
    """
    if not blobs:
        return
    stop = threading.Event()
    mount = _same_registry(source, target)

    def task(blob: Descriptor) -> None:
        if stop.is_set():
            return  # another transfer failed: start nothing new
        try:
            _copy_blob(source, target, blob, report, progress, mount)
        except BaseException:
            stop.set()
            raise

    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="digestgate-copy")
    futures: list[Future[None]] = []
    try:
        futures = [pool.submit(task, blob) for blob in blobs]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
    finally:
        # Waits for transfers already running, so no upload outlives the error.
        pool.shutdown(wait=True, cancel_futures=True)
    failed = [f for f in futures if not f.cancelled() and f.exception() is not None]
    if failed:
        first = next((f for f in failed if f in done), failed[0])
        error = first.exception()
        assert error is not None
        raise error


def _copy_blob(
    source: ImageStore,
    target: ImageStore,
    blob: Descriptor,
    report: CopyReport,
    progress: ProgressSink | None,
    mount: bool,
) -> None:
    if mount and target.mount_blob(blob, source):
        # One request: 201 means the blob is at the target now, mounted or already there
        # (distribution-spec 1.1 "Mounting a blob from another repository").
        report._blob(blob, "mounted")
    elif target.has_blob(blob.digest):
        report._blob(blob, "skipped")
    elif not mount and target.mount_blob(blob, source):
        # From the repository of the target registry this run put it in first (a base
        # layer another artifact shares): homes, oci/registry/homes.py.
        report._blob(blob, "mounted")
    else:
        target.put_blob(blob, _Reopenable(source, blob, progress))
        report._blob(blob, "uploaded")
        return
    if progress is not None:
        progress.advance(blob.size)


class _Reopenable:
    """A source blob that every ``iter()`` opens afresh, so an upload can retry or resume.

    Each pass is a complete, verified read of the source (a download that breaks is
    resumed by the store itself). Progress counts each byte once, however many passes.
    """

    def __init__(self, source: ImageStore, blob: Descriptor, progress: ProgressSink | None):
        self._source = source
        self._blob = blob
        self._progress = progress
        self._counted = 0

    def __iter__(self) -> Iterator[bytes]:
        # The target's put_blob hashes every byte and refuses a wrong digest before the blob
        # is stored (an upload holds its last chunk back until then): the source checks
        # sizes only, so each byte is hashed once on its way.
        with self._source.open_blob(self._blob, hashed=False) as chunks:
            done = 0
            for chunk in chunks:
                interrupt.check()  # SIGTERM: stop; the writer drops its partial file
                yield chunk
                done += len(chunk)
                if self._progress is not None and done > self._counted:
                    self._progress.advance(done - self._counted)
                    self._counted = done


def _put_manifest(target: ImageStore, manifest: Manifest) -> None:
    """Put exact bytes by digest, then read them back and check the digest."""
    stored = target.put_manifest(manifest.raw, manifest.media_type, tag=None)
    back = target.resolve(manifest.digest)
    for got in (stored, back):
        if got.digest != manifest.digest or got.size != len(manifest.raw):
            raise IntegrityError(
                f"{target.location} stored manifest {manifest.digest} as {got.digest} "
                f"({got.size} bytes)",
                hint="the target changed the manifest bytes; it cannot hold this image",
            )
