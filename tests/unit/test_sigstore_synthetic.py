"""Negative cases on SYNTHETIC bundles (self-made trust root, tests/unit/sigstore_synthetic.py):
each one blocks. The baseline test first proves the same harness passes an honest bundle,
so every failure below is the rule under test, not a broken fixture."""

from __future__ import annotations

import base64
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from digestgate.digest import Digest
from digestgate.evidence.dsse import sign_envelope
from digestgate.evidence.keys import generate_keypair, load_signer
from digestgate.evidence.model import PAYLOAD_TYPE
from digestgate.evidence.store.dirstore import DirStore
from digestgate.gating.gate import GateRun, run_gate
from digestgate.policy import load_policy
from digestgate.release import Release, parse_release
from digestgate.rules import findings as ids
from tests.unit.gatekit import lane, provenance

if os.environ.get("CI") != "true":
    pytest.importorskip("sigstore", reason="needs the Sigstore extra (requirements-sigstore.txt)")

from tests.unit.gatekit import release_json
from tests.unit.sigstore_synthetic import Facts, SyntheticSigstore

SIGNED = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
NOW = SIGNED + timedelta(hours=2)
REPO = "https://github.com/org/app"
BUILD = "https://github.com/org/app/.github/workflows/build.yml@refs/heads/main"
TESTS = "https://github.com/org/app/.github/workflows/test.yml@refs/heads/main"
DIGEST = Digest.of(b"synthetic backend index")
IMAGE = f"registry.example.org/org/staging/backend@{DIGEST}"
GITHUB_NAME = "registry.example.org/org/staging/backend"
BUILD_KEY = generate_keypair()


@pytest.fixture(scope="module")
def instance() -> SyntheticSigstore:
    return SyntheticSigstore(SIGNED)


def _policy(root: Path, provenance: str = "signers: [build]") -> str:
    def identity(san: str) -> str:
        return f"""\
    sigstore:
      issuer: https://token.actions.githubusercontent.com
      identity: "{san}"
      repository: {REPO}
      ref: "refs/heads/*"
      trustedRoot: trusted_root.json
"""

    return f"""\
apiVersion: digestgate/v1
kind: Policy
keys:
  build:
{identity(BUILD)}  tester:
{identity(TESTS)}  tests: keys/tests.pub
  buildkey: keys/buildkey.pub
artifacts:
  backend: {{repository: "registry.example.org/org/*/backend"}}
source:
  repository: {REPO}
  refs: ["refs/heads/main"]
provenance:
  {provenance}
lanes:
  fast-check: {{signers: [tests]}}
  smoke: {{signers: [tester]}}
maxAge: 7d
"""


def _statement(**changes: Any) -> dict[str, Any]:
    name = changes.pop("name", GITHUB_NAME)
    digest = changes.pop("digest", DIGEST)
    return provenance({name: digest}, repo=REPO, builder=BUILD, finished=SIGNED, **changes)


def _smoke() -> dict[str, Any]:
    return lane("smoke", {GITHUB_NAME: DIGEST}, run="4242", finished=SIGNED)


def gate(
    tmp_path: Path,
    instance: SyntheticSigstore,
    bundles: list[bytes],
    *,
    now: datetime = NOW,
    provenance: str = "signers: [build]",
    envelopes: tuple[bytes, ...] = (),
) -> GateRun:
    (tmp_path / "trusted_root.json").write_bytes(instance.trusted_root())
    keys = tmp_path / "keys"
    keys.mkdir(exist_ok=True)
    pair = generate_keypair()
    (keys / "tests.pub").write_bytes(pair.public_pem)
    (keys / "buildkey.pub").write_bytes(BUILD_KEY.public_pem)
    (tmp_path / "tests.key").write_bytes(pair.private_pem)
    (tmp_path / "policy.yaml").write_text(_policy(tmp_path, provenance), encoding="utf-8")
    evidence = tmp_path / "evidence"
    evidence.mkdir(exist_ok=True)
    fast = json.dumps(lane("fast-check", {"backend": DIGEST}, finished=SIGNED)).encode()
    signer = load_signer(str(tmp_path / "tests.key"), {})
    (evidence / "fast.json").write_bytes(sign_envelope(fast, PAYLOAD_TYPE, [signer]))
    for i, raw in enumerate(envelopes):
        (evidence / f"key-{i}.json").write_bytes(raw)
    for i, bundle in enumerate(bundles):
        (evidence / f"{i}.sigstore.json").write_bytes(bundle)
    release = parse_release(release_json({"backend": IMAGE}, repository=REPO))
    assert isinstance(release, Release)
    policy = load_policy(tmp_path / "policy.yaml")
    return run_gate(policy, release, [DirStore(evidence)], now=now, images=None)


def _ids(run: GateRun) -> set[str]:
    return set(run.decision.finding_ids)


def _honest(instance: SyntheticSigstore) -> list[bytes]:
    return [
        instance.bundle(_statement()),
        instance.bundle(_smoke(), facts=Facts(san=TESTS)),
    ]


def test_baseline_honest_synthetic_bundles_pass(
    tmp_path: Path, instance: SyntheticSigstore
) -> None:
    run = gate(tmp_path, instance, _honest(instance))
    assert run.decision.verdict == "PASSED", run.decision.finding_ids
    signers = sorted(sorted(ev.signers) for ev in run.evidence if ev.certificate is not None)
    assert signers == [["build"], ["tester"]]


def test_a_certificate_outside_its_validity_at_the_signed_time_blocks(
    tmp_path: Path, instance: SyntheticSigstore
) -> None:
    late = instance.bundle(_statement(), integrated=SIGNED + timedelta(minutes=20))
    run = gate(tmp_path, instance, [late, _honest(instance)[1]])
    assert _ids(run) == {ids.EVIDENCE_UNVERIFIED, ids.PROVENANCE_MISSING}


def test_a_wrong_identity_blocks(tmp_path: Path, instance: SyntheticSigstore) -> None:
    other = "https://github.com/org/app/.github/workflows/other.yml@refs/heads/main"
    bundle = instance.bundle(_statement(), facts=Facts(san=other))
    run = gate(tmp_path, instance, [bundle, _honest(instance)[1]])
    assert _ids(run) == {ids.EVIDENCE_UNVERIFIED, ids.PROVENANCE_MISSING}
    assert any("matches no Sigstore identity" in p.message for p in run.problems)


def test_another_trust_root_blocks(tmp_path: Path, instance: SyntheticSigstore) -> None:
    stranger = SyntheticSigstore(SIGNED)
    run = gate(tmp_path, instance, [stranger.bundle(_statement()), _honest(instance)[1]])
    assert _ids(run) == {ids.EVIDENCE_UNVERIFIED, ids.PROVENANCE_MISSING}


def test_a_tampered_statement_blocks(tmp_path: Path, instance: SyntheticSigstore) -> None:
    doc = json.loads(instance.bundle(_statement()))
    forged = json.dumps(_statement(revision="b2" * 20)).encode()
    doc["dsseEnvelope"]["payload"] = base64.b64encode(forged).decode()
    run = gate(tmp_path, instance, [json.dumps(doc).encode(), _honest(instance)[1]])
    assert _ids(run) == {ids.EVIDENCE_UNVERIFIED, ids.PROVENANCE_MISSING}


def test_a_subject_digest_mismatch_blocks(tmp_path: Path, instance: SyntheticSigstore) -> None:
    bundle = instance.bundle(_statement(digest=Digest.of(b"another image")))
    run = gate(tmp_path, instance, [bundle, _honest(instance)[1]])
    assert _ids(run) == {ids.PROVENANCE_MISSING}


def test_a_subject_name_that_maps_to_no_artifact_blocks(
    tmp_path: Path, instance: SyntheticSigstore
) -> None:
    bundle = instance.bundle(_statement(name="ghcr.io/someone/else"))
    run = gate(tmp_path, instance, [bundle, _honest(instance)[1]])
    assert _ids(run) == {ids.EVIDENCE_NAME_MISMATCH, ids.PROVENANCE_MISSING}


@pytest.mark.parametrize(
    "statement",
    [
        _statement(revision="b2" * 20),
        _statement(ref="refs/heads/other"),
        _statement(event="pull_request"),
        provenance(
            {GITHUB_NAME: DIGEST}, repo="https://github.com/org/other", builder=BUILD,
            finished=SIGNED,
        ),
    ],
    ids=["revision", "ref", "trigger", "repository"],
)  # fmt: skip
def test_a_statement_contradicting_its_certificate_never_counts(
    tmp_path: Path, instance: SyntheticSigstore, statement: dict[str, Any]
) -> None:
    bundle = instance.bundle(statement)
    run = gate(tmp_path, instance, [bundle, _honest(instance)[1]])
    assert _ids(run) == {ids.EVIDENCE_MALFORMED, ids.PROVENANCE_MISSING}
    found = [f.message for f in run.decision.all_findings() if f.id == ids.EVIDENCE_MALFORMED]
    assert "but its signing certificate says" in found[0]


def test_a_lane_result_claiming_another_revision_than_its_certificate_never_counts(
    tmp_path: Path, instance: SyntheticSigstore
) -> None:
    smoke = lane("smoke", {GITHUB_NAME: DIGEST}, run="4242", revision="b2" * 20, finished=SIGNED)
    bundle = instance.bundle(smoke, facts=Facts(san=TESTS))
    run = gate(tmp_path, instance, [_honest(instance)[0], bundle])
    assert _ids(run) == {ids.EVIDENCE_MALFORMED, ids.LANE_MISSING}


@pytest.mark.parametrize("build_first", [True, False])
def test_a_certificate_with_a_second_identity_matches_none(
    tmp_path: Path, instance: SyntheticSigstore, build_first: bool
) -> None:
    # Which of two SANs would be "the" identity is not for a verifier to choose.
    sans = (BUILD, "https://evil.example/x") if build_first else ("https://evil.example/x", BUILD)
    bundle = instance.bundle(_statement(), facts=Facts(san=sans[0], more_sans=sans[1:]))
    run = gate(tmp_path, instance, [bundle, _honest(instance)[1]])
    assert _ids(run) == {ids.EVIDENCE_UNVERIFIED, ids.PROVENANCE_MISSING}


def test_the_trigger_comes_from_the_certificate(
    tmp_path: Path, instance: SyntheticSigstore
) -> None:
    statement = _statement()
    del statement["predicate"]["buildDefinition"]["internalParameters"]["event_name"]
    bundle = instance.bundle(statement, facts=Facts(trigger="pull_request"))
    run = gate(tmp_path, instance, [bundle, _honest(instance)[1]])
    assert _ids(run) == {ids.PROVENANCE_SOURCE_MISMATCH}


def test_an_identity_signs_only_for_its_role(tmp_path: Path, instance: SyntheticSigstore) -> None:
    bundle = instance.bundle(_statement(), facts=Facts(san=TESTS))
    run = gate(tmp_path, instance, [bundle, _honest(instance)[1]])
    assert _ids(run) == {ids.PROVENANCE_UNTRUSTED_SIGNER}


def test_freshness_is_the_certificates_issue_time(
    tmp_path: Path, instance: SyntheticSigstore
) -> None:
    run = gate(tmp_path, instance, _honest(instance), now=SIGNED + timedelta(days=8))
    assert ids.PROVENANCE_STALE in _ids(run)
    assert run.decision.verdict == "FAILED"


def test_a_lane_result_claiming_another_run_than_its_certificate_never_counts(
    tmp_path: Path, instance: SyntheticSigstore
) -> None:
    smoke = lane("smoke", {GITHUB_NAME: DIGEST}, run="1", finished=SIGNED)
    bundle = instance.bundle(smoke, facts=Facts(san=TESTS))
    run = gate(tmp_path, instance, [_honest(instance)[0], bundle])
    assert _ids(run) == {ids.EVIDENCE_MALFORMED, ids.LANE_MISSING}


def _key_signed_provenance(tmp_path: Path) -> bytes:
    key = tmp_path / "build.key"
    key.write_bytes(BUILD_KEY.private_pem)
    statement = json.dumps(_statement(name="backend")).encode()
    return sign_envelope(statement, PAYLOAD_TYPE, [load_signer(str(key), {})])


def test_a_key_and_an_identity_meet_a_threshold_of_two_together(
    tmp_path: Path, instance: SyntheticSigstore
) -> None:
    """Roles work the same for keys and identities: each is one distinct signer."""
    both = "signers: [build, buildkey]\n  threshold: 2"
    keyed = _key_signed_provenance(tmp_path)
    run = gate(tmp_path, instance, _honest(instance), provenance=both, envelopes=(keyed,))
    assert run.decision.verdict == "PASSED", run.decision.finding_ids
    (tmp_path / "alone").mkdir()
    alone = gate(tmp_path / "alone", instance, _honest(instance), provenance=both)
    assert _ids(alone) == {ids.PROVENANCE_UNTRUSTED_SIGNER}


def test_a_bundle_lane_claiming_a_later_finish_than_its_certificate_is_still_stale(
    tmp_path: Path, instance: SyntheticSigstore
) -> None:
    """The certificate was issued 8 days ago; the statement says the lane finished a minute
    ago. A lane finishes before its result is signed: the certificate's time decides."""
    now = SIGNED + timedelta(days=8)
    late = lane("smoke", {GITHUB_NAME: DIGEST}, run="4242", finished=now - timedelta(minutes=1))
    bundles = [instance.bundle(_statement()), instance.bundle(late, facts=Facts(san=TESTS))]
    run = gate(tmp_path, instance, bundles, now=now)
    stale = {f.requirement for f in run.decision.all_findings() if f.id == ids.LANE_STALE}
    assert "lane:smoke" in stale
    assert run.decision.verdict == "FAILED"


@pytest.mark.parametrize(
    "facts",
    [
        Facts(san=TESTS, trigger="pull_request_target"),  # a pull request can start it
        Facts(san=TESTS, ref="refs/heads/feature"),  # identity: refs/heads/*; source: main
    ],
    ids=["trigger", "ref"],
)
def test_a_lane_certified_for_another_ref_or_trigger_never_counts(
    tmp_path: Path, instance: SyntheticSigstore, facts: Facts
) -> None:
    # Same run and revision as the build: only the certificate's ref or trigger differs.
    bundle = instance.bundle(_smoke(), facts=facts)
    run = gate(tmp_path, instance, [_honest(instance)[0], bundle])
    assert _ids(run) == {ids.LANE_SOURCE_MISMATCH}
    assert run.decision.verdict == "FAILED"


def test_a_certificate_from_another_issuer_binds_nothing(
    tmp_path: Path, instance: SyntheticSigstore
) -> None:
    bundle = instance.bundle(_statement(), facts=Facts(issuer="https://evil.example"))
    run = gate(tmp_path, instance, [bundle, _honest(instance)[1]])
    assert _ids(run) == {ids.EVIDENCE_UNVERIFIED, ids.PROVENANCE_MISSING}


def test_a_bundle_is_verified_by_the_trust_root_of_the_identities_it_could_be_only(
    tmp_path: Path, instance: SyntheticSigstore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sigstore.verify import Verifier

    plain = _policy

    def two_roots(path: Path, provenance: str) -> str:
        # The tester identity gets a trust root of its own (the same one, a byte longer).
        (path / "trusted_root2.json").write_bytes(instance.trusted_root() + b"\n")
        text = plain(path, provenance)
        first, rest = text.split("trustedRoot: trusted_root.json", 1)
        return (
            first
            + "trustedRoot: trusted_root.json"
            + rest.replace("trusted_root.json", "trusted_root2.json", 1)
        )

    calls: list[str] = []
    real = Verifier.verify_dsse

    def counting(self: Verifier, bundle: Any, policy: Any) -> Any:
        calls.append("verify")
        return real(self, bundle, policy)

    monkeypatch.setattr(sys.modules[__name__], "_policy", two_roots)
    monkeypatch.setattr(Verifier, "verify_dsse", counting)
    run = gate(tmp_path, instance, _honest(instance))
    assert run.decision.passed, _ids(run)
    assert len(calls) == 2  # one per bundle, not one per bundle and trust root
