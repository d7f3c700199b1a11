"""The deploy-side rule (design section 3, ``verify``): a fresh PASSED gate VSA (pure).

A digest passes only when a VSA names it as a subject, is signed by a key the policy lists
under ``gate.signers``, says PASSED, was issued under exactly this policy (same digest) and
is younger than ``gate.maxAge`` without being dated in the future. Any one such VSA is
enough (the rule is monotonic: removing evidence can only make it fail).
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
    read_vsa,
)
from digestgate.gate import findings as ids
from digestgate.gate.decision import EvidenceRef
from digestgate.gate.evaluate import FUTURE_SKEW, problem_findings, unique_evidence
from digestgate.gate.findings import Finding, finding, shown
from digestgate.gate.requirements import Reason, collapse
from digestgate.policy.model import GateRule, Policy
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


def verify_digest(
    policy: Policy,
    digest: Digest,
    evidence: Sequence[VerifiedEvidence],
    problems: Sequence[EvidenceProblem],
    now: datetime,
) -> VerifyDecision:
    """Apply the deploy-side rule to the VSAs found for ``digest``."""
    rule = gate_rule(policy)
    reasons: list[Reason] = []
    future: list[Finding] = []
    malformed: list[Finding] = []
    passing: EvidenceRef | None = None
    candidates = [
        ev
        for ev in unique_evidence(evidence)
        if ev.statement.predicate_type == VSA and digest in ev.statement.digests
    ]
    candidates.sort(key=lambda ev: (str(ev.envelope_digest), ev.origin))
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
        if info.result != "PASSED":
            reasons.append((ids.VSA_MISSING, f"{origin} records a FAILED gate decision"))
            continue
        if info.policy_digest != policy.digest:
            reasons.append(
                (
                    ids.VSA_POLICY_MISMATCH,
                    f"{origin} was issued under policy {info.policy_digest.short}, "
                    f"not {policy.digest.short}",
                )
            )
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
