"""The lint rules DG101-DG106 over one workflow's job facts (pure).

Each rule returns findings; suppressions and ``--strict`` are applied afterwards
(:mod:`digestgate.linting.suppress`, :mod:`digestgate.linting.api`).
"""

from __future__ import annotations

import re
from typing import Final

from digestgate.linting.capture import digest_not_captured
from digestgate.linting.classify import Kind
from digestgate.linting.config import LintConfig
from digestgate.linting.facts import Event, JobFacts, workflow_facts
from digestgate.linting.findings import Finding, make
from digestgate.linting.match import Ref
from digestgate.linting.model import Job, Loc, Step, Text, Workflow
from digestgate.linting.refs import (
    Resolver,
    digest_problem,
    digest_var_problem,
    ref_problem,
    tag_value_problem,
)
from digestgate.linting.smoke import mark_smoke_tests
from digestgate.linting.started import mark_deployments

_BYPASS: Final = re.compile(r"\b(always|failure|cancelled)\s*\(\s*\)")
_RELEASE_TRIGGERS: Final = ("release", "create")
_DIGEST_NAME: Final = re.compile(r"digest", re.IGNORECASE)


def check_workflow(workflow: Workflow, config: LintConfig) -> list[Finding]:
    """Every DG101-DG106 finding of one workflow."""
    facts = workflow_facts(workflow, config)
    mark_smoke_tests(workflow, facts)
    mark_deployments(facts)
    release = _release_path(workflow, config)
    findings: list[Finding] = []
    findings += _build_after_validation(workflow, facts, release)
    findings += _promote_by_tag(workflow, facts)
    findings += _promotion_not_gated(workflow, facts)
    findings += digest_not_captured(workflow, facts)
    findings += _release_rebuild(workflow, facts)
    findings += _opaque_steps(workflow, facts, release)
    unique = {(f.rule, f.file, f.line, f.column, f.message): f for f in findings}
    return sorted(unique.values(), key=Finding.sort_key)


def _at(rule: str, loc: Loc, message: str) -> Finding:
    return make(rule, loc.file, loc.line, loc.column, message)


def _via(event: Event) -> str:
    return f" (in {event.via})" if event.via else ""


def _release_path(workflow: Workflow, config: LintConfig) -> set[str]:
    """Jobs on the release path: the configured release jobs, else every job."""
    if config.release_jobs:
        return {j for j in workflow.jobs if j in config.release_jobs}
    return set(workflow.jobs)


def _validation_before(workflow: Workflow, facts: dict[str, JobFacts], job_id: str) -> list[str]:
    return sorted(j for j in workflow.ancestors(job_id) if facts[j].is_validation)


# ------------------------------------------------------------------------------ DG101
def _build_after_validation(
    workflow: Workflow, facts: dict[str, JobFacts], release: set[str]
) -> list[Finding]:
    out: list[Finding] = []
    for job_id in sorted(release):
        upstream = _validation_before(workflow, facts, job_id)
        seen: Event | None = None
        for event in facts[job_id].events:
            if event.kind is Kind.VALIDATION and seen is None:
                seen = event
            if event.kind is not Kind.BUILD:
                continue
            what = f"image build '{event.match.what}'{_via(event)}"
            if upstream:
                names = ", ".join(repr(u) for u in upstream)
                out.append(
                    _at(
                        "DG101",
                        event.loc,
                        f"{what} in job {job_id!r} runs after validation job(s) {names}",
                    )
                )
            elif seen is not None:
                out.append(
                    _at(
                        "DG101",
                        event.loc,
                        f"{what} follows validation '{seen.match.what}' "
                        f"(line {seen.loc.line}) in job {job_id!r}",
                    )
                )
    return out


# ------------------------------------------------------------------------------ DG102
def _promote_by_tag(workflow: Workflow, facts: dict[str, JobFacts]) -> list[Finding]:
    resolver = Resolver(workflow, facts)
    out: list[Finding] = []
    for job_id, job_facts in facts.items():
        for event in job_facts.events:
            if event.kind is not Kind.PROMOTION or event.foreign:
                continue
            for ref in event.match.refs:
                problem = _ref_problem(ref, event, resolver, job_id)
                if problem:
                    out.append(_at("DG102", event.loc, f"{event.match.what}: {problem}"))
        for assignment in job_facts.assigns:
            if _DIGEST_NAME.search(assignment.name) and assignment.loc.file == workflow.path:
                problem = digest_var_problem(
                    assignment.name, assignment.value, resolver, job_id, assignment.step
                )
                if problem:
                    out.append(_at("DG102", assignment.loc, problem))
    out += _digest_env(workflow, resolver)
    return out


def _ref_problem(ref: Ref, event: Event, resolver: Resolver, job_id: str) -> str | None:
    """Why a reference a promotion or deployment uses is not pinned by digest, or None."""
    if ref.role == "absent":
        where = " on the remote host" if event.remote else ""
        why = f"cannot be read ({ref.origin})" if ref.origin else "is not in the repository"
        return (
            f"the compose file '{ref.text}'{where} {why}, so the deploy pulls whatever tags "
            "it names"
        )
    if ref.role == "tag":
        problem: str | None = tag_value_problem(ref.text)
    elif ref.role == "digest":
        problem = digest_problem(ref.text, resolver, job_id, event.step)
    else:
        problem = ref_problem(ref.text, resolver, job_id, event.step)
    if problem and ref.origin:
        return f"{problem} (written at {ref.origin})"
    return problem


def _digest_env(workflow: Workflow, resolver: Resolver) -> list[Finding]:
    scopes: list[tuple[str, dict[str, Text], Step | None]] = []
    first = next(iter(workflow.jobs), "")
    scopes.append((first, workflow.env, None))
    for job_id, job in workflow.jobs.items():
        scopes.append((job_id, job.env, None))
        scopes.append((job_id, job.with_, None))
        scopes.extend((job_id, step.env, step) for step in job.steps)
    out: list[Finding] = []
    for job_id, env, step in scopes:
        for name, text in env.items():
            if not _DIGEST_NAME.search(name):
                continue
            problem = digest_var_problem(name, text.value, resolver, job_id, step)
            if problem:
                out.append(_at("DG102", text.loc, problem))
    return out


# ------------------------------------------------------------------------------ DG103
def _bypasses(condition: Text | None, guarded: list[str]) -> bool:
    """Whether an ``if:`` lets the job run after a needed job failed or was skipped."""
    if condition is None or not _BYPASS.search(condition.value):
        return False
    text = condition.value
    for need in guarded:
        pattern = rf"needs\.{re.escape(need)}\.result\s*==\s*['\"]success['\"]"
        if not re.search(pattern, text):
            return True
    return False


def _promotion_not_gated(workflow: Workflow, facts: dict[str, JobFacts]) -> list[Finding]:
    out: list[Finding] = []
    validation = {j for j, f in facts.items() if f.is_validation}
    for job_id, job_facts in facts.items():
        promotions = [e for e in job_facts.events if e.kind is Kind.PROMOTION]
        if not promotions:
            continue
        job = workflow.jobs[job_id]
        upstream = workflow.ancestors(job_id)
        required = validation - {job_id} - workflow.descendants(job_id)
        missing = sorted(required - upstream)
        if missing:
            names = ", ".join(repr(m) for m in missing)
            out.append(
                _at(
                    "DG103",
                    job.loc,
                    f"promotion job {job_id!r} does not need validation job(s) {names}",
                )
            )
        out += _bypass_findings(workflow, job, required & upstream)
        out += _in_job_order(job_facts, promotions)
    return out


def _bypass_findings(workflow: Workflow, job: Job, validated: set[str]) -> list[Finding]:
    """Jobs between a validation job and the promotion that run even when it failed."""
    out: list[Finding] = []
    between = [
        job.id,
        *sorted(
            j
            for j in workflow.ancestors(job.id)
            if workflow.ancestors(j) & validated and j not in validated
        ),
    ]
    for job_id in between:
        current = workflow.jobs[job_id]
        leading = [
            n
            for n in workflow.needs_of(current)
            if n in validated or workflow.ancestors(n) & validated
        ]
        if leading and _bypasses(current.if_, leading):
            assert current.if_ is not None
            if job_id == job.id:
                out.append(
                    _at(
                        "DG103",
                        current.if_.loc,
                        f"promotion job {job.id!r} runs even when validation fails: "
                        f"if: {current.if_.value}",
                    )
                )
            else:
                out.append(
                    _at(
                        "DG103",
                        job.loc,
                        f"promotion job {job.id!r} depends on job {job_id!r}, which runs "
                        f"even when validation fails (if: {current.if_.value})",
                    )
                )
    return out


def _in_job_order(job_facts: JobFacts, promotions: list[Event]) -> list[Finding]:
    """A job that validates and promotes: every promotion after every test, not bypassed."""
    out: list[Finding] = []
    tests = [i for i, e in enumerate(job_facts.events) if e.kind is Kind.VALIDATION]
    if not tests:
        return out
    last = tests[-1]
    for index, event in enumerate(job_facts.events):
        if event not in promotions:
            continue
        if index < last:
            out.append(
                _at(
                    "DG103",
                    event.loc,
                    f"'{event.match.what}' runs before validation in the same job",
                )
            )
        elif (
            event.step is not None
            and event.step.if_ is not None
            and _BYPASS.search(event.step.if_.value)
        ):
            out.append(
                _at(
                    "DG103",
                    event.step.if_.loc,
                    f"'{event.match.what}' runs even when validation fails: "
                    f"if: {event.step.if_.value}",
                )
            )
    return out


# ------------------------------------------------------------------------------ DG105
def _release_rebuild(workflow: Workflow, facts: dict[str, JobFacts]) -> list[Finding]:
    triggers: list[str] = [t for t in _RELEASE_TRIGGERS if t in workflow.triggers]
    if workflow.tag_push:
        triggers.append("push of tags")
    if not triggers:
        return []
    if any(f.has(Kind.CONSUME) for f in facts.values()):
        return []
    out: list[Finding] = []
    for job_facts in facts.values():
        for event in job_facts.events:
            # a build that pushes nothing and starts nothing (a test image, 'load: true')
            # releases nothing; one that pushes, runs on a server or is started is released
            ships = event.match.pushes or event.remote or event.match.started
            if event.kind is Kind.BUILD and ships:
                out.append(
                    _at(
                        "DG105",
                        event.loc,
                        f"image build '{event.match.what}'{_via(event)} in a workflow "
                        f"triggered by {', '.join(triggers)} rebuilds instead of "
                        f"promoting a validated digest",
                    )
                )
    return out


# ------------------------------------------------------------------------------ DG106
def _opaque_steps(
    workflow: Workflow, facts: dict[str, JobFacts], release: set[str]
) -> list[Finding]:
    out: list[Finding] = []
    for job_id in sorted(release):
        upstream = _validation_before(workflow, facts, job_id)
        after = bool(upstream)
        for event in facts[job_id].events:
            if event.kind is Kind.VALIDATION:
                after = True
            elif event.kind is Kind.OPAQUE and after:
                reason = (
                    f"after validation job(s) {', '.join(repr(u) for u in upstream)}"
                    if upstream
                    else "after validation in the same job"
                )
                what = f"{event.match.what}{_via(event)}"
                out.append(_at("DG106", event.loc, f"{what} runs {reason} and cannot be inspected"))
            elif event.kind is Kind.OPAQUE and event.match.unreadable:
                # a job (or local action) that cannot be read at all may build, push or
                # deploy anything on the release path: never silently clean
                what = f"{event.match.what}{_via(event)}"
                out.append(
                    _at(
                        "DG106",
                        event.loc,
                        f"{what} in job {job_id!r} cannot be read, so what it builds, pushes "
                        "or deploys is unknown",
                    )
                )
    return out
