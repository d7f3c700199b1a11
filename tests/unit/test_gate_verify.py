"""The deploy-side rule: a fresh PASSED gate VSA under exactly this policy."""

from __future__ import annotations

import dataclasses

import pytest

from digestgate.digest import Digest
from digestgate.errors import ConfigError
from digestgate.evidence.model import VSA, EvidenceProblem, VerifiedEvidence
from digestgate.rules.decision import EvidenceRef
from digestgate.rules.verify import VerifyDecision, verify_digest
from tests.unit.gatekit import BACKEND, FRONTEND, HOUR, NOW, lane, policy, verified, vsa

POLICY = policy()
OTHER_POLICY = Digest.of(b"another policy")
DAY = 24 * HOUR


def run(
    evidence: list[VerifiedEvidence], problems: list[EvidenceProblem] | None = None
) -> VerifyDecision:
    return verify_digest(POLICY, BACKEND, evidence, problems or [], NOW)


def good(**kwargs: object) -> VerifiedEvidence:
    doc = vsa(BACKEND, policy_digest=POLICY.digest, **kwargs)  # type: ignore[arg-type]
    return verified(doc, ["gate"])


def test_fresh_passed_vsa_passes() -> None:
    passing = good()
    decision = run([passing])
    assert decision.verdict == "PASSED"
    assert decision.finding_ids == frozenset()
    assert decision.vsa == EvidenceRef(passing.envelope_digest, passing.origin, VSA)


def test_no_vsa() -> None:
    decision = run([verified(lane("e2e", {"backend": BACKEND}), ["tests"])])
    assert (decision.verdict, set(decision.finding_ids)) == ("FAILED", {"vsa.missing"})


def test_vsa_for_another_digest() -> None:
    other = verified(vsa(FRONTEND, policy_digest=POLICY.digest), ["gate"])
    assert run([other]).finding_ids == {"vsa.missing"}


def test_vsa_under_another_policy() -> None:
    decision = run([verified(vsa(BACKEND, policy_digest=OTHER_POLICY), ["gate"])])
    assert (decision.verdict, set(decision.finding_ids)) == ("FAILED", {"vsa.policy-mismatch"})


def test_stale_vsa() -> None:
    decision = run([good(time=NOW - 31 * DAY)])
    assert (decision.verdict, set(decision.finding_ids)) == ("FAILED", {"vsa.stale"})


def test_vsa_signed_by_a_build_key_counts_as_missing() -> None:
    decision = run([verified(vsa(BACKEND, policy_digest=POLICY.digest), ["build"])])
    assert (decision.verdict, set(decision.finding_ids)) == ("FAILED", {"vsa.missing"})
    assert "not by gate.signers" in decision.findings[0].message


def test_failed_vsa_does_not_pass() -> None:
    decision = run([good(result="FAILED")])
    assert (decision.verdict, set(decision.finding_ids)) == ("FAILED", {"vsa.missing"})


def test_future_vsa_never_counts() -> None:
    decision = run([good(time=NOW + HOUR)])
    assert (decision.verdict, set(decision.finding_ids)) == (
        "FAILED",
        {"evidence.future-time", "vsa.missing"},
    )


def test_one_good_vsa_is_enough_beside_bad_ones_and_problems() -> None:
    problems = [EvidenceProblem("unverified", "attached:x", "bad signature")]
    fresh = good()
    decision = run([good(time=NOW - 40 * DAY), fresh, good(time=NOW + DAY)], problems)
    assert decision.verdict == "PASSED"
    assert decision.finding_ids == {"evidence.future-time", "evidence.unverified"}
    # the decision names the VSA that satisfied it, not the stale or future one beside it
    assert decision.vsa is not None
    assert decision.vsa.digest == fresh.envelope_digest


def test_policy_without_gate_section_is_config_error() -> None:
    pol = dataclasses.replace(POLICY, gate=None)
    with pytest.raises(ConfigError, match="no gate section"):
        verify_digest(pol, BACKEND, [good()], [], NOW)


# --- pins, deny lists and the keys a VSA records ----------------------------------------------


def trusted_of(pol: object = POLICY, **changes: str) -> list[dict[str, str]]:
    """The trustedKeys record of ``POLICY`` with roles, with some key ids changed."""
    roles = POLICY.roles()
    return [
        {"name": n, "keyid": changes.get(n, k), **({"role": roles[n]} if n in roles else {})}
        for n, k in POLICY.key_ids().items()
    ]


def test_a_vsa_under_a_pinned_older_policy_counts_during_a_rotation() -> None:
    old = verified(vsa(BACKEND, policy_digest=OTHER_POLICY), ["gate"])
    assert run([old]).finding_ids == {"vsa.policy-mismatch"}
    pinned = frozenset({POLICY.digest, OTHER_POLICY})
    decision = verify_digest(POLICY, BACKEND, [old], [], NOW, accepted=pinned)
    assert decision.verdict == "PASSED"
    # Pins replace the default: pinning only the old digest refuses this policy's own VSAs.
    only_old = verify_digest(POLICY, BACKEND, [good()], [], NOW, accepted=frozenset({OTHER_POLICY}))
    assert only_old.finding_ids == {"vsa.policy-mismatch"}


def test_a_vsa_that_records_no_trusted_keys_does_not_count() -> None:
    doc = vsa(BACKEND, policy_digest=POLICY.digest)
    del doc["predicate"]["digestgate_trustedKeys"]
    decision = run([verified(doc, ["gate"])])
    assert decision.finding_ids == {"vsa.policy-mismatch"}
    assert "records no trusted keys" in decision.findings[0].message


def test_a_vsa_whose_record_does_not_name_its_signer_as_the_gate_does_not_count() -> None:
    # Issued under a (pinned) policy in which this key was not the gate's.
    record = [dict(e, role="lanes") if e["name"] == "gate" else e for e in trusted_of()]
    doc = vsa(BACKEND, policy_digest=OTHER_POLICY, trusted=record)
    pinned = frozenset({POLICY.digest, OTHER_POLICY})
    decision = verify_digest(POLICY, BACKEND, [verified(doc, ["gate"])], [], NOW, accepted=pinned)
    assert decision.finding_ids == {"vsa.policy-mismatch"}
    assert "did not trust as the gate's" in decision.findings[0].message


def test_a_vsa_naming_this_policy_must_record_exactly_its_keys() -> None:
    doc = vsa(BACKEND, policy_digest=POLICY.digest, trusted=trusted_of(build="0" * 64))
    decision = run([verified(doc, ["gate"])])
    assert decision.finding_ids == {"vsa.policy-mismatch"}
    assert "records other trusted keys" in decision.findings[0].message


def test_deny_lists_override_a_passing_vsa() -> None:
    denied = verify_digest(POLICY, BACKEND, [good()], [], NOW, deny=frozenset({BACKEND}))
    assert (denied.verdict, set(denied.finding_ids)) == ("FAILED", {"artifact.denied"})
    assert "the deny list given" in denied.findings[0].message
    pol = dataclasses.replace(POLICY, deny=frozenset({BACKEND}))
    by_policy = verify_digest(pol, BACKEND, [good()], [], NOW)
    assert (by_policy.verdict, set(by_policy.finding_ids)) == ("FAILED", {"artifact.denied"})
    assert "the policy's deny list" in by_policy.findings[0].message
