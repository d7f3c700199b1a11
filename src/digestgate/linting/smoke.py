"""Smoke tests of a fresh build: ``docker run`` of an image built earlier in the same job.

Running the image a job just built validates it (a smoke test), so a build after that run
in the same job (commonly a multi-platform build pushed by digest) rebuilds what was tested.
"""

from __future__ import annotations

from dataclasses import replace

from digestgate.linting.facts import Event, JobFacts
from digestgate.linting.match import Kind
from digestgate.linting.model import Step, Workflow
from digestgate.linting.refs import Resolver, is_dynamic


def _forms(text: str, resolver: Resolver, job_id: str, step: Step | None) -> set[str]:
    """The ways an image name may be written: as is, resolved, with the implied ``:latest``."""
    name = text.strip().strip("'\"")
    forms = {name}
    if is_dynamic(name):
        resolved = resolver.resolve(name, job_id, step)
        if resolved is not None:
            forms.add(resolved.strip().strip("'\""))
    for form in list(forms):
        if ":" not in form.rsplit("/", 1)[-1] and "@" not in form:
            forms.add(f"{form}:latest")
    return forms


def mark_smoke_tests(workflow: Workflow, facts: dict[str, JobFacts]) -> None:
    """Turn each ``docker run`` of an image built earlier in its job into a validation."""
    resolver = Resolver(workflow, facts)
    for job_id, job_facts in facts.items():
        built: dict[str, Event] = {}
        events: list[Event] = []
        for event in job_facts.events:
            if event.kind is Kind.BUILD and not event.foreign:
                for tag in event.match.tags:
                    built.update(dict.fromkeys(_forms(tag, resolver, job_id, event.step), event))
            elif event.kind is Kind.RUN and event.match.refs and not event.remote:
                image = event.match.refs[0].text
                source = next(
                    (built[f] for f in _forms(image, resolver, job_id, event.step) if f in built),
                    None,
                )
                if source is not None:
                    what = f"docker run of the image built at line {source.loc.line}"
                    match = replace(event.match, kind=Kind.VALIDATION, what=what)
                    event = replace(event, kind=Kind.VALIDATION, match=match)
            events.append(event)
        job_facts.events = events
