"""Containers a job starts: deployments, or a test environment that ends with the job.

``docker run`` of an image the job did not build is a deployment when it runs on another
host (over ssh), or when it is started to stay (``-d`` with ``--restart`` or ``--name``) by
a job that runs no tests and stops nothing afterwards. ``docker compose up`` followed by
``compose down``/``stop`` in the same job starts a test environment, not a deployment.
"""

from __future__ import annotations

from dataclasses import replace

from digestgate.linting.facts import Event, JobFacts
from digestgate.linting.match import Kind


def _built_remotely(event: Event, before: list[Event]) -> bool:
    """Whether the image a remote run starts was built on that host earlier in the job."""
    image = event.match.refs[0].text if event.match.refs else ""
    return any(e.kind is Kind.BUILD and e.remote and image in e.match.tags for e in before) or any(
        e.kind is Kind.BUILD and e.remote and not e.match.tags for e in before
    )


def _deploys(event: Event, before: list[Event], after: list[Event], facts: JobFacts) -> bool:
    if event.remote:
        return not _built_remotely(event, before)
    stopped = any(e.kind is Kind.STOP and not e.remote for e in after)
    started_to_stay = event.match.detached and event.match.long_lived
    return started_to_stay and not stopped and not facts.is_validation


def mark_deployments(facts: dict[str, JobFacts]) -> None:
    """Turn deploying runs into promotions; drop compose test environments."""
    for job_facts in facts.values():
        events = job_facts.events
        kept: list[Event] = []
        for index, event in enumerate(events):
            before, after = events[:index], events[index + 1 :]
            if event.kind is Kind.RUN and _deploys(event, before, after, job_facts):
                where = "on a remote host" if event.remote else "-d"
                match = replace(event.match, kind=Kind.PROMOTION, what=f"docker run {where}")
                event = replace(event, kind=Kind.PROMOTION, match=match)
            elif (
                event.match.compose is not None
                and not event.remote
                and any(e.kind is Kind.STOP and "compose" in e.match.what for e in after)
            ):
                continue  # compose up ... compose down: a test environment
            kept.append(event)
        job_facts.events = kept
