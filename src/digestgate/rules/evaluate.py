"""The gate's decision rules (design section 4), pure: no I/O, the clock is passed in.

Nothing passes unless a valid, trusted, fresh, passing statement exists for it; every
finding is collected before deciding. The inputs are verified evidence only: envelopes whose
signatures failed arrive as :class:`EvidenceProblem` and are reported, never read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Final

from digestgate.digest import Digest
from digestgate.evidence.fulcio import certified_lane, certified_provenance
from digestgate.evidence.model import (
    PROVENANCE,
    TEST_RESULT,
    EvidenceFormatError,
    EvidenceProblem,
    Subject,
    VerifiedEvidence,
    read_provenance,
    read_test_result,
)
from digestgate.policy.model import Policy
from digestgate.rules import findings as ids
from digestgate.rules.decision import (
    ArtifactDecision,
    ArtifactView,
    Decision,
    EvidenceRef,
    RegistryCheck,
    ReleaseView,
    RequirementStatus,
)
from digestgate.rules.findings import Finding, finding, shown
from digestgate.rules.platforms import artifact_platforms, check_platform_lane, validated_platforms
from digestgate.rules.requirements import (
    Context,
    LaneStatement,
    Outcome,
    ProvenanceStatement,
    check_provenance,
)
from digestgate.timeutil import format_timestamp

#: Evidence dated further in the future than this is refused (clock skew allowance).
FUTURE_SKEW: Final = timedelta(minutes=5)


def unique_evidence(evidence: Sequence[VerifiedEvidence]) -> list[VerifiedEvidence]:
    """One copy per envelope digest (the same envelope in two stores counts once), in
    envelope-digest order (then origin): a stable order however the stores listed them."""
    seen: dict[Digest, VerifiedEvidence] = {}
    for ev in sorted(evidence, key=lambda e: (str(e.envelope_digest), e.origin)):
        seen.setdefault(ev.envelope_digest, ev)
    return list(seen.values())


def problem_findings(problems: Sequence[EvidenceProblem]) -> list[Finding]:
    """evidence.malformed / evidence.unverified for envelopes that could not be used."""
    result = []
    for p in sorted(problems, key=lambda p: (p.kind, p.origin, p.message)):
        finding_id = ids.EVIDENCE_MALFORMED if p.kind == "malformed" else ids.EVIDENCE_UNVERIFIED
        result.append(
            finding(
                finding_id,
                f"{shown(p.origin, 160)}: {shown(p.message, 200)}",
                requirement="evidence",
            )
        )
    return result


def artifact_digest(artifact: ArtifactView) -> Digest | None:
    """The artifact's digest, or None when its reference has none or does not parse."""
    if artifact.reference_problem is not None or artifact.location is None:
        return None
    return artifact.location.digest


class _Evaluation:
    """One evaluation run: the statements sorted by artifact, and findings as they arise."""

    def __init__(
        self,
        policy: Policy,
        release: ReleaseView,
        evidence: Sequence[VerifiedEvidence],
        now: datetime,
    ) -> None:
        self.policy = policy
        self.release = release
        self.now = now
        self.digests: dict[str, Digest] = {}
        for name, artifact in release.artifacts.items():
            digest = artifact_digest(artifact)
            if digest is not None:
                self.digests[name] = digest
        self.names_by_digest: dict[Digest, set[str]] = defaultdict(set)
        for name, digest in self.digests.items():
            self.names_by_digest[digest].add(name)
        self.ctx = Context(
            policy=policy,
            now=now,
            revision=release.source.revision or None,
            run_id=release.source.run_id or None,
            subjects=frozenset(Subject(n, d) for n, d in self.digests.items()),
        )
        self.artifact_findings: dict[str, list[Finding]] = defaultdict(list)
        self.provenance: dict[Subject, list[ProvenanceStatement]] = defaultdict(list)
        self.lanes: dict[tuple[str, Subject], list[LaneStatement]] = defaultdict(list)
        #: Lane results dated in the future: they never count, but they are newer than
        #: every other result, so no older result of their subject set may decide.
        self.future_lanes: dict[tuple[str, Subject], list[LaneStatement]] = defaultdict(list)
        for ev in unique_evidence(evidence):
            self._sort(ev)

    def _add(self, names: set[str], finding_id: str, message: str) -> None:
        for name in sorted(names):
            self.artifact_findings[name].append(
                finding(finding_id, message, artifact=name, requirement="evidence")
            )

    def _sort(self, ev: VerifiedEvidence) -> None:
        statement = ev.statement
        related: set[str] = set()
        for subject in statement.subjects:
            related |= self.names_by_digest.get(subject.digest, set())
        if not related:
            return  # evidence about other digests: irrelevant to this release
        origin = shown(ev.origin, 160)
        for subject in statement.subjects:
            owners = self.names_by_digest.get(subject.digest)
            if owners and subject.name not in owners:
                self._add(
                    owners,
                    ids.EVIDENCE_NAME_MISMATCH,
                    f"{origin} names {subject.digest.short} {shown(subject.name)!r}; the release "
                    f"calls it {', '.join(sorted(owners))}",
                )
        bound = [s for s in statement.subjects if self.digests.get(s.name) == s.digest]
        try:
            if statement.predicate_type == PROVENANCE:
                prov = (
                    read_provenance(statement)
                    if ev.certificate is None
                    else certified_provenance(statement, ev.certificate)
                )
                if not self._future(related, origin, prov.finished_on):
                    for subject in bound:
                        self.provenance[subject].append(ProvenanceStatement(ev, prov))
            elif statement.predicate_type == TEST_RESULT:
                lane = (
                    read_test_result(statement)
                    if ev.certificate is None
                    else certified_lane(statement, ev.certificate)
                )
                target = (
                    self.future_lanes
                    if self._future(related, origin, lane.finished_on)
                    else self.lanes
                )
                for subject in bound:
                    target[lane.lane, subject].append(LaneStatement(ev, lane))
        except EvidenceFormatError as exc:
            self._add(related, ids.EVIDENCE_MALFORMED, f"{origin}: {shown(exc, 200)}")

    def _future(self, names: set[str], origin: str, moment: datetime) -> bool:
        if moment <= self.now + FUTURE_SKEW:
            return False
        self._add(
            names,
            ids.EVIDENCE_FUTURE_TIME,
            f"{origin} finished {format_timestamp(moment)}, in the future; it does not count",
        )
        return True

    def artifact_checks(
        self, name: str, artifact: ArtifactView, registry: Mapping[str, RegistryCheck] | None
    ) -> list[Finding]:
        """Reference, repository, deny list and registry presence of one artifact."""
        found: list[Finding] = []
        image = shown(artifact.image_text, 200)

        def add(finding_id: str, message: str) -> None:
            found.append(finding(finding_id, message, artifact=name, requirement="artifact"))

        digest = self.digests.get(name)
        not_pinned = f"{name}: {image} is not pinned by digest"
        if artifact.reference_problem == "not-digest":
            add(ids.REFERENCE_NOT_DIGEST, not_pinned)
            return found
        if artifact.reference_problem is not None or artifact.location is None:
            add(ids.REFERENCE_INVALID, f"{name}: {image} is not a valid image reference")
            return found
        if digest is None:
            add(ids.REFERENCE_NOT_DIGEST, not_pinned)
            return found
        rule = self.policy.artifacts[name]
        allowed = rule.repository.matches(artifact.location.name)
        if not allowed:
            add(
                ids.ARTIFACT_WRONG_REPOSITORY,
                f"{name} is in {shown(artifact.location.name, 200)}, not {rule.repository}",
            )
        if digest in self.policy.deny:
            add(ids.ARTIFACT_DENIED, f"{name} {digest} is on the policy's deny list")
        if registry is not None and allowed:  # a disallowed repository is never contacted
            check = registry.get(name)
            if check is None or check.status == "not-found":
                detail = check.detail if check else "it was not checked"
                add(ids.ARTIFACT_NOT_FOUND, f"{name} {digest.short} not found: {detail}")
        return found


def evaluate(
    policy: Policy,
    release: ReleaseView,
    evidence: Sequence[VerifiedEvidence],
    problems: Sequence[EvidenceProblem],
    now: datetime,
    registry_checks: Mapping[str, RegistryCheck] | None = None,
) -> Decision:
    """Decide whether ``release`` may be promoted under ``policy`` (see docs/policy.md)."""
    run = _Evaluation(policy, release, evidence, now)
    release_findings = problem_findings(problems)
    for name in sorted(set(policy.artifacts) - set(release.artifacts)):
        release_findings.append(
            finding(
                ids.RELEASE_MISSING_ARTIFACT,
                f"the policy requires {name}, which the release does not contain",
                artifact=name,
            )
        )
    for name in sorted(set(release.artifacts) - set(policy.artifacts)):
        release_findings.append(
            finding(
                ids.RELEASE_UNEXPECTED_ARTIFACT,
                f"the release contains {shown(name)}, which the policy does not list",
                artifact=name,
            )
        )
    decisions: dict[str, ArtifactDecision] = {}
    outcomes: dict[str, Outcome] = {}
    for name in sorted(set(policy.artifacts) & set(release.artifacts)):
        decisions[name], outcome = _decide_artifact(run, name, registry_checks)
        if outcome is not None:
            outcomes[name] = outcome
    release_findings.extend(_mixed(run, outcomes))
    passed = (
        bool(decisions)
        and all(d.passed for d in decisions.values())
        and not any(f.blocking for f in release_findings)
    )
    return Decision(
        passed=passed,
        policy_digest=policy.digest,
        time=now,
        artifacts=decisions,
        findings=tuple(sorted(release_findings, key=lambda f: (f.id, f.artifact or "", f.message))),
    )


def _decide_artifact(
    run: _Evaluation, name: str, registry: Mapping[str, RegistryCheck] | None
) -> tuple[ArtifactDecision, Outcome | None]:
    artifact = run.release.artifacts[name]
    found = run.artifact_checks(name, artifact, registry)
    check = registry.get(name) if registry is not None else None
    digest = run.digests.get(name)
    provenance: Outcome | None = None
    if digest is not None:
        provenance = check_provenance(run.ctx, name, run.provenance.get(Subject(name, digest), []))
    platforms, mismatch = (
        artifact_platforms(name, artifact, check, registry is None, provenance)
        if digest is not None
        else (None, [])
    )
    found.extend(mismatch)
    rows = [
        RequirementStatus(
            "artifact",
            not found,
            found[0].message if found else _artifact_reason(registry),
        )
    ]
    used: list[VerifiedEvidence] = []
    requirements = ["provenance", *(f"lane:{lane}" for lane in sorted(run.policy.lanes))]
    if digest is None or provenance is None:
        rows.extend(RequirementStatus(r, False, "not evaluated: no digest") for r in requirements)
    else:
        subject = Subject(name, digest)
        outcomes = [provenance]
        for lane_name in sorted(run.policy.lanes):
            lane = run.policy.lanes[lane_name]
            statements = run.lanes.get((lane_name, subject), [])
            future = run.future_lanes.get((lane_name, subject), [])
            outcomes.append(
                check_platform_lane(run.ctx, lane, name, platforms, statements, provenance, future)
            )
        for requirement, outcome in zip(requirements, outcomes, strict=True):
            rows.append(RequirementStatus(requirement, outcome.passed, outcome.reason))
            found.extend(outcome.findings)
            used.extend(outcome.used)
    evidence_findings = run.artifact_findings.get(name, [])
    found.extend(evidence_findings)
    blocking_evidence = [f for f in evidence_findings if f.blocking]
    if blocking_evidence:
        rows.append(RequirementStatus("evidence", False, blocking_evidence[0].message))
    passed = all(r.passed for r in rows) and not any(f.blocking for f in found)
    refs = sorted(
        {
            EvidenceRef(ev.envelope_digest, ev.origin, ev.statement.predicate_type)
            for ev in unique_evidence(used)
        }
    )
    decision = ArtifactDecision(
        name=name,
        image=artifact.image_text,
        digest=digest,
        passed=passed,
        findings=tuple(sorted(found, key=lambda f: (f.requirement, f.id, f.message))),
        evidence=tuple(refs),
        requirements=tuple(rows),
        platforms=validated_platforms(run.policy, platforms),
    )
    return decision, provenance if provenance is not None and provenance.passed else None


def _artifact_reason(registry: Mapping[str, RegistryCheck] | None) -> str:
    if registry is None:
        return "pinned by digest (registry not checked: offline)"
    return "pinned by digest; the served bytes hash to it"


def _mixed(run: _Evaluation, outcomes: Mapping[str, Outcome]) -> list[Finding]:
    """Artifacts of one release must share a revision (and, under sameRun, a run)."""
    found: list[Finding] = []
    if len(outcomes) < 2:
        return found
    revisions = [o.revisions for o in outcomes.values()]
    if not frozenset.intersection(*revisions):
        detail = "; ".join(
            f"{n}: {', '.join(sorted(r[:12] for r in o.revisions))}"
            for n, o in sorted(outcomes.items())
        )
        found.append(
            finding(
                ids.RELEASE_MIXED_REVISIONS,
                f"the artifacts were built from different revisions ({shown(detail, 300)})",
            )
        )
    if run.policy.same_run and run.ctx.run_id is None:
        runs = [o.runs for o in outcomes.values()]
        if not frozenset.intersection(*runs):
            detail = "; ".join(
                f"{n}: {', '.join(sorted(o.runs))}" for n, o in sorted(outcomes.items())
            )
            found.append(
                finding(
                    ids.RELEASE_MIXED_RUNS,
                    f"the artifacts were built in different runs ({shown(detail, 300)})",
                )
            )
    return found
