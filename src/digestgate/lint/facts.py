"""What each job does, in order: classified events with the position to report them at.

Commands inside repository scripts and local composite actions, and whole jobs of local
reusable workflows, are expanded here and reported at the line of the workflow that calls
them (``via`` says where the command really is).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Final

from digestgate.lint import shell
from digestgate.lint.actions import DIGEST_OUTPUTS
from digestgate.lint.classify import (
    Kind,
    Match,
    action_ref,
    classify_action,
    classify_command,
    is_lane,
    script_ref,
)
from digestgate.lint.config import LintConfig
from digestgate.lint.model import Job, Loc, Script, Step, Workflow

#: Stands for a digest a step is known to output (build-push-action, digestgate capture).
KNOWN_DIGEST: Final = "sha256:" + "0123456789abcdef" * 4
_MAX_DEPTH: Final = 10
_OUTPUT_LINE: Final = re.compile(r"GITHUB_OUTPUT")
Adder = Callable[[Kind, Match, Loc, "str | None"], None]


@dataclass(frozen=True, slots=True)
class Event:
    """One classified thing a job does."""

    kind: Kind
    match: Match
    loc: Loc
    step: Step | None = None
    via: str | None = None
    foreign: bool = False  # from a called reusable workflow (that file is linted on its own)
    remote: bool = False  # runs on another host (ssh), not on the job's runner


@dataclass(frozen=True, slots=True)
class Assignment:
    """A shell variable or step output set by a command: name, value, where."""

    name: str
    value: str
    loc: Loc
    step: Step | None


@dataclass
class JobFacts:
    """The events of one job plus what its steps assign and output."""

    job: Job
    events: list[Event] = field(default_factory=list)
    assigns: list[Assignment] = field(default_factory=list)
    step_outputs: dict[str, dict[str, str]] = field(default_factory=dict)

    def has(self, kind: Kind) -> bool:
        """Whether any event is of ``kind``."""
        return any(e.kind is kind for e in self.events)

    @property
    def is_validation(self) -> bool:
        """A validation job: it runs tests or is a configured lane."""
        return self.has(Kind.VALIDATION)


def workflow_facts(workflow: Workflow, config: LintConfig, depth: int = 0) -> dict[str, JobFacts]:
    """Facts for every job of ``workflow``."""
    return {jid: _job(workflow, job, config, depth) for jid, job in workflow.jobs.items()}


def _job(workflow: Workflow, job: Job, config: LintConfig, depth: int) -> JobFacts:
    facts = JobFacts(job)
    for name in (job.id, job.name):
        if is_lane(name, config):
            facts.events.append(
                Event(Kind.VALIDATION, Match(Kind.VALIDATION, f"lane {name}"), job.loc)
            )
            break
    if job.uses is not None:
        _called(facts, job, config, depth)
    for step in job.steps:
        _step(facts, step, config, None, None, depth)
    _publication(facts)
    if facts.is_validation:
        # compose up in a job that runs tests starts the system under test, not a deployment
        facts.events = [e for e in facts.events if not e.match.starts_services]
    return facts


def _called(facts: JobFacts, job: Job, config: LintConfig, depth: int) -> None:
    assert job.uses is not None
    loc = job.uses.loc
    if not job.uses.value.startswith("./"):
        match = Match(Kind.OPAQUE, f"remote reusable workflow {job.uses.value}")
        facts.events.append(Event(Kind.OPAQUE, match, loc))
        return
    if job.called is None or depth >= _MAX_DEPTH:
        why = job.called_error or "nested too deeply"
        match = Match(Kind.OPAQUE, f"reusable workflow {job.uses.value} ({why})")
        facts.events.append(Event(Kind.OPAQUE, match, loc))
        return
    for inner in workflow_facts(job.called, config, depth + 1).values():
        for event in inner.events:
            facts.events.append(
                replace(event, loc=loc, via=event.via or str(event.loc), foreign=True, step=None)
            )


def _step(
    facts: JobFacts, step: Step, config: LintConfig, at: Loc | None, via: str | None, depth: int
) -> None:
    """Events of one step; ``at``/``via`` relocate the events of a composite action's steps."""
    owner = step if at is None else None

    def add(kind: Kind, match: Match, loc: Loc, where: str | None) -> None:
        real = via or (where if at is None else where or str(loc))
        facts.events.append(Event(kind, match, at or loc, owner, real if real else None))

    if is_lane(step.name, config):
        add(Kind.VALIDATION, Match(Kind.VALIDATION, f"lane {step.name}"), step.loc, None)
    if step.run is not None:
        for command in shell.commands(step.run.value):
            loc = step.run.line_loc(command.line)
            _record(facts, step, command, at or loc)
            _command(add, command, loc, step.scripts, config, None, 0)
        _outputs(facts, step)
    if step.uses is not None:
        ref = action_ref(step.uses.value)
        loc = step.uses.loc
        if ref.kind == "local":
            action = step.action
            if action is None or action.error or action.using != "composite" or depth > _MAX_DEPTH:
                why = (
                    action.error
                    if action and action.error
                    else f"runs.using {action.using}"
                    if action
                    else "not read"
                )
                add(Kind.OPAQUE, Match(Kind.OPAQUE, f"local action {ref.raw} ({why})"), loc, None)
            else:
                for inner in action.steps:
                    _step(facts, inner, config, at or loc, via, depth + 1)
        else:
            with_ = {k: v.value for k, v in step.with_.items()}
            for match in classify_action(ref, with_, config):
                add(match.kind, match, loc, None)
            if step.id and ref.name in DIGEST_OUTPUTS:
                facts.step_outputs.setdefault(step.id, {}).update(
                    dict.fromkeys(DIGEST_OUTPUTS[ref.name], KNOWN_DIGEST)
                )


def _command(
    add: Adder,
    command: shell.Command,
    loc: Loc,
    scripts: dict[str, Script],
    config: LintConfig,
    via: str | None,
    level: int,
) -> None:
    matches = classify_command(command.argv, config)
    for match in matches:
        add(match.kind, match, loc, via)
    if matches:
        return
    word = script_ref(command.argv)
    if word is None:
        return
    script = scripts.get(word)
    if script is None or script.text is None:
        if level == 0 or script is not None:
            add(Kind.OPAQUE, Match(Kind.OPAQUE, f"script {word} (not in the repository)"), loc, via)
        return
    for inner in shell.commands(script.text):
        _command(
            add, inner, loc, script.scripts, config, f"{script.path}:{inner.line + 1}", level + 1
        )


def _record(facts: JobFacts, step: Step, command: shell.Command, loc: Loc) -> None:
    for name, value in command.assigns:
        facts.assigns.append(Assignment(name, value, loc, step))
    words = command.argv
    if words[:2] == ("digestgate", "capture") and len(words) > 2 and step.id:
        name = words[2]
        facts.step_outputs.setdefault(step.id, {}).update(
            {f"{name}-digest": KNOWN_DIGEST, f"{name}-image": f"captured@{KNOWN_DIGEST}"}
        )


def _outputs(facts: JobFacts, step: Step) -> None:
    """``echo name=value >> $GITHUB_OUTPUT`` lines: step outputs (and assignments)."""
    assert step.run is not None
    for index, logical in shell.logical_lines(step.run.value):
        if not _OUTPUT_LINE.search(logical):
            continue
        for command in shell.commands(logical):
            if not command.argv or command.argv[0] not in ("echo", "printf"):
                continue
            for word in command.argv[1:]:
                name, sep, value = word.partition("=")
                if sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name):
                    loc = step.run.line_loc(index)
                    facts.assigns.append(Assignment(name, value, loc, step))
                    if step.id:
                        facts.step_outputs.setdefault(step.id, {})[name] = value


def _publication(facts: JobFacts) -> None:
    """``docker push``/``docker tag``: publication in a job that builds, promotion elsewhere."""
    builds = [e for e in facts.events if e.kind is Kind.BUILD and not e.foreign]
    if builds:
        pushed = {r.text for e in facts.events if e.kind is Kind.PUSH for r in e.match.refs}
        pushed |= {
            e.match.target or ""
            for e in facts.events
            if e.kind is Kind.TAG and (e.match.target in pushed)
        }
        anything = any(e.kind is Kind.PUSH and not e.match.refs for e in facts.events)
        facts.events = [
            replace(e, match=replace(e.match, pushes=True))
            if e in builds
            and (anything or set(e.match.tags) & pushed or (pushed and not e.match.tags))
            else e
            for e in facts.events
        ]
        return
    targets: set[str] = set()
    result: list[Event] = []
    for event in facts.events:
        if event.kind is Kind.TAG and event.match.target:
            targets.add(event.match.target)
            result.append(replace(event, kind=Kind.PROMOTION))
        elif event.kind is Kind.PUSH:
            refs = tuple(r for r in event.match.refs if r.text not in targets)
            result.append(
                replace(event, kind=Kind.PROMOTION, match=replace(event.match, refs=refs))
            )
        else:
            result.append(event)
    facts.events = result
