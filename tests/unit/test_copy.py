"""The promotion copy engine between image stores: digests preserved, failures contained."""

from __future__ import annotations

import errno
import io
import os
import random
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from digestgate.cli.progress import StderrProgress
from digestgate.digest import Digest
from digestgate.errors import ExitCode, IntegrityError, RegistryError, StorageError
from digestgate.oci import media
from digestgate.oci.layout import LayoutStore
from digestgate.oci.manifest import (
    Descriptor,
    ImageIndex,
    ImageManifest,
    InvalidManifestError,
    Manifest,
    build_index,
)
from digestgate.oci.store import ImageStore
from digestgate.promotion.copy import MAX_NESTING, CopyReport, copy_image, plan_copy
from digestgate.reference import ImageReference, Location
from tests.fixtures import images
from tests.unit.test_layout import files_under, put_data, write_image, write_index


class Delegate(ImageStore):
    """A store that forwards to another one; tests override single methods."""

    def __init__(self, inner: ImageStore) -> None:
        self.inner = inner

    @property
    def location(self) -> Location:
        return self.inner.location

    def resolve(self, reference: str | Digest) -> Descriptor:
        return self.inner.resolve(reference)

    def get_manifest(self, digest: Digest) -> Manifest:
        return self.inner.get_manifest(digest)

    def has_manifest(self, digest: Digest) -> bool:
        return self.inner.has_manifest(digest)

    def put_manifest(self, raw: bytes, media_type: str, *, tag: str | None = None) -> Descriptor:
        return self.inner.put_manifest(raw, media_type, tag=tag)

    def has_blob(self, digest: Digest) -> bool:
        return self.inner.has_blob(digest)

    def open_blob(
        self, descriptor: Descriptor, *, hashed: bool = True
    ) -> AbstractContextManager[Iterator[bytes]]:
        return self.inner.open_blob(descriptor, hashed=hashed)

    def put_blob(self, descriptor: Descriptor, chunks: Iterable[bytes]) -> None:
        self.inner.put_blob(descriptor, chunks)

    def mount_blob(self, descriptor: Descriptor, source: ImageStore) -> bool:
        return self.inner.mount_blob(descriptor, source)

    def get_tag(self, tag: str) -> Descriptor | None:
        return self.inner.get_tag(tag)

    def set_tag(self, tag: str, descriptor: Descriptor) -> None:
        self.inner.set_tag(tag, descriptor)

    def list_tags(self) -> list[str]:
        return self.inner.list_tags()

    def referrers(self, subject: Digest, artifact_type: str | None = None) -> list[Descriptor]:
        return self.inner.referrers(subject, artifact_type)

    def put_referrer(self, raw: bytes, media_type: str, subject: Descriptor) -> Descriptor:
        return self.inner.put_referrer(raw, media_type, subject)

    def close(self) -> None:
        self.inner.close()


def tree_digests(store: ImageStore, root: Descriptor) -> set[Digest]:
    """Every manifest and blob digest below ``root``, read through ``store``."""
    out = {root.digest}
    manifest = store.get_manifest(root.digest)
    if isinstance(manifest, ImageIndex):
        for child in manifest.manifests:
            out |= tree_digests(store, child)
    else:
        assert isinstance(manifest, ImageManifest)
        out |= {blob.digest for blob in manifest.blobs}
    return out


def blob_sizes(store: ImageStore, root: Descriptor) -> int:
    manifest = store.get_manifest(root.digest)
    if isinstance(manifest, ImageIndex):
        return sum(blob_sizes(store, child) for child in manifest.manifests)
    assert isinstance(manifest, ImageManifest)
    return sum(blob.size for blob in manifest.blobs)


@pytest.fixture
def source(tmp_path: Path) -> LayoutStore:
    return LayoutStore.open(str(tmp_path / "source"), create=True)


@pytest.fixture
def target(tmp_path: Path) -> LayoutStore:
    return LayoutStore.open(str(tmp_path / "target"), create=True)


def no_temp_files(root: Path) -> bool:
    return not any(".tmp-" in name for name in files_under(root))


# -- copies that work ------------------------------------------------------------------------


def test_two_platform_index_copies_by_digest(source: LayoutStore, target: LayoutStore) -> None:
    index = write_index(source, "app", tag="v1")
    report = copy_image(source, target, index)
    assert target.resolve(index.digest) == index
    for digest in tree_digests(source, index):
        assert target.has_blob(digest)
    copied_index = target.get_manifest(index.digest)
    assert isinstance(copied_index, ImageIndex)
    for child in (index, *copied_index.manifests):  # exact bytes for every manifest
        assert target.get_manifest(child.digest).raw == source.get_manifest(child.digest).raw
    assert report.manifests_put == 3
    assert report.blobs_uploaded == 6  # 2 platforms x (config + 2 layers)
    assert report.bytes_uploaded == blob_sizes(source, index)
    assert report.blobs_mounted == report.blobs_skipped == 0
    assert set(report.copied) == tree_digests(source, index)
    assert report.copied[-1] == index.digest  # the index goes last
    assert target.list_tags() == []  # tags are never copied or set
    assert source.list_tags() == ["v1"]


@pytest.mark.parametrize("docker", [False, True])
def test_independently_written_index_copies_byte_for_byte(tmp_path: Path, docker: bool) -> None:
    written = images.make_index(tmp_path / "src", tag="v1", docker=docker, seed=9)
    source = LayoutStore.open(str(tmp_path / "src"), create=False)
    target = LayoutStore.open(str(tmp_path / "dst"), create=True)
    report = copy_image(source, target, source.resolve("v1"))
    assert str(target.resolve(Digest.parse(written.digest)).digest) == written.digest
    assert target.get_manifest(Digest.parse(written.digest)).raw == written.manifest
    manifest_bytes = written.size + sum(child.size for child in written.children)
    assert report.bytes_uploaded + manifest_bytes == written.total_size
    assert target.list_tags() == []


def test_single_image_copy_and_rerun_copies_nothing(
    source: LayoutStore, target: LayoutStore
) -> None:
    image = write_image(source, "single", layer_sizes=(3 * 1024 * 1024, 10))
    first = copy_image(source, target, image)
    assert target.resolve(image.digest).digest == image.digest
    assert (first.manifests_put, first.blobs_uploaded) == (1, 3)
    again = copy_image(source, target, image)
    assert again.copied == []
    assert (again.manifests_put, again.manifests_skipped, again.blobs_uploaded) == (0, 1, 0)


def test_shared_blobs_are_copied_once(source: LayoutStore, target: LayoutStore) -> None:
    write_image(target, "one/amd64")  # a target that already holds one platform's blobs
    index = write_index(source, "one", platforms=("amd64", "arm64"))
    report = copy_image(source, target, index)
    assert report.manifests_skipped == 1  # the amd64 manifest was already there
    assert (report.manifests_put, report.blobs_uploaded) == (2, 3)
    assert target.resolve(index.digest).digest == index.digest


class Sink:
    """A progress sink that adds up what it is told."""

    def __init__(self) -> None:
        self.total = self.seen = 0
        self.finished = False
        self.lock = threading.Lock()

    def start(self, total_bytes: int) -> None:
        self.total = total_bytes

    def advance(self, n: int) -> None:
        with self.lock:
            self.seen += n

    def done(self) -> None:
        self.finished = True


def test_progress_sees_every_byte(source: LayoutStore, target: LayoutStore) -> None:
    index = write_index(source, "progress", layer_sizes=(2 * 1024 * 1024 + 1,))

    sink = Sink()
    copy_image(source, target, index, progress=sink)
    assert sink.total == sink.seen == blob_sizes(source, index)
    assert sink.finished


# -- failures --------------------------------------------------------------------------------


class CorruptingSource(Delegate):
    """Flips one byte of one blob's last chunk while streaming it."""

    def __init__(self, inner: ImageStore, victim: Digest) -> None:
        super().__init__(inner)
        self.victim = victim

    @contextmanager
    def open_blob(
        self, descriptor: Descriptor, *, hashed: bool = True
    ) -> Iterator[Iterator[bytes]]:
        with self.inner.open_blob(descriptor, hashed=hashed) as chunks:
            if descriptor.digest != self.victim:
                yield chunks
                return

            def corrupted() -> Iterator[bytes]:
                parts = list(chunks)
                yield from parts[:-1]
                yield parts[-1][:-1] + bytes([parts[-1][-1] ^ 0xFF])

            yield corrupted()


def test_blob_corrupted_mid_stream_leaves_nothing(
    source: LayoutStore, target: LayoutStore, tmp_path: Path
) -> None:
    image = write_image(source, "big", layer_sizes=(3 * 1024 * 1024 + 7,))
    layer = source.get_manifest(image.digest)
    assert isinstance(layer, ImageManifest)
    victim = layer.layers[0]
    with pytest.raises(IntegrityError):
        copy_image(CorruptingSource(source, victim.digest), target, image, concurrency=2)
    assert not target.has_blob(victim.digest)
    assert not target.has_manifest(image.digest)
    assert no_temp_files(tmp_path / "target")


def test_blob_corrupted_on_disk_in_the_source_is_not_copied(
    source: LayoutStore, target: LayoutStore, tmp_path: Path
) -> None:
    image = write_image(source, "disk", layer_sizes=(2 * 1024 * 1024,))
    manifest = source.get_manifest(image.digest)
    assert isinstance(manifest, ImageManifest)
    path = tmp_path / "source" / "blobs" / "sha256" / manifest.layers[0].digest.hex
    data = bytearray(path.read_bytes())
    data[1024 * 1024 + 3] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        copy_image(source, target, image)
    assert not target.has_blob(manifest.layers[0].digest)
    assert no_temp_files(tmp_path / "target")


class FailingTarget(Delegate):
    """Fails the n-th put_blob with ``error``; counts calls."""

    def __init__(self, inner: ImageStore, fail_at: int, error: Exception) -> None:
        super().__init__(inner)
        self.fail_at = fail_at
        self.error = error
        self.calls = 0

    def put_blob(self, descriptor: Descriptor, chunks: Iterable[bytes]) -> None:
        self.calls += 1
        if self.calls == self.fail_at:
            raise self.error
        self.inner.put_blob(descriptor, chunks)


@pytest.mark.parametrize(
    "error",
    [
        StorageError("disk went away", hint="retry"),
        RegistryError("503 Service Unavailable", status=503, hint="retry later"),
        OSError(errno.EIO, "Input/output error"),
    ],
)
def test_failure_reports_what_was_copied_and_rerun_completes(
    source: LayoutStore, target: LayoutStore, error: Exception
) -> None:
    index = write_index(source, "flaky")
    report = CopyReport()
    failing = FailingTarget(target, fail_at=3, error=error)
    with pytest.raises((StorageError, RegistryError)) as caught:
        copy_image(source, failing, index, concurrency=1, report=report)
    assert caught.value.exit_code == ExitCode.OPERATIONAL
    assert report.blobs_uploaded == 2
    assert len(report.copied) == 2
    assert all(target.has_blob(d) for d in report.copied)
    assert report.manifests_put == 0
    assert not target.has_manifest(index.digest)
    assert "2 uploaded" in report.summary()
    again = copy_image(source, target, index)
    assert again.blobs_skipped == 2
    assert again.blobs_uploaded == 4
    assert target.resolve(index.digest).digest == index.digest


class SlowTarget(Delegate):
    """Records how many put_blob calls run at once."""

    def __init__(self, inner: ImageStore) -> None:
        super().__init__(inner)
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0

    def put_blob(self, descriptor: Descriptor, chunks: Iterable[bytes]) -> None:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(0.02)
            self.inner.put_blob(descriptor, chunks)
        finally:
            with self.lock:
                self.in_flight -= 1


class FailFirstTarget(SlowTarget):
    """The first put_blob fails (once the second is under way); the others are slow."""

    def __init__(self, inner: ImageStore) -> None:
        super().__init__(inner)
        self.calls = 0
        self.second = threading.Event()

    def put_blob(self, descriptor: Descriptor, chunks: Iterable[bytes]) -> None:
        with self.lock:
            self.calls += 1
            first = self.calls == 1
        if first:
            self.second.wait(timeout=5)
            raise StorageError("disk went away", hint="retry")
        self.second.set()
        super().put_blob(descriptor, chunks)


def test_failure_is_raised_only_after_transfers_in_flight_end(
    source: LayoutStore, target: LayoutStore
) -> None:
    index = write_index(source, "inflight")
    failing = FailFirstTarget(target)
    with pytest.raises(StorageError):
        copy_image(source, failing, index, concurrency=2)
    assert failing.calls == 2  # the second transfer started; nothing new after the failure
    assert failing.in_flight == 0  # ... and it ended before the error was raised
    assert not target.has_manifest(index.digest)


def test_concurrency_bound_is_respected(
    source: LayoutStore, target: LayoutStore, tmp_path: Path
) -> None:
    index = write_index(source, "wide", platforms=("amd64", "arm64", "s390x", "ppc64le"))
    slow = SlowTarget(target)
    report = copy_image(source, slow, index, concurrency=3)
    assert report.blobs_uploaded == 12
    assert 2 <= slow.max_in_flight <= 3
    sequential = SlowTarget(LayoutStore.open(str(tmp_path / "other"), create=True))
    copy_image(source, sequential, index, concurrency=1)
    assert sequential.max_in_flight == 1


def test_full_disk_on_a_layout_target(
    source: LayoutStore, target: LayoutStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = write_index(source, "full", layer_sizes=(2 * 1024 * 1024,))
    target_root = tmp_path / "target"
    index_before = (target_root / "index.json").read_bytes()
    real_write = os.write
    written = 0

    def write(fd: int, data: bytes | memoryview) -> int:
        nonlocal written
        if Path(f"/proc/self/fd/{fd}").readlink().is_relative_to(target_root.resolve()):
            written += len(data)
            if written > 3 * 1024 * 1024:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    report = CopyReport()
    with pytest.raises(StorageError) as caught:
        copy_image(source, target, index, report=report, concurrency=2)
    assert caught.value.exit_code == ExitCode.OPERATIONAL
    assert "free space" in (caught.value.hint or "")
    assert str(target_root) in caught.value.message
    assert no_temp_files(target_root)
    for name in files_under(target_root / "blobs"):
        digest = Digest("sha256", Path(name).name)
        assert Digest.of((target_root / "blobs" / name).read_bytes()) == digest
        assert digest in report.copied
    assert (target_root / "index.json").read_bytes() == index_before
    monkeypatch.setattr(os, "write", real_write)
    copy_image(source, target, index)
    assert target.resolve(index.digest).digest == index.digest


# -- dry run and mounts ----------------------------------------------------------------------


def test_plan_writes_nothing(source: LayoutStore, target: LayoutStore, tmp_path: Path) -> None:
    index = write_index(source, "plan")
    put_data(target, b"{}", media.OCI_EMPTY)
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "target").rglob("*")}
    plan = plan_copy(source, target, index)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "target").rglob("*")} == before
    assert [d.digest for d in plan.manifests_to_put][-1] == index.digest
    assert len(plan.manifests_to_put) == 3
    assert len(plan.blobs_to_copy) == 6
    assert plan.bytes_to_copy == blob_sizes(source, index)
    assert plan.blobs_present == () and plan.manifests_present == ()
    assert plan.mount_possible is False
    copy_image(source, target, index)
    done = plan_copy(source, target, index)
    assert done.manifests_to_put == () and done.blobs_to_copy == ()
    assert [d.digest for d in done.manifests_present] == [index.digest]


class MountingTarget(Delegate):
    """A target on the same registry as the source that mounts every blob."""

    def __init__(self, inner: ImageStore, location: Location) -> None:
        super().__init__(inner)
        self._location = location

    @property
    def location(self) -> Location:
        return self._location

    def mount_blob(self, descriptor: Descriptor, source: ImageStore) -> bool:
        with source.open_blob(descriptor) as chunks:  # stands in for the registry's own copy
            self.inner.put_blob(descriptor, chunks)
        return True

    def put_blob(self, descriptor: Descriptor, chunks: Iterable[bytes]) -> None:
        raise AssertionError("a mounted blob must not be uploaded")


def test_mounted_blobs_move_no_bytes(source: LayoutStore, target: LayoutStore) -> None:
    index = write_index(source, "mount")
    src = MountingTarget(source, ImageReference("registry.example", "staging/app"))
    dst = MountingTarget(target, ImageReference("registry.example", "prod/app"))
    assert plan_copy(src, dst, index).mount_possible is True
    sink = Sink()
    report = copy_image(src, dst, index, progress=sink)
    assert (report.blobs_mounted, report.blobs_uploaded, report.bytes_uploaded) == (6, 0, 0)
    assert report.bytes_mounted == blob_sizes(source, index)
    assert sink.seen == sink.total == report.bytes_mounted  # mounted bytes count as done
    assert target.resolve(index.digest).digest == index.digest


# -- progress rendering ----------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_stderr_progress_is_silent_without_a_terminal() -> None:
    stream = io.StringIO()
    progress = StderrProgress(stream)
    progress.start(100)
    progress.advance(100)
    progress.done()
    assert stream.getvalue() == ""


def test_stderr_progress_draws_on_a_terminal() -> None:
    stream = Terminal()
    progress = StderrProgress(stream, label="promoting")
    progress.start(3 * 1024 * 1024)
    progress.advance(3 * 1024 * 1024)
    progress.done()
    assert "promoting: 3.0 MiB / 3.0 MiB (100%)" in stream.getvalue()
    assert stream.getvalue().endswith("\n")


def test_random_layer_sizes_round_trip(source: LayoutStore, target: LayoutStore) -> None:
    rng = random.Random(7)
    sizes = tuple(rng.randrange(0, 3 * 1024 * 1024) for _ in range(4))
    image = write_image(source, "sizes", layer_sizes=sizes)
    copy_image(source, target, image, concurrency=4)
    manifest = target.get_manifest(image.digest)
    assert isinstance(manifest, ImageManifest)
    for blob in manifest.layers:
        with target.open_blob(blob) as chunks:
            assert sum(len(chunk) for chunk in chunks) == blob.size
    assert target.get_manifest(image.digest).raw == source.get_manifest(image.digest).raw


# -- hostile image structures --------------------------------------------------------------------


def _index_over(store: LayoutStore, children: list[Descriptor]) -> Descriptor:
    raw = build_index(children)
    return store.put_manifest(raw, media.OCI_INDEX)


def test_child_whose_size_disagrees_with_the_index_is_refused_before_writing(
    source: LayoutStore, target: LayoutStore, tmp_path: Path
) -> None:
    child = write_image(source, "sized")
    wrong = Descriptor(child.media_type, child.digest, child.size + 1)
    root = _index_over(source, [wrong])
    with pytest.raises(IntegrityError) as caught:
        copy_image(source, target, root)
    assert caught.value.exit_code == ExitCode.OPERATIONAL
    assert f"its descriptor says {child.size + 1}" in caught.value.message
    assert not any(name.startswith("blobs/") for name in files_under(tmp_path / "target"))


class ConvertingTarget(Delegate):
    """Accepts a manifest, but later serves other bytes under its digest."""

    def resolve(self, reference: str | Digest) -> Descriptor:
        found = self.inner.resolve(reference)
        return Descriptor(found.media_type, found.digest, found.size + 1)


def test_manifest_read_back_differently_is_integrity_error(
    source: LayoutStore, target: LayoutStore
) -> None:
    image = write_image(source, "converted")
    report = CopyReport()
    with pytest.raises(IntegrityError) as caught:
        copy_image(source, ConvertingTarget(target), image, report=report)
    assert caught.value.exit_code == ExitCode.OPERATIONAL
    assert str(image.digest) in caught.value.message
    assert report.manifests_put == 0


def test_index_nested_too_deep_is_refused_before_writing(
    source: LayoutStore, target: LayoutStore, tmp_path: Path
) -> None:
    root = write_image(source, "deep")
    for _ in range(MAX_NESTING + 1):
        root = _index_over(source, [root])
    with pytest.raises(InvalidManifestError) as caught:
        copy_image(source, target, root)
    assert caught.value.exit_code == ExitCode.OPERATIONAL
    assert "nested deeper" in caught.value.message
    assert not any(name.startswith("blobs/") for name in files_under(tmp_path / "target"))


@pytest.mark.parametrize(("cap", "value"), [("MAX_MANIFESTS", 3), ("MAX_BLOBS", 4)])
def test_images_with_too_many_manifests_or_blobs_are_refused_before_writing(
    source: LayoutStore,
    target: LayoutStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cap: str,
    value: int,
) -> None:
    # Three platforms: 4 manifests and 3 configs + 6 layers = 9 blobs.
    root = write_index(source, "wide", platforms=("amd64", "arm64", "s390x"))
    monkeypatch.setattr(f"digestgate.promotion.copy.{cap}", value)
    with pytest.raises(InvalidManifestError) as caught:
        copy_image(source, target, root)
    assert caught.value.exit_code == ExitCode.OPERATIONAL
    assert not any(name.startswith("blobs/") for name in files_under(tmp_path / "target"))
    with pytest.raises(InvalidManifestError):
        plan_copy(source, target, root)
