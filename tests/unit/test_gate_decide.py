"""The gate verb over real stores: dir: evidence, OCI layouts, the real release model."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from digestgate.digest import Digest
from digestgate.errors import IntegrityError
from digestgate.evidence.model import EvidenceProblem, Statement, VerifiedEvidence
from digestgate.evidence.store.dirstore import DirStore
from digestgate.gating.gate import run_gate
from digestgate.oci.layout import LayoutStore
from digestgate.release import Release, parse_release
from digestgate.samples import sample_image
from tests.unit.gatekit import (
    NOW,
    POLICY,
    lane,
    policy,
    provenance,
    release_json,
)

LAYOUT_POLICY = POLICY.replace("registry.example.org/org/*/backend", "oci:**/backend").replace(
    "registry.example.org/org/*/frontend", "oci:**/frontend"
)


def fake_verify(raw: bytes, origin: str) -> VerifiedEvidence | EvidenceProblem:
    """Test-only stand-in for signature checking: the keyid names the signer."""
    doc = json.loads(raw)
    signers = frozenset(s["keyid"] for s in doc["signatures"] if s["keyid"] != "unknown")
    if not signers:
        return EvidenceProblem("unverified", origin, "no trusted key verifies it")
    payload = base64.b64decode(doc["payload"])
    return VerifiedEvidence(Statement.parse(payload), signers, Digest.of(raw), origin, raw)


def envelope(statement: dict[str, Any], signer: str) -> bytes:
    payload = base64.b64encode(json.dumps(statement).encode()).decode()
    return json.dumps(
        {
            "payload": payload,
            "payloadType": "application/vnd.in-toto+json",
            "signatures": [{"keyid": signer, "sig": "AAAA"}],
        }
    ).encode()


def setup(tmp_path: Path) -> tuple[Release, dict[str, Digest], Path]:
    digests = {}
    for name in ("backend", "frontend"):
        store = LayoutStore.open(str(tmp_path / name), create=True)
        digests[name] = sample_image(store, {"app": name.encode()}).digest
    images = {n: f"oci:{tmp_path / n}@{d}" for n, d in digests.items()}
    rel = parse_release(release_json(images))
    assert isinstance(rel, Release)
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    both = dict(digests)
    docs = [
        (provenance({"backend": digests["backend"]}), "build"),
        (provenance({"frontend": digests["frontend"]}), "build"),
        (lane("fast-check", both), "tests"),
        (lane("e2e", both), "tests"),
    ]
    for i, (statement, signer) in enumerate(docs):
        (evidence / f"{i}.json").write_bytes(envelope(statement, signer))
    return rel, digests, evidence


def run(tmp_path: Path, rel: Release, evidence: Path, *, offline: bool = False) -> Any:
    from digestgate.oci.open import Stores

    with Stores() as images:
        return run_gate(
            policy(LAYOUT_POLICY),
            rel,
            [DirStore(evidence)],
            fake_verify,
            now=NOW,
            images=None if offline else images,
        )


def test_layout_release_passes_and_is_confirmed(tmp_path: Path) -> None:
    rel, _, evidence = setup(tmp_path)
    result = run(tmp_path, rel, evidence)
    assert result.decision.verdict == "PASSED"
    assert result.decision.finding_ids == frozenset()
    assert len(result.evidence) == 4


def test_missing_image_is_not_found(tmp_path: Path) -> None:
    rel, digests, evidence = setup(tmp_path)
    blob = tmp_path / "frontend" / "blobs" / "sha256" / digests["frontend"].hex
    blob.unlink()
    result = run(tmp_path, rel, evidence)
    assert result.decision.verdict == "FAILED"
    assert {f.id for f in result.decision.artifacts["frontend"].findings} == {"artifact.not-found"}
    assert run(tmp_path, rel, evidence, offline=True).decision.verdict == "PASSED"


def test_tampered_manifest_is_exit_3_not_a_verdict(tmp_path: Path) -> None:
    rel, digests, evidence = setup(tmp_path)
    blob = tmp_path / "backend" / "blobs" / "sha256" / digests["backend"].hex
    blob.write_bytes(blob.read_bytes().replace(b'"schemaVersion":2', b'"schemaVersion": 2'))
    with pytest.raises(IntegrityError, match="twice") as caught:
        run(tmp_path, rel, evidence)
    assert caught.value.exit_code == 3


def test_a_transient_wrong_answer_is_fetched_again(tmp_path: Path) -> None:
    """One corrupted manifest answer: the gate fetches again and decides on good bytes."""
    from digestgate.oci.layout import LayoutStore

    rel, _, evidence = setup(tmp_path)
    calls: list[int] = []
    original = LayoutStore.get_manifest

    def flaky(self: LayoutStore, digest: Digest) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise IntegrityError(f"manifest {digest}: short read")
        return original(self, digest)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LayoutStore, "get_manifest", flaky)
        result = run(tmp_path, rel, evidence)
    assert result.decision.verdict == "PASSED"
    assert len(calls) == 3  # backend twice, frontend once


def test_unreadable_and_unverified_evidence_are_reported(tmp_path: Path) -> None:
    rel, _, evidence = setup(tmp_path)
    (evidence / "junk.json").write_bytes(b"{not json")
    (evidence / "stranger.json").write_bytes(
        envelope(lane("e2e", {"backend": Digest.of(b"x")}), "unknown")
    )
    result = run(tmp_path, rel, evidence)
    assert result.decision.verdict == "PASSED"
    assert result.decision.finding_ids == {"evidence.malformed", "evidence.unverified"}
