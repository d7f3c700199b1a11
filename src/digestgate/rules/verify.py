"""The deploy-side rule (design section 3, ``verify``): a fresh PASSED gate VSA (pure).

A digest passes only when it is on no deny list and a VSA names it as a subject, is signed
by a key the policy lists under ``gate.signers``, says PASSED, was issued under a pinned
policy digest (by default exactly this policy's), records the keys that policy trusted (the
signing key among them as the gate's, and exactly this policy's keys when it names this
policy), and is younger than ``gate.maxAge`` without being dated in the future. Any one such
VSA is enough (the rule is monotonic: removing evidence can only make it fail).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from digestgate.digest import Digest
from digestgate.errors import ConfigError
from digestgate.evidence.model import (
    VERIFIER_ID,
    VSA,
    EvidenceFormatError,
    EvidenceProblem,
    VerifiedEvidence,
    VsaInfo,
    read_vsa,
)
from digestgate.policy.model import GateRule, Policy
from digestgate.rules import findings as ids
from digestgate.rules.decision import EvidenceRef
from digestgate.rules.enforcement import is_warn_only
from digestgate.rules.evaluate import FUTURE_SKEW, problem_findings, unique_evidence
from digestgate.rules.findings import Finding, finding, shown
from digestgate.rules.requirements import Reason, collapse
from digestgate.timeutil import format_timestamp


@dataclass(frozen=True, slots=True)
class VerifyDecision:
    """The deploy-side verdict for one digest and the VSA that satisfied it."""

    digest: Digest
    passed: bool
    findings: tuple[Finding, ...]
    vsa: EvidenceRef | None

    @property
    def verdict(self) -> str:
        """``PASSED`` or ``FAILED``."""
        return "PASSED" if self.passed else "FAILED"

    @property
    def finding_ids(self) -> frozenset[str]:
        """Every finding id."""
        return frozenset(f.id for f in self.findings)


def gate_rule(policy: Policy) -> GateRule:
    """The policy's ``gate`` section; ``verify`` cannot run without one (exit 2)."""
    if policy.gate is None:
        raise ConfigError(
            f"{policy.source_name}: the policy has no gate section",
            hint="add gate: {signers: [gate], maxAge: 30d} naming the key that signs VSAs",
        )
    return policy.gate


def _keys_problem(policy: Policy, info: VsaInfo, signers: frozenset[str]) -> str | None:
    """Why the VSA's record of trusted keys does not support it, or None."""
    if info.trusted_keys is None:
        return "records no trusted keys (issued by an older digestgate); re-run the gate"
    recorded = {(name, keyid) for name, keyid, _ in info.trusted_keys}
    gate_keyids = {keyid for _, keyid, role in info.trusted_keys if role == "gate"}
    signing = {policy.keys[name].keyid for name in signers if name in policy.keys}
    if not signing & gate_keyids:
        return "was signed by a key its policy did not trust as the gate's"
    if info.policy_digest == policy.digest and recorded != set(policy.key_ids().items()):
        return "names this policy but records other trusted keys"
    return None


def verify_digest(
    policy: Policy,
    digest: Digest,
    evidence: Sequence[VerifiedEvidence],
    problems: Sequence[EvidenceProblem],
    now: datetime,
    *,
    accepted: frozenset[Digest] | None = None,
    deny: frozenset[Digest] = frozenset(),
) -> VerifyDecision:
    """Apply the deploy-side rule to the VSAs found for ``digest``.

    ``accepted``: the policy digests whose decisions count (default: this policy's only);
    ``deny``: the deployment's own deny list, applied with the policy's.
    """
    rule = gate_rule(policy)
    accepted = accepted if accepted is not None else frozenset({policy.digest})
    reasons: list[Reason] = []
    future: list[Finding] = []
    malformed: list[Finding] = []
    passing: EvidenceRef | None = None
    if digest in policy.deny or digest in deny:
        where = "the policy's deny list" if digest in policy.deny else "the deny list given"
        denied = finding(ids.ARTIFACT_DENIED, f"{digest} is on {where}", requirement="vsa")
        return VerifyDecision(digest, False, (denied,), None)
    candidates = [
        ev
        for ev in unique_evidence(evidence)
        if ev.statement.predicate_type == VSA and digest in ev.statement.digests
    ]
    for ev in candidates:
        origin = shown(ev.origin, 160)
        try:
            info = read_vsa(ev.statement)
        except EvidenceFormatError as exc:
            malformed.append(
                finding(ids.EVIDENCE_MALFORMED, f"{origin}: {shown(exc, 200)}", requirement="vsa")
            )
            continue
        if not ev.signers & set(rule.signers):
            reasons.append(
                (
                    ids.VSA_MISSING,
                    f"{origin} is signed by {', '.join(sorted(ev.signers))}, not by gate.signers "
                    f"({', '.join(rule.signers)}); it does not count",
                )
            )
            continue
        if info.verifier_id != VERIFIER_ID:
            reasons.append(
                (ids.VSA_MISSING, f"{origin} comes from verifier {shown(info.verifier_id)}")
            )
            continue
        if info.kind != "gate":
            # A promotion record repeats a decision; only the gate's own VSA is one.
            reasons.append(
                (ids.VSA_MISSING, f"{origin} is a {shown(info.kind)} record, not a gate decision")
            )
            continue
        if is_warn_only(ev.statement.predicate):
            reasons.append(
                (
                    ids.VSA_WARN_ONLY,
                    f"{origin} was signed by a gate under enforcement: warn; it decides nothing",
                )
            )
            continue
        if info.result != "PASSED":
            reasons.append((ids.VSA_MISSING, f"{origin} records a FAILED gate decision"))
            continue
        if info.policy_digest not in accepted:
            pinned = ", ".join(sorted(d.short for d in accepted))
            reasons.append(
                (
                    ids.VSA_POLICY_MISMATCH,
                    f"{origin} was issued under policy {info.policy_digest.short}, not {pinned}",
                )
            )
            continue
        keys_problem = _keys_problem(policy, info, ev.signers & set(rule.signers))
        if keys_problem is not None:
            reasons.append((ids.VSA_POLICY_MISMATCH, f"{origin} {keys_problem}"))
            continue
        when = format_timestamp(info.time_verified)
        if info.time_verified > now + FUTURE_SKEW:
            future.append(
                finding(
                    ids.EVIDENCE_FUTURE_TIME,
                    f"{origin} was verified at {when}, in the future; it does not count",
                    requirement="vsa",
                )
            )
            continue
        if info.time_verified < now - rule.max_age:
            reasons.append((ids.VSA_STALE, f"{origin} was issued {when}, older than gate.maxAge"))
            continue
        if passing is None:
            passing = EvidenceRef(ev.envelope_digest, ev.origin, VSA)
    found = [*future, *malformed, *problem_findings(problems)]
    if passing is None:
        if not reasons:
            reasons.append((ids.VSA_MISSING, f"no gate VSA names {digest}"))
        found.extend(collapse(reasons, artifact=str(digest), requirement="vsa"))
    ordered = tuple(sorted(found, key=lambda f: (f.id, f.message)))
    return VerifyDecision(digest, passing is not None, ordered, passing)
