"""The provenance and lane requirements of one artifact, as fixed sequences of checks (pure).

Each candidate statement is one whose subjects bind this artifact's *name and digest*.
Checks run in a fixed order (signer, source, builder, freshness for provenance; signer,
revision/run, together, then newest-result-decides, result and freshness for lanes) and
every failed check is kept, so a denial names the rule and the evidence.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from digestgate.evidence.model import (
    LaneResultInfo,
    ProvenanceInfo,
    Subject,
    VerifiedEvidence,
)
from digestgate.platforms import artifact_subject_names
from digestgate.policy.model import LaneRule, Policy, matches_any
from digestgate.rules import findings as ids
from digestgate.rules.findings import Finding, finding, shown
from digestgate.timeutil import format_timestamp


@dataclass(frozen=True, slots=True)
class ProvenanceStatement:
    """A verified provenance statement and its typed view."""

    evidence: VerifiedEvidence
    info: ProvenanceInfo


@dataclass(frozen=True, slots=True)
class LaneStatement:
    """A verified lane result and its typed view."""

    evidence: VerifiedEvidence
    info: LaneResultInfo


@dataclass(frozen=True, slots=True)
class Context:
    """What every check needs besides the statements: policy, clock, the release's claims."""

    policy: Policy
    now: datetime
    revision: str | None
    run_id: str | None
    subjects: frozenset[Subject]


@dataclass(frozen=True, slots=True)
class Outcome:
    """A requirement's result: pass/fail, findings, evidence that counted, table reason."""

    passed: bool
    reason: str
    findings: tuple[Finding, ...] = ()
    used: tuple[VerifiedEvidence, ...] = ()
    revisions: frozenset[str] = field(default_factory=frozenset)
    runs: frozenset[str] = field(default_factory=frozenset)


Reason = tuple[str, str]


def collapse(reasons: Iterable[Reason], *, artifact: str, requirement: str) -> tuple[Finding, ...]:
    """One finding per id (first message kept, the rest counted), in first-seen order."""
    grouped: dict[str, list[str]] = defaultdict(list)
    for finding_id, message in reasons:
        if message not in grouped[finding_id]:
            grouped[finding_id].append(message)
    result = []
    for finding_id, messages in grouped.items():
        text = messages[0]
        if len(messages) > 1:
            text += f" (and {len(messages) - 1} more)"
        result.append(finding(finding_id, text, artifact=artifact, requirement=requirement))
    return tuple(result)


def _signers(names: Iterable[str]) -> str:
    return ", ".join(sorted(names)) or "none"


def untrusted_signer(
    evidence: VerifiedEvidence, allowed: Sequence[str], where: str, finding_id: str
) -> list[Reason]:
    """Signer check first: a statement no allowed key signed is not read further."""
    if evidence.signers & set(allowed):
        return []
    return [
        (
            finding_id,
            f"{shown(evidence.origin, 120)} is signed by {_signers(evidence.signers)}, not by "
            f"{where}.signers ({_signers(allowed)})",
        )
    ]


_Timed = TypeVar("_Timed", ProvenanceStatement, LaneStatement)


def _newest_first(items: Sequence[_Timed]) -> list[_Timed]:
    """By signed finish time, newest first; the envelope digest orders ties reproducibly."""
    if len(items) < 2:
        return list(items)
    return sorted(
        items, key=lambda s: (-s.info.finished_on.timestamp(), str(s.evidence.envelope_digest))
    )


def _missing(finding_id: str, message: str, name: str, requirement: str) -> Outcome:
    """No statement names the artifact at this digest: the requirement fails with one finding."""
    return Outcome(
        False, message, collapse([(finding_id, message)], artifact=name, requirement=requirement)
    )


def check_provenance(ctx: Context, name: str, statements: Sequence[ProvenanceStatement]) -> Outcome:
    """The provenance requirement: enough distinct trusted keys agreeing on one revision."""
    rule = ctx.policy.provenance
    requirement = "provenance"
    if not statements:
        message = f"no signed provenance names {name} at this digest"
        return _missing(ids.PROVENANCE_MISSING, message, name, requirement)
    reasons: list[Reason] = []
    accepted: list[ProvenanceStatement] = []
    for st in _newest_first(statements):
        problems = _provenance_problems(ctx, st)
        reasons.extend(problems)
        if not problems:
            accepted.append(st)
    by_revision: dict[str, list[ProvenanceStatement]] = defaultdict(list)
    for st in accepted:
        by_revision[st.info.revision].append(st)
    qualifying = {
        revision: group
        for revision, group in by_revision.items()
        if len(_identities(ctx, group, rule.signers)) >= rule.threshold
    }
    if not qualifying:
        if accepted:
            best = max(len(_identities(ctx, g, rule.signers)) for g in by_revision.values())
            reasons.append(
                (
                    ids.PROVENANCE_UNTRUSTED_SIGNER,
                    f"provenance is signed by {best} distinct trusted key(s); "
                    f"provenance.threshold requires {rule.threshold}",
                )
            )
        found = collapse(reasons, artifact=name, requirement=requirement)
        return Outcome(False, found[0].message, found)
    used = tuple(st.evidence for group in qualifying.values() for st in group)
    best_group = qualifying[sorted(qualifying)[0]]
    info = best_group[0].info
    keys = {k for st in best_group for k in st.evidence.signers if k in rule.signers}
    reason = (
        f"signed by {_signers(keys)}: {shown(info.repository)} @ {info.revision[:12]} "
        f"({shown(info.ref)}, {shown(info.event)}, run {shown(info.run_id)}), "
        f"finished {format_timestamp(info.finished_on)}"
    )
    return Outcome(
        True,
        reason,
        used=used,
        revisions=frozenset(qualifying),
        runs=frozenset(st.info.run_id for g in qualifying.values() for st in g),
    )


def _identities(
    ctx: Context, group: Iterable[ProvenanceStatement], allowed: Sequence[str]
) -> set[str]:
    """The distinct signers behind ``group``, towards a threshold: a key counts once by its
    material, and a Sigstore certificate once by its issuer and identity, however many
    policy identities its one signature matches."""
    found: set[str] = set()
    for st in group:
        names = [k for k in st.evidence.signers if k in allowed]
        cert = st.evidence.certificate
        if cert is not None and names:
            found.add(f"sigstore-certificate:{cert.issuer}\n{cert.identity}")
        else:
            found.update(ctx.policy.key_identity(k) for k in names)
    return found


def _provenance_problems(ctx: Context, st: ProvenanceStatement) -> list[Reason]:
    policy = ctx.policy
    info = st.info
    origin = shown(st.evidence.origin, 120)
    untrusted = untrusted_signer(
        st.evidence, policy.provenance.signers, "provenance", ids.PROVENANCE_UNTRUSTED_SIGNER
    )
    if untrusted:
        return untrusted
    problems: list[Reason] = []
    mismatch = ids.PROVENANCE_SOURCE_MISMATCH
    if info.repository.rstrip("/") != policy.source.repository:
        problems.append(
            (
                mismatch,
                f"built from {shown(info.repository)}, not {policy.source.repository} ({origin})",
            )
        )
    if not matches_any(policy.source.refs, info.ref):
        problems.append(
            (mismatch, f"built from ref {shown(info.ref)}, not one of source.refs ({origin})")
        )
    if info.event not in policy.source.events:
        problems.append(
            (
                mismatch,
                f"built by a {shown(info.event)!s} event; source.events allows "
                f"{', '.join(policy.source.events)} ({origin})",
            )
        )
    if policy.same_revision and ctx.revision is not None and info.revision != ctx.revision:
        problems.append(
            (
                mismatch,
                f"built revision {shown(info.revision, 40)}, the release {ctx.revision} ({origin})",
            )
        )
    if policy.same_run and ctx.run_id is not None and info.run_id != ctx.run_id:
        problems.append(
            (mismatch, f"built in run {shown(info.run_id)}, the release {ctx.run_id} ({origin})")
        )
    builder = policy.provenance.builder
    if builder is not None and not builder.matches(info.builder_id):
        problems.append(
            (
                ids.PROVENANCE_BUILDER_MISMATCH,
                f"built by {shown(info.builder_id, 160)}, not {builder} ({origin})",
            )
        )
    if info.finished_on < ctx.now - policy.max_age:
        problems.append(
            (
                ids.PROVENANCE_STALE,
                f"finished {format_timestamp(info.finished_on)}, older than maxAge ({origin})",
            )
        )
    return problems


def check_lane(
    ctx: Context,
    lane: LaneRule,
    name: str,
    statements: Sequence[LaneStatement],
    provenance: Outcome,
    future: Sequence[LaneStatement] = (),
) -> Outcome:
    """One lane for one artifact: the newest applicable result naming it decides.

    Every trusted result that names this artifact at this digest competes, whatever else it
    covers, so a newer FAILED result for the artifact alone is never outvoted by an older
    PASSED result that also covered other artifacts. (A ``together`` lane only admits
    results covering exactly the release, so there it is the newest such run.)
    ``future`` holds results dated too far in the future: they never count, and when one is
    applicable an older result is not the newest, so the lane fails.
    """
    requirement = f"lane:{lane.name}"
    if not statements:
        message = f"no signed {lane.name} result names {name} at this digest"
        return _missing(ids.LANE_MISSING, message, name, requirement)
    reasons: list[Reason] = []
    applicable: list[LaneStatement] = []
    for st in _newest_first(statements):
        problems = _lane_filter(ctx, lane, st, provenance)
        reasons.extend(problems)
        if not problems:
            applicable.append(st)
    ahead = any(not _lane_filter(ctx, lane, st, provenance) for st in future)
    if applicable:
        newest = applicable[0].info.finished_on
        top = [st for st in applicable if st.info.finished_on == newest]
        results = {_effective_result(st.info) for st in top}
        when = format_timestamp(newest)
        if ahead:
            reasons.append(
                (
                    ids.LANE_FAILED,
                    f"a {lane.name} result dated in the future is newer than the one of {when}; "
                    "neither decides",
                )
            )
        elif len(results) > 1:
            reasons.append(
                (
                    ids.LANE_FAILED,
                    f"{lane.name} results finished at the same time ({when}) disagree: "
                    f"{', '.join(sorted(results))}",
                )
            )
        elif _effective_result(top[0].info) != "PASSED":
            reasons.append(
                (
                    ids.LANE_FAILED,
                    f"the newest {lane.name} result ({when}, {shown(top[0].evidence.origin, 120)})"
                    f" is {top[0].info.result}{_contradiction(top[0].info)}",
                )
            )
        elif newest < ctx.now - ctx.policy.max_age:
            reasons.append(
                (
                    ids.LANE_STALE,
                    f"the newest {lane.name} result finished {when}, older than maxAge",
                )
            )
        else:
            return Outcome(True, _lane_reason(lane, top[0]), used=tuple(st.evidence for st in top))
    found = collapse(reasons, artifact=name, requirement=requirement)
    return Outcome(False, found[0].message, found)


def _contradiction(info: LaneResultInfo) -> str:
    """Why a PASSED result's own test counts deny it, or "" (no counts: --result PASSED)."""
    counts = info.counts
    if info.result != "PASSED" or counts is None:
        return ""
    failed = counts.failures + counts.errors
    if failed > 0:
        return f" but its counts report {failed} failed or errored test(s); it does not count"
    if counts.tests - counts.skipped <= 0:
        return " but its counts report no test that ran; it does not count"
    return ""


def _effective_result(info: LaneResultInfo) -> str:
    """The signed result, except that a PASSED its own counts contradict is FAILED."""
    return "FAILED" if _contradiction(info) else info.result


def _lane_reason(lane: LaneRule, st: LaneStatement) -> str:
    info = st.info
    text = f"PASSED at {format_timestamp(info.finished_on)}"
    if info.counts is not None:
        text += f" ({info.counts.tests} tests, {info.counts.skipped} skipped)"
    text += f", signed by {_signers(st.evidence.signers & set(lane.signers))}"
    if lane.together:
        text += f", together with {len(_artifact_subjects(st)) - 1} other(s)"
    return text


def _artifact_subjects(st: LaneStatement) -> frozenset[Subject]:
    """The result's subjects that name artifacts; children (``NAME@PLATFORM``) are the
    platform rule's business (:mod:`digestgate.rules.platforms`)."""
    subjects = st.evidence.statement.subjects
    names = artifact_subject_names({s.name for s in subjects})
    return frozenset(s for s in subjects if s.name in names)


def _coverage(st: LaneStatement, ctx: Context) -> str:
    """Why a result's subjects are not exactly the release's: other digests or other names."""
    got = _artifact_subjects(st)
    names = sorted({s.name for s in got})
    if names == sorted({s.name for s in ctx.subjects}):
        other = ", ".join(sorted(f"{s.name} {s.digest.short}" for s in got - ctx.subjects))
        return f"ran against {shown(other, 160)}, not the release's digest(s)"
    want = ", ".join(sorted({s.name for s in ctx.subjects})) or "none"
    return f"ran against {shown(', '.join(names), 120)}, not exactly the release's ({want})"


def _lane_filter(
    ctx: Context, lane: LaneRule, st: LaneStatement, provenance: Outcome
) -> list[Reason]:
    origin = shown(st.evidence.origin, 120)
    info = st.info
    untrusted = untrusted_signer(
        st.evidence, lane.signers, f"lanes.{lane.name}", ids.LANE_UNTRUSTED_SIGNER
    )
    if untrusted:
        return untrusted
    problems: list[Reason] = []
    policy = ctx.policy
    mismatch = ids.LANE_REVISION_MISMATCH
    if policy.same_revision and ctx.revision is not None:
        if info.revision != ctx.revision:
            problems.append(
                (
                    mismatch,
                    f"tested revision {shown(info.revision, 40)}, the release "
                    f"{ctx.revision} ({origin})",
                )
            )
    elif provenance.revisions and info.revision not in provenance.revisions:
        problems.append(
            (mismatch, f"tested revision {shown(info.revision, 40)}, not the built one ({origin})")
        )
    if policy.same_run:
        if ctx.run_id is not None and info.run_id != ctx.run_id:
            problems.append(
                (mismatch, f"ran in run {shown(info.run_id)}, the release {ctx.run_id} ({origin})")
            )
        elif ctx.run_id is None and provenance.runs and info.run_id not in provenance.runs:
            problems.append(
                (mismatch, f"ran in run {shown(info.run_id)}, not the build's run ({origin})")
            )
    if info.ref is not None and not matches_any(policy.source.refs, info.ref):
        problems.append(
            (
                ids.LANE_SOURCE_MISMATCH,
                f"ran from ref {shown(info.ref)}, not one of source.refs ({origin})",
            )
        )
    if info.event is not None and info.event not in policy.source.events:
        problems.append(
            (
                ids.LANE_SOURCE_MISMATCH,
                f"ran on a {shown(info.event)!s} event; source.events allows "
                f"{', '.join(policy.source.events)} ({origin})",
            )
        )
    if lane.together and _artifact_subjects(st) != ctx.subjects:
        problems.append((ids.LANE_NOT_TOGETHER, f"{_coverage(st, ctx)} ({origin})"))
    return problems
