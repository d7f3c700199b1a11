"""DG104: a build that pushes passes its digest on, judged from what the value is.

A digest counts as passed on when the build writes it to a file (``--metadata-file`` and
friends), a later command reads it back (``crane digest``, ``digestgate capture``, ...), a
job that needs this one captures it, or the build step's *digest* output (the ``digest``/
``imageid``/``metadata`` outputs of build actions, or a ``$GITHUB_OUTPUT`` value that holds a
digest) is used. An output holding a tag passes nothing on. In a matrix job the legs
overwrite each other's job outputs, so the digest must reach a step of the job and the job
must upload an artifact (the usual digest file per leg).
"""

from __future__ import annotations

import re
from typing import Final

from digestgate.linting.actions import DIGEST_OUTPUTS, METADATA_OUTPUTS, action_ref
from digestgate.linting.facts import KNOWN_DIGEST, Event, JobFacts
from digestgate.linting.findings import Finding, make
from digestgate.linting.match import Kind
from digestgate.linting.model import Job, Step, Workflow

UPLOAD_ACTIONS: Final = (
    "actions/upload-artifact",
    "forgejo/upload-artifact",
    "christopherhx/gitea-upload-artifact",
)
_DIGEST_VALUE: Final = re.compile(r"sha256:|@\$|@sha256|\$\{?\w*digest\w*\}?", re.IGNORECASE)


def _digest_outputs(step: Step, facts: JobFacts) -> set[str]:
    """The outputs of a build step that hold (or carry) the digest of what it pushed."""
    if step.uses is not None:
        name = action_ref(step.uses.value).name
        return set(DIGEST_OUTPUTS.get(name, ())) | set(METADATA_OUTPUTS.get(name, ()))
    written = facts.step_outputs.get(step.id or "", {})
    return {
        name
        for name, value in written.items()
        if value == KNOWN_DIGEST
        or _DIGEST_VALUE.search(value)
        or ("digest" in name.lower() and "$" in value)
    }


def _references(job: Job, step_id: str) -> tuple[set[str], set[str]]:
    """Output names of step ``step_id`` used in job outputs, and in the job's steps."""
    needle = re.compile(rf"steps\.{re.escape(step_id)}\.outputs\.([\w-]+)")
    in_outputs = {m for t in job.outputs.values() for m in needle.findall(t.value)}
    texts: list[str] = []
    for step in job.steps:
        texts += [t.value for t in step.with_.values()] + [t.value for t in step.env.values()]
        texts += [s.value for s in (step.run, step.if_) if s is not None]
    in_steps = {m for t in texts for m in needle.findall(t)}
    return in_outputs, in_steps


def _uploads(job: Job) -> bool:
    return any(
        s.uses is not None and action_ref(s.uses.value).name in UPLOAD_ACTIONS for s in job.steps
    )


def _problem(event: Event, job: Job, facts: JobFacts) -> str | None:
    """Why the digest of a pushing build is not passed on (None: it is)."""
    step = event.step
    if step is None or not step.id:
        return "its digest is never passed on"
    digests = _digest_outputs(step, facts)
    in_outputs, in_steps = _references(job, step.id)
    if not job.matrix and (in_outputs | in_steps) & digests:
        return None
    if job.matrix and in_steps & digests and _uploads(job):
        return None
    if job.matrix and in_outputs & digests:
        return (
            "matrix legs overwrite each other's job outputs; write the digest to a file and "
            "upload it, or run 'digestgate capture' in the job"
        )
    if in_outputs | in_steps:
        used = ", ".join(sorted(in_outputs | in_steps))
        return f"the outputs it passes on ({used}) hold no digest"
    return "its digest is never passed on"


def digest_not_captured(workflow: Workflow, facts: dict[str, JobFacts]) -> list[Finding]:
    """DG104 findings: pushing builds whose digest goes nowhere."""
    out: list[Finding] = []
    for job_id, job_facts in facts.items():
        job = workflow.jobs[job_id]
        downstream = workflow.descendants(job_id)
        for index, event in enumerate(job_facts.events):
            if event.kind is not Kind.BUILD or event.foreign or not event.match.pushes:
                continue
            if event.match.captured or any(
                e.kind is Kind.CAPTURE for e in job_facts.events[index:]
            ):
                continue
            problem = _problem(event, job, job_facts)
            if problem is None:
                continue
            if not job.matrix and any(facts[d].has(Kind.CAPTURE) for d in downstream):
                continue
            via = f" (in {event.via})" if event.via else ""
            message = f"image build '{event.match.what}'{via} pushes, but {problem}"
            loc = event.loc
            out.append(make("DG104", loc.file, loc.line, loc.column, message))
    return out
