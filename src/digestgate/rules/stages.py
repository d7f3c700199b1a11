"""The stage rule (pure): a release passes a policy with ``requires: {stage, minSoak}`` only
when a promotion record says exactly this release was promoted to that stage, at least
``minSoak`` ago.

A record counts when, in this order:

1. a key of ``requires.signers`` (default: the policy's ``gate.signers``) signed it (any
   other policy key: ``stage.untrusted-signer``, and nothing of the record is read beyond
   its ``digestgate_kind``, which only tells a promotion record from a gate decision and
   so only chooses between two blocking finding ids);
2. it is digestgate's promotion record (VSA ``digestgate_kind: promotion``, PASSED) naming
   this artifact at this digest;
3. its signed ``digestgate_stage`` is the required stage and its signed ``digestgate_release``
   lists exactly this release's artifacts and digests (no more, no fewer);
4. its signed ``timeVerified`` (the promote job's time, signed by the gate key; never a lane's
   own time, which the tests key signs) is not in the future beyond the clock skew, and is at
   least ``minSoak`` before now (``stage.soak-too-short`` names both durations).

Otherwise ``stage.missing``. Like every other requirement, the rule is monotonic: removing a
record can only make it fail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final

from digestgate.digest import Digest
from digestgate.errors import InvalidReferenceError
from digestgate.evidence.model import (
    VERIFIER_ID,
    VSA,
    EvidenceFormatError,
    Statement,
    Subject,
    VerifiedEvidence,
    VsaInfo,
    read_vsa,
)
from digestgate.policy.model import Policy
from digestgate.policy.stages import StageRequirement
from digestgate.rules import findings as ids
from digestgate.rules.decision import ArtifactDecision, Decision, EvidenceRef, RequirementStatus
from digestgate.rules.evaluate import FUTURE_SKEW, unique_evidence
from digestgate.rules.findings import Finding, finding, shown
from digestgate.rules.requirements import Reason, collapse, untrusted_signer
from digestgate.timeutil import format_timestamp

#: Extension fields of a promotion record made under a policy with a ``stage``.
STAGE_FIELD: Final = "digestgate_stage"
RELEASE_FIELD: Final = "digestgate_release"


def record_fields(stage: str, release: Iterable[Subject]) -> dict[str, Any]:
    """The signed stage fields of a promotion record: the stage and the whole release."""
    return {
        STAGE_FIELD: stage,
        RELEASE_FIELD: [
            {"name": s.name, "digest": {"sha256": s.digest.hex}}
            for s in sorted(release, key=lambda s: (s.name, str(s.digest)))
        ],
    }


@dataclass(frozen=True, slots=True)
class StageRecord:
    """A promotion record's signed stage fields (None when it was made without a stage)."""

    info: VsaInfo
    stage: str | None
    release: frozenset[Subject] | None


def read_stage_record(statement: Statement) -> StageRecord:
    """Typed view of a promotion record; :class:`EvidenceFormatError` when malformed."""
    info = read_vsa(statement)
    p = statement.predicate
    stage = p.get(STAGE_FIELD)
    if stage is not None and not isinstance(stage, str):
        raise EvidenceFormatError(f"promotion record: {STAGE_FIELD} is not a string")
    raw = p.get(RELEASE_FIELD)
    if raw is None:
        return StageRecord(info, stage, None)
    if not isinstance(raw, list):
        raise EvidenceFormatError(f"promotion record: {RELEASE_FIELD} is not a list")
    release: set[Subject] = set()
    for entry in raw:
        name = entry.get("name") if isinstance(entry, dict) else None
        digest = entry.get("digest") if isinstance(entry, dict) else None
        hex_digest = digest.get("sha256") if isinstance(digest, dict) else None
        if not isinstance(name, str) or not isinstance(hex_digest, str):
            raise EvidenceFormatError(f"promotion record: a {RELEASE_FIELD} entry is malformed")
        try:
            release.add(Subject(name, Digest("sha256", hex_digest)))
        except InvalidReferenceError:
            raise EvidenceFormatError(f"promotion record: invalid digest for {name!r}") from None
    return StageRecord(info, stage, frozenset(release))


@dataclass(frozen=True, slots=True)
class StageOutcome:
    """The stage requirement for one artifact."""

    passed: bool
    reason: str
    findings: tuple[Finding, ...]
    used: VerifiedEvidence | None


def format_span(span: timedelta) -> str:
    """A duration the way policies write them, coarsely: ``3d4h``, ``1h30m``, ``12m``, ``40s``."""
    seconds = max(0, int(span.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m")] if seconds >= 60 else [(secs, "s")]
    text = "".join(f"{n}{unit}" for n, unit in parts if n)
    return text or "0s"


def check_stage(
    requirement: StageRequirement,
    subject: Subject,
    release: frozenset[Subject],
    candidates: Sequence[VerifiedEvidence],
    now: datetime,
) -> StageOutcome:
    """Whether a counting promotion record (module doc) exists for ``subject``."""
    stage = requirement.stage
    where = f"{subject.name} {subject.digest.short}"
    reasons: list[Reason] = []
    extra: list[Finding] = []
    best: tuple[timedelta, VerifiedEvidence] | None = None
    for ev in unique_evidence(candidates):
        if ev.statement.predicate_type != VSA or subject not in ev.statement.subjects:
            continue
        origin = shown(ev.origin, 120)
        untrusted = untrusted_signer(
            ev, requirement.signers, "requires", ids.STAGE_UNTRUSTED_SIGNER
        )
        if untrusted:
            if ev.statement.predicate.get("digestgate_kind") == "promotion":
                reasons.extend(untrusted)  # else a gate decision: not a stage record at all
            continue
        try:
            record = read_stage_record(ev.statement)
        except EvidenceFormatError as exc:
            extra.append(_finding(ids.EVIDENCE_MALFORMED, f"{origin}: {shown(exc, 200)}", subject))
            continue
        info = record.info
        if info.kind != "promotion" or info.verifier_id != VERIFIER_ID or info.result != "PASSED":
            continue  # a gate decision, not a promotion: not a stage record
        if requirement.policies and info.policy_digest not in requirement.policies:
            reasons.append(
                (
                    ids.STAGE_MISSING,
                    f"{origin} was made under policy {info.policy_digest.short}, not one of "
                    "requires.policies",
                )
            )
            continue
        if record.stage != stage:
            named = "no stage" if record.stage is None else f"stage {shown(record.stage)!r}"
            reasons.append((ids.STAGE_MISSING, f"{origin} records a promotion to {named}"))
            continue
        if record.release != release:
            reasons.append(
                (ids.STAGE_MISSING, f"{origin} records the promotion of another release")
            )
            continue
        when = format_timestamp(info.time_verified)
        if info.time_verified > now + FUTURE_SKEW:
            extra.append(
                _finding(
                    ids.EVIDENCE_FUTURE_TIME,
                    f"{origin} was signed for {when}, in the future; it does not count",
                    subject,
                )
            )
            continue
        soaked = max(now - info.time_verified, timedelta(0))  # within skew: promoted now
        if best is None or soaked > best[0]:
            best = (soaked, ev)
    required = requirement.min_soak
    label = f"stage:{stage}"
    if best is not None and best[0] >= required:
        reason = f"promoted to {stage}; soaked {format_span(best[0])}"
        if required:
            reason += f" (at least {format_span(required)} required)"
        return StageOutcome(True, reason, tuple(extra), best[1])
    if best is not None:
        reasons.insert(
            0,
            (
                ids.STAGE_SOAK_TOO_SHORT,
                f"{where} was promoted to {stage} {format_span(best[0])} ago; "
                f"{format_span(required)} of soak is required",
            ),
        )
    elif not reasons:
        reasons.append(
            (ids.STAGE_MISSING, f"no gate-signed promotion record to {stage} names {where}")
        )
    found = collapse(reasons, artifact=subject.name, requirement=label)
    return StageOutcome(False, found[0].message, (*found, *extra), None)


def _finding(finding_id: str, message: str, subject: Subject) -> Finding:
    return finding(finding_id, message, artifact=subject.name, requirement="evidence")


def apply_stages(
    policy: Policy, decision: Decision, evidence: Sequence[VerifiedEvidence], now: datetime
) -> Decision:
    """``decision`` with the stage requirement added to every artifact (unchanged when the
    policy requires no stage)."""
    requirement = policy.stage.requires
    if requirement is None:
        return decision
    release = frozenset(
        Subject(name, a.digest) for name, a in decision.artifacts.items() if a.digest is not None
    )
    label = f"stage:{requirement.stage}"
    artifacts: dict[str, ArtifactDecision] = {}
    for name, artifact in decision.artifacts.items():
        if artifact.digest is None:
            row = RequirementStatus(label, False, "not evaluated: no digest")
            artifacts[name] = replace(artifact, requirements=(*artifact.requirements, row))
            continue
        outcome = check_stage(requirement, Subject(name, artifact.digest), release, evidence, now)
        artifacts[name] = _with_outcome(artifact, label, outcome)
    passed = decision.passed and all(a.passed for a in artifacts.values())
    return replace(decision, passed=passed, artifacts=_ordered(artifacts))


def _with_outcome(
    artifact: ArtifactDecision, label: str, outcome: StageOutcome
) -> ArtifactDecision:
    found = sorted(
        (*artifact.findings, *outcome.findings), key=lambda f: (f.requirement, f.id, f.message)
    )
    refs = set(artifact.evidence)
    if outcome.used is not None:
        used = outcome.used
        refs.add(EvidenceRef(used.envelope_digest, used.origin, used.statement.predicate_type))
    row = RequirementStatus(label, outcome.passed, outcome.reason)
    return replace(
        artifact,
        passed=artifact.passed and outcome.passed,
        findings=tuple(found),
        evidence=tuple(sorted(refs)),
        requirements=(*artifact.requirements, row),
    )


def _ordered(artifacts: Mapping[str, ArtifactDecision]) -> dict[str, ArtifactDecision]:
    return {name: artifacts[name] for name in sorted(artifacts)}
