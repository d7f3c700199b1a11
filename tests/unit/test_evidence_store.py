"""Evidence stores: a directory and referrers attached to images (in-memory image stores)."""

from __future__ import annotations

import base64
import json
import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from digestgate.digest import Digest
from digestgate.errors import ConfigError, InternalError, NotFoundError, UsageError
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
from tests.fixtures.memory_store import MemoryStores

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


def test_dir_symlink_out_of_the_directory_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_bytes(envelope("outside"))
    root = tmp_path / "evidence"
    root.mkdir()
    inside = root / "real.json"
    inside.write_bytes(envelope("inside"))
    (root / "escape.json").symlink_to(outside)
    (root / "alias.json").symlink_to(inside)
    other = tmp_path / "otherdir"
    other.mkdir()
    (other / "hidden.json").write_bytes(envelope("via dir link"))
    (root / "linked").symlink_to(other, target_is_directory=True)
    (root / "linked.json").symlink_to(other, target_is_directory=True)
    good, bad = split(list(DirStore(root).read([])))
    assert good == [envelope("inside"), envelope("inside")]
    assert {Path(p.origin).name: p.message for p in bad} == {
        "escape.json": "symlink points outside the evidence directory; not followed",
        "linked.json": "symlinked directory; not followed",
    }


def test_dir_oversized_file_is_refused_without_being_read(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    with big.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)  # sparse: costs no disk, would cost 50 MiB of RAM
    big_bundle = tmp_path / "big.jsonl"
    with big_bundle.open("wb") as handle:
        handle.truncate(65 * 1024 * 1024)
    (tmp_path / "ok.json").write_bytes(envelope())
    tracemalloc.start()
    try:
        items = list(DirStore(tmp_path).read([]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    good, bad = split(items)
    assert good == [envelope()]
    assert [Path(p.origin).name for p in bad] == ["big.json", "big.jsonl"]
    assert "not read" in bad[0].message
    assert peak < 2 * 1024 * 1024


def test_dir_caps_file_and_line_counts(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"{i}.json").write_bytes(envelope(str(i)))
    good, bad = split(list(DirStore(tmp_path, max_files=3).read([])))
    assert good == [envelope("0"), envelope("1"), envelope("2")]
    assert len(bad) == 1 and "more than 3" in bad[0].message

    bundle = tmp_path / "lines" / "b.jsonl"
    bundle.parent.mkdir()
    bundle.write_bytes(b"\n".join(envelope(str(i)) for i in range(5)))
    good, bad = split(list(DirStore(bundle.parent, max_lines=2).read([])))
    assert good == [envelope("0"), envelope("1")]
    assert len(bad) == 1 and "limit" in bad[0].message


def test_dir_caps_the_bytes_read_in_all(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"{i}.json").write_bytes(envelope(str(i)))
    size = len(envelope("0"))
    good, bad = split(list(DirStore(tmp_path, max_total_bytes=2 * size + 1).read([])))
    assert good == [envelope("0"), envelope("1")]
    assert len(bad) == 1 and "bytes of evidence" in bad[0].message


def test_dir_fifo_does_not_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.json")
    good, bad = split(list(DirStore(tmp_path).read([])))
    assert good == []
    assert bad[0].message == "not a regular file; not read"


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
    lying_env = envelope("lie")
    lying = repo.add_referrer_manifest(image, _artifact(image, [blob(lying_env)]))
    repo.served_blobs[Digest.of(lying_env)] = envelope("eil")
    # A cosign bundle referrer is somebody else's business: ignored, not a problem.
    repo.add_referrer_manifest(
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
        str(d.digest) for d in (two_layers, wrong_type, not_env, wrong_subject, lying)
    }
    assert problems[str(two_layers.digest)] == "expected exactly one layer, found 2"
    assert "is not application/vnd.dsse.envelope.v1+json" in problems[str(wrong_type.digest)]
    assert "not a DSSE envelope" in problems[str(not_env.digest)]
    assert "subject" in problems[str(wrong_subject.digest)]
    assert "does not match its digest" in problems[str(lying.digest)]


def test_attached_caps_envelope_size_and_referrer_count() -> None:
    stores, subjects = two_images()
    store = AttachedStore(stores)
    for i in range(5):
        store.write(envelope(f"e{i}"), predicate="test-result", subjects=subjects[:1])
    big = envelope("x" * 5000)
    store.write(big, predicate="vsa", subjects=subjects[1:])
    capped = AttachedStore(stores, max_referrers=3, max_envelope_size=4000)
    good, bad = split(list(capped.read(subjects)))
    assert len(good) == 3
    assert [p.message for p in bad] == [
        "5 evidence referrers; only the newest 3 were read",
        f"envelope of {len(big)} bytes is over the 4000-byte limit",
    ]
    assert not any(f"open_blob {Digest.of(big)}" in c for c in stores.repo(FRONTEND).calls)


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
