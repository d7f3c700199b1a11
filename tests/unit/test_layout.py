"""OCI image layouts: round trips, tags, verification on read, containment, concurrency."""

from __future__ import annotations

import json
import multiprocessing
import random
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digestgate.digest import Digest
from digestgate.errors import (
    ExitCode,
    IntegrityError,
    InternalError,
    InvalidReferenceError,
    NotFoundError,
    StorageError,
)
from digestgate.jsonutil import dumps_canonical
from digestgate.oci import media
from digestgate.oci.layout import REF_NAME, LayoutStore
from digestgate.oci.manifest import (
    Descriptor,
    ImageIndex,
    Platform,
    build_artifact_manifest,
    build_index,
)
from digestgate.reference import TAG_RE, LayoutReference
from tests.fixtures import images
from tests.fixtures.skopeo import run_skopeo

# -- building images in a layout (small, deterministic) -------------------------------------


def put_data(store: LayoutStore, data: bytes, media_type: str) -> Descriptor:
    """Store ``data`` as a blob and describe it."""
    descriptor = Descriptor(media_type, Digest.of(data), len(data))
    store.put_blob(descriptor, [data])
    return descriptor


def write_image(
    store: LayoutStore, seed: str, *, layer_sizes: tuple[int, ...] = (1500, 700)
) -> Descriptor:
    """A single-platform image with pseudo-random layers; returns its manifest descriptor."""
    rng = random.Random(seed)
    config = put_data(store, dumps_canonical({"os": "linux", "seed": seed}), media.OCI_CONFIG)
    layers = [put_data(store, rng.randbytes(n), media.OCI_LAYER_TAR_GZIP) for n in layer_sizes]
    raw = dumps_canonical(
        {
            "schemaVersion": 2,
            "mediaType": media.OCI_MANIFEST,
            "config": config.to_json(),
            "layers": [layer.to_json() for layer in layers],
        }
    )
    return store.put_manifest(raw, media.OCI_MANIFEST)


def write_index(
    store: LayoutStore,
    seed: str,
    *,
    platforms: tuple[str, ...] = ("amd64", "arm64"),
    tag: str | None = None,
    layer_sizes: tuple[int, ...] = (1500, 700),
) -> Descriptor:
    """A multi-platform index over one image per platform."""
    children = [
        replace(
            write_image(store, f"{seed}/{arch}", layer_sizes=layer_sizes),
            platform=Platform(arch, "linux"),
        )
        for arch in platforms
    ]
    return store.put_manifest(build_index(children), media.OCI_INDEX, tag=tag)


def index_entries(root: Path) -> list[dict[str, object]]:
    entries = json.loads((root / "index.json").read_bytes())["manifests"]
    assert isinstance(entries, list)
    return entries


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def store(tmp_path: Path) -> LayoutStore:
    return LayoutStore.open(str(tmp_path / "layout"), create=True)


@pytest.fixture
def root(tmp_path: Path, store: LayoutStore) -> Path:
    return tmp_path / "layout"


# -- opening ---------------------------------------------------------------------------------


def test_create_writes_a_valid_empty_layout(tmp_path: Path) -> None:
    store = LayoutStore.open(str(tmp_path / "new"), create=True)
    assert store.location == LayoutReference(str(tmp_path / "new"))
    header = json.loads((tmp_path / "new" / "oci-layout").read_bytes())
    assert header == {"imageLayoutVersion": "1.0.0"}
    assert index_entries(tmp_path / "new") == []
    assert LayoutStore.open(str(tmp_path / "new"), create=False).list_tags() == []


def test_missing_layout_is_refused_without_create(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as caught:
        LayoutStore.open(str(tmp_path / "absent"), create=False)
    assert caught.value.hint
    assert not (tmp_path / "absent").exists()


def test_directory_that_is_not_a_layout_is_refused(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(StorageError, match="no oci-layout"):
        LayoutStore.open(str(tmp_path / "plain"), create=False)
    (tmp_path / "plain" / "index.json").write_text("{}")
    with pytest.raises(StorageError, match="no oci-layout"):
        LayoutStore.open(str(tmp_path / "plain"), create=True)


@pytest.mark.parametrize(
    ("header", "index"),
    [
        ('{"imageLayoutVersion": "2.0.0"}', '{"schemaVersion": 2, "manifests": []}'),
        ("not json", '{"schemaVersion": 2, "manifests": []}'),
        ('{"imageLayoutVersion": "1.0.0"}', '{"schemaVersion": 2, "manifests": {}}'),
        (
            '{"imageLayoutVersion": "1.0.0"}',
            '{"schemaVersion": 2, "manifests": [], "a": 1, "a": 2}',
        ),
    ],
)
def test_invalid_layout_files_are_refused(tmp_path: Path, header: str, index: str) -> None:
    (tmp_path / "oci-layout").write_text(header)
    (tmp_path / "index.json").write_text(index)
    with pytest.raises(StorageError) as caught:
        LayoutStore.open(str(tmp_path), create=True)
    assert caught.value.exit_code == ExitCode.OPERATIONAL


# -- blobs and manifests ---------------------------------------------------------------------


def test_blob_round_trip_streams_in_chunks(store: LayoutStore, root: Path) -> None:
    data = random.Random(1).randbytes(2 * 1024 * 1024 + 5)
    descriptor = put_data(store, data, media.OCI_LAYER_TAR)
    assert store.has_blob(descriptor.digest)
    assert (root / "blobs" / "sha256" / descriptor.digest.hex).read_bytes() == data
    with store.open_blob(descriptor) as chunks:
        parts = list(chunks)
    assert b"".join(parts) == data
    assert max(len(p) for p in parts) == 1024 * 1024
    assert not store.mount_blob(descriptor, store)


def test_blob_with_wrong_digest_or_size_is_never_stored(store: LayoutStore, root: Path) -> None:
    data = b"layer bytes"
    wrong = Descriptor(media.OCI_LAYER_TAR, Digest.of(b"other"), len(data))
    with pytest.raises(IntegrityError):
        store.put_blob(wrong, [data])
    short = Descriptor(media.OCI_LAYER_TAR, Digest.of(data), len(data) - 1)
    with pytest.raises(IntegrityError):
        store.put_blob(short, [data[:5], data[5:]])
    assert not store.has_blob(wrong.digest)
    assert not store.has_blob(short.digest)
    assert files_under(root / "blobs") == set()


def test_missing_blob_and_manifest_are_not_found(store: LayoutStore) -> None:
    absent = Descriptor(media.OCI_LAYER_TAR, Digest.of(b"nothing"), 7)
    with pytest.raises(NotFoundError), store.open_blob(absent):
        pass
    with pytest.raises(NotFoundError):
        store.get_manifest(absent.digest)
    with pytest.raises(NotFoundError):
        store.resolve(absent.digest)
    assert not store.has_manifest(absent.digest)


def test_manifest_round_trip_keeps_exact_bytes(store: LayoutStore, root: Path) -> None:
    image = write_image(store, "app")
    raw = (root / "blobs" / "sha256" / image.digest.hex).read_bytes()
    assert Digest.of(raw) == image.digest
    assert image.size == len(raw)
    assert image.media_type == media.OCI_MANIFEST
    assert store.get_manifest(image.digest).raw == raw
    assert store.resolve(image.digest) == image
    assert store.resolve(str(image.digest)) == image
    # Put by digest at the top level: listed untagged, so tools that collect garbage keep it.
    assert [e["digest"] for e in index_entries(root)] == [str(image.digest)]


def test_index_put_lists_only_the_index(store: LayoutStore, root: Path) -> None:
    index = write_index(store, "multi")
    manifest = store.get_manifest(index.digest)
    assert isinstance(manifest, ImageIndex)
    assert [str(p.platform) for p in manifest.manifests] == ["linux/amd64", "linux/arm64"]
    assert [e["digest"] for e in index_entries(root)] == [str(index.digest)]
    for child in manifest.manifests:
        assert store.resolve(child.digest).digest == child.digest
    store.put_manifest(manifest.raw, media.OCI_INDEX)  # idempotent
    assert len(index_entries(root)) == 1


def test_index_json_keeps_entries_it_does_not_understand(store: LayoutStore, root: Path) -> None:
    doc = json.loads((root / "index.json").read_bytes())
    foreign = {"mediaType": "x/y", "digest": "blake3:" + "a" * 64, "size": 1}
    doc["manifests"].append(foreign)
    doc["annotations"] = {"org.example": "kept"}
    (root / "index.json").write_text(json.dumps(doc))
    write_image(store, "app")
    after = json.loads((root / "index.json").read_bytes())
    assert foreign in after["manifests"]
    assert after["annotations"] == {"org.example": "kept"}


# -- tags ------------------------------------------------------------------------------------


def test_tags_round_trip_move_and_list(store: LayoutStore, root: Path) -> None:
    first = write_image(store, "one")
    second = write_image(store, "two")
    store.set_tag("v1", first)
    store.set_tag("latest", first)
    assert store.get_tag("v1") == first
    assert store.resolve("v1") == first
    assert store.list_tags() == ["latest", "v1"]
    store.set_tag("latest", second)
    assert store.get_tag("latest") == second
    assert store.get_tag("v1") == first
    tagged = [e for e in index_entries(root) if e.get("annotations")]
    assert sorted(e["annotations"][REF_NAME] for e in tagged) == ["latest", "v1"]  # type: ignore[index]
    # Every manifest stays listed, each digest once when untagged.
    assert {e["digest"] for e in index_entries(root)} == {str(first.digest), str(second.digest)}
    assert len(index_entries(root)) == 2


def test_put_manifest_with_tag(store: LayoutStore) -> None:
    index = write_index(store, "tagged", tag="1.0")
    assert store.get_tag("1.0") == index
    assert store.list_tags() == ["1.0"]


def test_missing_tag_is_none_and_resolve_says_not_found(store: LayoutStore) -> None:
    assert store.get_tag("nope") is None
    with pytest.raises(NotFoundError, match="nope"):
        store.resolve("nope")


def test_set_tag_needs_a_stored_manifest(store: LayoutStore) -> None:
    ghost = Descriptor(media.OCI_MANIFEST, Digest.of(b"ghost"), 5)
    with pytest.raises(NotFoundError):
        store.set_tag("v1", ghost)
    assert store.list_tags() == []


def test_resolve_by_tag_hashes_the_bytes(store: LayoutStore, root: Path) -> None:
    image = write_image(store, "app")
    store.set_tag("v1", image)
    path = root / "blobs" / "sha256" / image.digest.hex
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b'"schemaVersion":2', b'"schemaVersion":2 '))
    fresh = LayoutStore.open(str(root), create=False)
    with pytest.raises(IntegrityError):
        fresh.resolve("v1")
    with pytest.raises(IntegrityError):
        fresh.get_tag("v1")


def test_ambiguous_tag_is_refused(store: LayoutStore, root: Path) -> None:
    one, two = write_image(store, "one"), write_image(store, "two")
    doc = json.loads((root / "index.json").read_bytes())
    doc["manifests"] = [{**d.to_json(), "annotations": {REF_NAME: "v1"}} for d in (one, two)]
    (root / "index.json").write_text(json.dumps(doc))
    with pytest.raises(StorageError, match="different manifests"):
        store.get_tag("v1")


def test_foreign_ref_names_are_not_listed_as_tags(store: LayoutStore, root: Path) -> None:
    image = write_image(store, "app")
    doc = json.loads((root / "index.json").read_bytes())
    doc["manifests"] = [{**image.to_json(), "annotations": {REF_NAME: "example.org/app:1"}}]
    (root / "index.json").write_text(json.dumps(doc))
    assert store.list_tags() == []


HOSTILE_TAGS = ["../../etc/passwd", "a/b", "", ".hidden", "-x", "x" * 129, "v1\n", "..", "a b"]


@pytest.mark.parametrize("tag", HOSTILE_TAGS)
def test_hostile_tags_are_refused_everywhere(store: LayoutStore, root: Path, tag: str) -> None:
    image = write_image(store, "app")
    before = files_under(root.parent)
    with pytest.raises(InvalidReferenceError):
        store.set_tag(tag, image)
    with pytest.raises(InvalidReferenceError):
        store.get_tag(tag)
    with pytest.raises(InvalidReferenceError):
        store.put_manifest(store.get_manifest(image.digest).raw, media.OCI_MANIFEST, tag=tag)
    with pytest.raises(InvalidReferenceError):
        store.resolve(tag)
    assert files_under(root.parent) == before
    assert store.list_tags() == []


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tag=st.text(min_size=0, max_size=140))
def test_no_tag_string_creates_a_path(store: LayoutStore, root: Path, tag: str) -> None:
    image = write_image(store, "prop")
    before = files_under(root.parent)
    try:
        store.set_tag(tag, image)
    except InvalidReferenceError:
        assert not TAG_RE.fullmatch(tag)
    else:
        assert TAG_RE.fullmatch(tag)
        assert store.get_tag(tag) == image
    assert files_under(root.parent) == before


@pytest.mark.parametrize("text", ["sha256:../../x", "sha256:" + "A" * 64, "md5:abc"])
def test_hostile_digest_strings_are_refused(store: LayoutStore, text: str) -> None:
    with pytest.raises(InvalidReferenceError):
        store.resolve(text)


# -- verification on read and containment ------------------------------------------------


def test_blob_altered_on_disk_fails_on_read(store: LayoutStore, root: Path) -> None:
    data = random.Random(2).randbytes(3 * 1024 * 1024)
    descriptor = put_data(store, data, media.OCI_LAYER_TAR)
    path = root / "blobs" / "sha256" / descriptor.digest.hex
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(IntegrityError), store.open_blob(descriptor) as chunks:
        for _ in chunks:
            pass
    path.write_bytes(data + b"x")
    with pytest.raises(IntegrityError, match="bytes"), store.open_blob(descriptor) as chunks:
        pass


def test_manifest_altered_on_disk_fails_on_read(store: LayoutStore, root: Path) -> None:
    image = write_image(store, "app")
    path = root / "blobs" / "sha256" / image.digest.hex
    path.write_bytes(path.read_bytes() + b" ")
    with pytest.raises(IntegrityError):
        LayoutStore.open(str(root), create=False).get_manifest(image.digest)


def test_symlinked_blob_pointing_outside_is_refused(
    store: LayoutStore, root: Path, tmp_path: Path
) -> None:
    data = b"secret outside the layout"
    outside = tmp_path / "outside"
    outside.write_bytes(data)
    descriptor = Descriptor(media.OCI_LAYER_TAR, Digest.of(data), len(data))
    (root / "blobs" / "sha256").mkdir(parents=True)
    (root / "blobs" / "sha256" / descriptor.digest.hex).symlink_to(outside)
    with pytest.raises(StorageError, match="outside"):
        store.has_blob(descriptor.digest)
    with pytest.raises(StorageError, match="outside"), store.open_blob(descriptor):
        pass


def test_symlinked_blob_directory_pointing_outside_is_refused(
    store: LayoutStore, root: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / "blobs").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(StorageError, match="outside"):
        put_data(store, b"data", media.OCI_LAYER_TAR)
    assert list(elsewhere.iterdir()) == []


def test_symlinked_index_pointing_outside_is_refused(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "index-outside.json"
    (root / "index.json").rename(outside)
    (root / "index.json").symlink_to(outside)
    with pytest.raises(StorageError, match="outside"):
        LayoutStore.open(str(root), create=False)


def test_symlink_inside_the_layout_is_followed(store: LayoutStore, root: Path) -> None:
    data = b"deduplicated layer"
    descriptor = put_data(store, data, media.OCI_LAYER_TAR)
    blob_dir = root / "blobs" / "sha256"
    (blob_dir / descriptor.digest.hex).rename(root / "shared")
    (blob_dir / descriptor.digest.hex).symlink_to(root / "shared")
    with store.open_blob(descriptor) as chunks:
        assert b"".join(chunks) == data


# -- layouts written by other code ---------------------------------------------------------


def test_layout_written_independently_resolves_to_the_same_digests(tmp_path: Path) -> None:
    index = images.make_index(tmp_path, tag="v1", seed=3)
    docker = images.make_image(tmp_path, tag="docker", docker=True, seed=4)
    evidence = images.make_artifact(
        tmp_path,
        index,
        artifact_type="application/vnd.in-toto.provenance+dsse",
        payload=b'{"payloadType":"x"}',
        payload_media_type=media.DSSE_ENVELOPE,
    )
    store = LayoutStore.open(str(tmp_path), create=False)
    assert store.list_tags() == ["docker", "v1"]
    got = store.resolve("v1")
    assert (str(got.digest), got.size, got.media_type) == (
        index.digest,
        index.size,
        index.media_type,
    )
    assert str(store.resolve("docker").digest) == docker.digest
    assert store.get_manifest(Digest.parse(docker.digest)).media_type == media.DOCKER_MANIFEST
    for child in index.children:
        assert str(store.resolve(child.digest).digest) == child.digest
        for blob in child.blobs:
            described = Descriptor(blob.media_type, Digest.parse(blob.digest), blob.size)
            with store.open_blob(described) as chunks:
                assert images.sha256_digest(b"".join(chunks)) == blob.digest
    found = store.referrers(Digest.parse(index.digest))
    assert [str(d.digest) for d in found] == [evidence.digest]


@pytest.mark.skopeo
def test_skopeo_reads_and_writes_layouts_we_share(tmp_path: Path) -> None:
    ours = LayoutStore.open(str(tmp_path / "ours"), create=True)
    index = write_index(ours, "interop", tag="v1")
    run_skopeo(
        "copy",
        "--all",
        "--preserve-digests",
        f"oci:{tmp_path}/ours:v1",
        f"oci:{tmp_path}/theirs:v2",
    )
    theirs = LayoutStore.open(str(tmp_path / "theirs"), create=False)
    assert theirs.list_tags() == ["v2"]
    assert theirs.resolve("v2") == index
    copied = theirs.get_manifest(index.digest)
    assert isinstance(copied, ImageIndex)
    assert all(theirs.resolve(child.digest).digest == child.digest for child in copied.manifests)


# -- referrers -------------------------------------------------------------------------------


def _referrer(store: LayoutStore, subject: Descriptor, predicate: str) -> Descriptor:
    envelope = put_data(store, f'{{"p":"{predicate}"}}'.encode(), media.DSSE_ENVELOPE)
    raw = build_artifact_manifest(
        artifact_type=media.evidence_artifact_type(predicate),
        layers=[envelope],
        subject=subject,
        annotations={"org.example.kind": predicate, REF_NAME: "sneaky"},
    )
    return store.put_referrer(raw, media.OCI_MANIFEST, subject)


def test_referrers_are_listed_and_filtered(store: LayoutStore, root: Path) -> None:
    image = write_index(store, "app", tag="v1")
    other = write_image(store, "other")
    provenance = _referrer(store, image, "provenance")
    vsa = _referrer(store, image, "vsa")
    assert provenance.artifact_type == "application/vnd.in-toto.provenance+dsse"
    found = store.referrers(image.digest)
    assert {d.digest for d in found} == {provenance.digest, vsa.digest}
    only = store.referrers(image.digest, "application/vnd.in-toto.vsa+dsse")
    assert [d.digest for d in only] == [vsa.digest]
    assert only[0].annotations["org.example.kind"] == "vsa"
    assert store.referrers(other.digest) == []
    # Listed untagged: the ref.name annotation of the referrer never becomes a tag.
    assert store.list_tags() == ["v1"]
    fresh = LayoutStore.open(str(root), create=False)
    assert {d.digest for d in fresh.referrers(image.digest)} == {provenance.digest, vsa.digest}


def test_put_referrer_checks_the_subject(store: LayoutStore) -> None:
    image, other = write_image(store, "a"), write_image(store, "b")
    raw = build_artifact_manifest(artifact_type="x/y", layers=[], subject=image)
    with pytest.raises(InternalError):
        store.put_referrer(raw, media.OCI_MANIFEST, other)


# -- concurrency -----------------------------------------------------------------------------


def test_concurrent_threads_lose_no_index_entries(store: LayoutStore, root: Path) -> None:
    images = [write_image(store, f"img{i}", layer_sizes=(10,)) for i in range(12)]
    start = threading.Barrier(len(images))

    def tag(i: int) -> None:
        start.wait()
        store.set_tag(f"t{i}", images[i])

    threads = [threading.Thread(target=tag, args=(i,)) for i in range(len(images))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.list_tags() == sorted(f"t{i}" for i in range(len(images)))


def _tag_many(path: str, prefix: str, count: int, barrier: object) -> None:
    store = LayoutStore.open(path, create=False)
    image = store.resolve("base")
    barrier.wait()  # type: ignore[attr-defined]
    for i in range(count):
        store.set_tag(f"{prefix}{i}", image)


def test_concurrent_processes_lose_no_index_entries(store: LayoutStore, root: Path) -> None:
    store.set_tag("base", write_image(store, "base"))
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(2)
    workers = [
        context.Process(target=_tag_many, args=(str(root), prefix, 15, barrier))
        for prefix in ("a", "b")
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    expected = {"base"} | {f"{p}{i}" for p in "ab" for i in range(15)}
    assert set(store.list_tags()) == expected
