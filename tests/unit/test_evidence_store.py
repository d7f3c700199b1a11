"""Evidence stores: a directory and referrers attached to images (in-memory image stores)."""

from __future__ import annotations

import base64
import json
import os
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from digestgate.digest import Digest
from digestgate.errors import (
    ConfigError,
    ExitCode,
    IncompleteReadError,
    InternalError,
    NotFoundError,
    UsageError,
)
from digestgate.evidence.model import PROVENANCE, TEST_RESULT
from digestgate.evidence.store import (
    StoredEnvelope,
    StoreProblem,
    SubjectLocation,
    open_evidence_store,
    read_all,
)
from digestgate.evidence.store.attached import AttachedStore
from digestgate.evidence.store.dirstore import DirStore
from digestgate.jsonutil import dumps_canonical
from digestgate.oci import media
from digestgate.oci.manifest import Descriptor
from digestgate.reference import parse_location
from tests.fixtures.memory_store import MemoryStore, MemoryStores

BACKEND = "registry.example.org/org/app/backend"
FRONTEND = "registry.example.org/org/app/frontend"


def envelope(text: str = "statement", sigs: int = 1) -> bytes:
    payload = base64.b64encode(text.encode()).decode()
    return dumps_canonical(
        {
            "payload": payload,
            "payloadType": "application/vnd.in-toto+json",
            "signatures": [{"keyid": f"k{i}", "sig": "c2ln"} for i in range(sigs)],
        }
    )


def split(items: list[StoredEnvelope | StoreProblem]) -> tuple[list[bytes], list[StoreProblem]]:
    good = [i.raw for i in items if isinstance(i, StoredEnvelope)]
    bad = [i for i in items if isinstance(i, StoreProblem)]
    return good, bad


# --- dir:PATH ----------------------------------------------------------------------------


def test_dir_write_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = DirStore(tmp_path / "new" / "evidence")
    env = envelope()
    first = store.write(env, predicate="provenance", subjects=[])
    second = store.write(env, predicate=PROVENANCE, subjects=[])
    assert first == second
    expected = tmp_path / "new" / "evidence" / f"provenance-{Digest.of(env).hex}.json"
    assert first == [str(expected)]
    assert expected.read_bytes() == env
    assert sorted(p.name for p in expected.parent.iterdir()) == [expected.name]
    assert store.describe() == f"dir:{tmp_path / 'new' / 'evidence'}"


def test_dir_write_refuses_what_is_not_an_envelope(tmp_path: Path) -> None:
    store = DirStore(tmp_path)
    with pytest.raises(InternalError):
        store.write(b'{"payload": "x"}', predicate="vsa", subjects=[])
    with pytest.raises(InternalError):
        store.write(envelope(), predicate="sbom", subjects=[])
    assert list(tmp_path.iterdir()) == []


def test_dir_reads_json_and_bundles_recursively_in_sorted_order(tmp_path: Path) -> None:
    a, b, c, d = (envelope(t) for t in "abcd")
    (tmp_path / "z.json").write_bytes(a)
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "sub" / "deeper" / "x.intoto.jsonl").write_bytes(b + b"\n\n  \n" + c + b"\n")
    (tmp_path / "m.jsonl").write_bytes(d)  # no trailing newline
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / ".provenance-x.json.abc.tmp").write_bytes(b"partial")
    good, bad = split(list(DirStore(tmp_path).read([])))
    assert bad == []
    assert good == [d, b, c, a]  # m.jsonl, sub/deeper/x.intoto.jsonl, z.json


def test_dir_reports_malformed_files_beside_good_ones(tmp_path: Path) -> None:
    good_env = envelope()
    (tmp_path / "a.json").write_text("[1, 2]")
    (tmp_path / "b.json").write_text('{"payload": "x", "payloadType": "t"}')
    (tmp_path / "c.json").write_text("{not json")
    (tmp_path / "d.json").write_bytes(good_env)
    (tmp_path / "e.jsonl").write_bytes(b"garbage\n" + good_env + b"\n")
    items = list(DirStore(tmp_path).read([]))
    good, bad = split(items)
    assert good == [good_env, good_env]
    origins = [p.origin for p in bad]
    assert origins == [
        str(tmp_path / "a.json"),
        str(tmp_path / "b.json"),
        str(tmp_path / "c.json"),
        f"{tmp_path / 'e.jsonl'}:1",
    ]
    assert "not a JSON object" in bad[0].message
    assert "signatures" in bad[1].message


def incomplete(store: DirStore | AttachedStore, subjects: list[SubjectLocation]) -> str:
    """The message of the IncompleteReadError (exit 3) that reading ``store`` must raise."""
    with pytest.raises(IncompleteReadError) as caught:
        list(store.read(subjects))
    assert caught.value.exit_code == ExitCode.OPERATIONAL
    assert caught.value.hint
    return caught.value.message


def test_dir_symlinks_inside_are_read_and_any_escape_stops_the_read(tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_bytes(envelope("outside"))
    root = tmp_path / "evidence"
    root.mkdir()
    inside = root / "real.json"
    inside.write_bytes(envelope("inside"))
    (root / "alias.json").symlink_to(inside)
    good, bad = split(list(DirStore(root).read([])))
    assert (good, bad) == ([envelope("inside"), envelope("inside")], [])
    (root / "escape.json").symlink_to(outside)
    assert "escape.json is a symlink pointing outside the evidence directory" in incomplete(
        DirStore(root), []
    )
    (root / "escape.json").unlink()
    other = tmp_path / "otherdir"
    other.mkdir()
    (other / "hidden.json").write_bytes(envelope("via dir link"))
    (root / "linked.json").symlink_to(other, target_is_directory=True)
    assert "linked.json is a symlinked directory" in incomplete(DirStore(root), [])


def test_dir_oversized_file_stops_the_read_without_being_read(tmp_path: Path) -> None:
    (tmp_path / "ok.json").write_bytes(envelope())
    big = tmp_path / "big.json"
    with big.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)  # sparse: costs no disk, would cost 50 MiB of RAM
    tracemalloc.start()
    try:
        message = incomplete(DirStore(tmp_path), [])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "big.json is 52428800 bytes, over the 16777216-byte limit" in message
    assert peak < 2 * 1024 * 1024
    big.unlink()
    with (tmp_path / "big.jsonl").open("wb") as handle:
        handle.truncate(65 * 1024 * 1024)
    assert "big.jsonl is 68157440 bytes, over the 67108864-byte limit" in incomplete(
        DirStore(tmp_path), []
    )


def test_dir_file_and_line_counts_over_the_cap_stop_the_read(tmp_path: Path) -> None:
    for i in range(3):
        (tmp_path / f"{i}.json").write_bytes(envelope(str(i)))
    good, _ = split(list(DirStore(tmp_path, max_files=3).read([])))
    assert len(good) == 3  # at the cap: read in full
    (tmp_path / "3.json").write_bytes(envelope("3"))
    assert "holds more than 3 evidence files" in incomplete(DirStore(tmp_path, max_files=3), [])

    bundle = tmp_path / "lines" / "b.jsonl"
    bundle.parent.mkdir()
    bundle.write_bytes(b"\n".join(envelope(str(i)) for i in range(3)))
    message = incomplete(DirStore(bundle.parent, max_lines=2), [])
    assert "b.jsonl holds more than 2 lines" in message


def test_dir_bytes_over_the_total_cap_stop_the_read(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"{i}.json").write_bytes(envelope(str(i)))
    size = len(envelope("0"))
    message = incomplete(DirStore(tmp_path, max_total_bytes=2 * size + 1), [])
    assert f"holds more than {2 * size + 1} bytes of evidence" in message


def test_dir_fifo_does_not_hang_and_stops_the_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.json")
    assert "pipe.json is not a regular file" in incomplete(DirStore(tmp_path), [])


def test_dir_malformed_entries_read_in_full_are_problems_not_stops(tmp_path: Path) -> None:
    (tmp_path / "ok.json").write_bytes(envelope())
    (tmp_path / "junk.json").write_bytes(b"{not json")
    (tmp_path / "b.jsonl").write_bytes(envelope("line") + b"\n[1]\n")
    good, bad = split(list(DirStore(tmp_path).read([])))
    assert sorted(good) == sorted([envelope(), envelope("line")])
    assert sorted(Path(p.origin).name for p in bad) == ["b.jsonl:2", "junk.json"]


def test_dir_missing_or_not_a_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        list(DirStore(tmp_path / "absent").read([]))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        list(DirStore(tmp_path / "file").read([]))


# --- attached ----------------------------------------------------------------------------


def two_images() -> tuple[MemoryStores, list[SubjectLocation]]:
    stores = MemoryStores()
    backend = stores.repo(BACKEND).add_image(b"backend")
    frontend = stores.repo(FRONTEND).add_image(b"frontend")
    subjects = [
        SubjectLocation("backend", parse_location(f"{BACKEND}@{backend.digest}")),
        SubjectLocation("frontend", parse_location(f"{FRONTEND}@{frontend.digest}")),
    ]
    return stores, subjects


def test_attached_write_builds_the_documented_artifact_manifest() -> None:
    stores, subjects = two_images()
    env = envelope()
    store = AttachedStore(
        stores,
        clock=lambda: __import__("datetime").datetime(
            2026, 1, 2, 3, 4, 5, tzinfo=__import__("datetime").UTC
        ),
    )
    written = store.write(env, predicate=TEST_RESULT, subjects=subjects)
    assert [w.split("@")[0] for w in written] == [BACKEND, FRONTEND]
    backend = stores.repo(BACKEND)
    referrer = Digest.parse(written[0].split("@", 1)[1])
    manifest = backend.manifest_of(referrer)
    assert manifest.media_type == media.OCI_MANIFEST
    assert manifest.artifact_type == "application/vnd.in-toto.test-result+dsse"
    assert manifest.config.media_type == media.OCI_EMPTY
    assert str(manifest.config.digest) == media.EMPTY_DIGEST
    assert [(d.media_type, d.digest, d.size) for d in manifest.layers] == [
        (media.DSSE_ENVELOPE, Digest.of(env), len(env))
    ]
    image = backend.resolve(subjects[0].digest)
    assert manifest.subject == Descriptor(image.media_type, image.digest, image.size)
    assert manifest.annotations == {
        "org.opencontainers.image.created": "2026-01-02T03:04:05Z",
        "dev.digestgate.predicate-type": TEST_RESULT,
        "dev.digestgate.envelope-digest": str(Digest.of(env)),
    }
    assert backend.blobs[Digest.of(env)] == env
    assert backend.blobs[Digest.parse(media.EMPTY_DIGEST)] == b"{}"
    assert store.describe() == f"attached ({BACKEND}: tag-schema, {FRONTEND}: tag-schema)"


def test_attached_round_trip_dedupes_and_is_idempotent() -> None:
    stores, subjects = two_images()
    store = AttachedStore(stores)
    together = envelope("integration")
    store.write(envelope("provenance-backend"), predicate="provenance", subjects=subjects[:1])
    store.write(together, predicate="test-result", subjects=subjects)
    again = store.write(together, predicate="test-result", subjects=subjects)
    assert len(stores.repo(BACKEND).referrer_list[subjects[0].digest]) == 2
    good, bad = split(list(AttachedStore(stores).read(subjects)))
    assert bad == []
    assert sorted(good) == sorted([envelope("provenance-backend"), together])
    items = list(AttachedStore(stores).read(subjects))
    origins = [i.origin for i in items if isinstance(i, StoredEnvelope) and i.raw == together]
    assert origins == [again[0]]


def test_attached_write_uploads_the_shared_empty_config_only_when_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Uploading it again re-links it in the registry; distribution 2.8 rewrites the link in
    # place, and a lane attaching at the same time then fails with MANIFEST_BLOB_UNKNOWN.
    stores, subjects = two_images()
    uploaded: list[Digest] = []
    put_blob = MemoryStore.put_blob

    def recording(self: MemoryStore, descriptor: Descriptor, chunks: Any) -> None:
        uploaded.append(descriptor.digest)
        put_blob(self, descriptor, chunks)

    monkeypatch.setattr(MemoryStore, "put_blob", recording)
    empty = Digest.parse(media.EMPTY_DIGEST)
    AttachedStore(stores).write(envelope("first"), predicate=TEST_RESULT, subjects=subjects[:1])
    assert sorted(map(str, uploaded)) == sorted([str(empty), str(Digest.of(envelope("first")))])
    uploaded.clear()
    AttachedStore(stores).write(envelope("second"), predicate=TEST_RESULT, subjects=subjects[:1])
    assert uploaded == [Digest.of(envelope("second"))]


def test_attached_write_to_a_missing_image_fails() -> None:
    stores, _ = two_images()
    ghost = SubjectLocation("backend", parse_location(f"{BACKEND}@sha256:{'0' * 64}"))
    with pytest.raises(NotFoundError):
        AttachedStore(stores).write(envelope(), predicate="vsa", subjects=[ghost])


def _artifact(subject: Descriptor, layers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media.OCI_MANIFEST,
        "artifactType": "application/vnd.in-toto.provenance+dsse",
        "config": {"mediaType": media.OCI_EMPTY, "digest": media.EMPTY_DIGEST, "size": 2},
        "layers": layers,
        "subject": Descriptor(subject.media_type, subject.digest, subject.size).to_json(),
    }
    doc.update(extra)
    return doc


def test_attached_read_refuses_bad_referrers_and_keeps_good_ones() -> None:
    stores, subjects = two_images()
    good_env = envelope("good")
    AttachedStore(stores).write(good_env, predicate="provenance", subjects=subjects[:1])
    repo = stores.repo(BACKEND)
    image = repo.resolve(subjects[0].digest)
    other = repo.add_image(b"other image")

    def blob(data: bytes, media_type: str = media.DSSE_ENVELOPE) -> dict[str, Any]:
        repo.blobs[Digest.of(data)] = data
        return {"mediaType": media_type, "digest": str(Digest.of(data)), "size": len(data)}

    two_layers = repo.add_referrer_manifest(
        image, _artifact(image, [blob(envelope("x")), blob(envelope("y"))])
    )
    wrong_type = repo.add_referrer_manifest(image, _artifact(image, [blob(b"{}", "text/plain")]))
    not_env = repo.add_referrer_manifest(image, _artifact(image, [blob(b'{"a": 1}')]))
    # Listed under this subject (a forged fallback index entry) but naming another image.
    wrong_subject = repo.add_referrer_manifest(other, _artifact(other, [blob(envelope("o"))]))
    repo.referrer_list[image.digest].append(
        Descriptor(
            media.OCI_MANIFEST,
            wrong_subject.digest,
            wrong_subject.size,
            artifact_type="application/vnd.in-toto.provenance+dsse",
        )
    )
    # A Sigstore bundle referrer is read too (docs/sigstore.md): this one holds no bundle.
    not_bundle = repo.add_referrer_manifest(
        image,
        _artifact(
            image,
            [blob(b"{}", "application/vnd.dev.sigstore.bundle.v0.3+json")],
            artifactType="application/vnd.dev.sigstore.bundle.v0.3+json",
        ),
    )
    good, bad = split(list(AttachedStore(stores).read(subjects[:1])))
    assert good == [good_env]
    problems = {p.origin.split("@", 1)[1]: p.message for p in bad}
    assert set(problems) == {
        str(d.digest) for d in (two_layers, wrong_type, not_env, wrong_subject, not_bundle)
    }
    assert "not a DSSE envelope" in problems[str(not_bundle.digest)]
    assert problems[str(two_layers.digest)] == "expected exactly one layer, found 2"
    assert "is not application/vnd.dsse.envelope.v1+json" in problems[str(wrong_type.digest)]
    assert "not a DSSE envelope" in problems[str(not_env.digest)]
    assert "subject" in problems[str(wrong_subject.digest)]


def test_attached_layer_that_does_not_hash_stops_the_read() -> None:
    stores, subjects = two_images()
    repo = stores.repo(BACKEND)
    store = AttachedStore(stores)
    lying_env = envelope("lie")
    store.write(lying_env, predicate="provenance", subjects=subjects[:1])
    repo.served_blobs[Digest.of(lying_env)] = envelope("eil")
    message = incomplete(AttachedStore(stores), subjects[:1])
    assert "envelope cannot be read" in message and "does not match its digest" in message


def test_attached_listed_referrer_that_is_gone_stops_the_read() -> None:
    stores, subjects = two_images()
    written = AttachedStore(stores).write(envelope(), predicate="vsa", subjects=subjects[:1])
    del stores.repo(BACKEND).manifests[Digest.parse(written[0].split("@", 1)[1])]
    assert "is listed but cannot be read" in incomplete(AttachedStore(stores), subjects[:1])


def test_attached_envelope_size_and_referrer_count_over_the_cap_stop_the_read() -> None:
    stores, subjects = two_images()
    store = AttachedStore(stores)
    for i in range(3):
        store.write(envelope(f"e{i}"), predicate="test-result", subjects=subjects[:1])
    good, _ = split(list(AttachedStore(stores, max_referrers=3).read(subjects[:1])))
    assert len(good) == 3  # at the cap: read in full
    store.write(envelope("e3"), predicate="test-result", subjects=subjects[:1])
    message = incomplete(AttachedStore(stores, max_referrers=3), subjects[:1])
    assert "has 4 evidence referrers, more than the 3 read at most" in message
    big = envelope("x" * 5000)
    store.write(big, predicate="vsa", subjects=subjects[1:])
    capped = AttachedStore(stores, max_envelope_size=4000)
    message = incomplete(capped, subjects[1:])
    assert f"envelope of {len(big)} bytes, over the 4000-byte limit" in message
    assert not any(f"open_blob {Digest.of(big)}" in c for c in stores.repo(FRONTEND).calls)


def test_attached_reading_ignores_the_created_annotation() -> None:
    # Forged 9999-12-31 "created" annotations select nothing: every referrer is read.
    stores, subjects = two_images()
    forged = AttachedStore(stores, clock=lambda: datetime(9999, 12, 31, tzinfo=UTC))
    for i in range(3):
        forged.write(envelope(f"junk{i}"), predicate="test-result", subjects=subjects[:1])
    real = AttachedStore(stores)
    real.write(envelope("real"), predicate="test-result", subjects=subjects[:1])
    good, _ = split(list(AttachedStore(stores, max_referrers=4).read(subjects[:1])))
    assert envelope("real") in good and len(good) == 4
    message = incomplete(AttachedStore(stores, max_referrers=3), subjects[:1])
    assert "more than the 3 read at most" in message


def test_subject_location_must_be_pinned() -> None:
    with pytest.raises(InternalError):
        SubjectLocation("backend", parse_location(f"{BACKEND}:main"))
    with pytest.raises(UsageError):
        SubjectLocation("../x", parse_location(f"{BACKEND}@sha256:{'0' * 64}"))


# --- opening and merging -----------------------------------------------------------------


def test_open_evidence_store_specs(tmp_path: Path) -> None:
    stores = MemoryStores()
    opened = open_evidence_store(f"dir:{tmp_path}", stores)
    assert isinstance(opened, DirStore)
    assert opened.describe() == f"dir:{tmp_path}"
    assert isinstance(open_evidence_store("attached", stores), AttachedStore)
    for bad in ("s3://bucket", "dir:", str(tmp_path), "attached:x"):
        with pytest.raises(UsageError) as info:
            open_evidence_store(bad, stores)
        assert "dir:PATH" in (info.value.hint or "")


def test_read_all_merges_stores_and_dedupes_by_envelope_bytes(tmp_path: Path) -> None:
    stores, subjects = two_images()
    shared, only_dir = envelope("shared"), envelope("dir only")
    attached = AttachedStore(stores)
    attached.write(shared, predicate="provenance", subjects=subjects)
    directory = DirStore(tmp_path)
    directory.write(shared, predicate="provenance", subjects=subjects)
    directory.write(only_dir, predicate="vsa", subjects=subjects)
    (tmp_path / "broken.json").write_text("{}")
    envelopes, problems = read_all([directory, attached], subjects)
    assert sorted(e.raw for e in envelopes) == sorted([shared, only_dir])
    assert [e.origin for e in envelopes if e.raw == shared] == [
        str(tmp_path / f"provenance-{Digest.of(shared).hex}.json")
    ]
    assert [p.origin for p in problems] == [str(tmp_path / "broken.json")]
    assert json.loads(envelopes[0].raw)["payloadType"] == "application/vnd.in-toto+json"
