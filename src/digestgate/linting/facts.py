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

from digestgate.linting import shell
from digestgate.linting.actions import DIGEST_OUTPUTS, SSH_ACTIONS
from digestgate.linting.classify import (
    Kind,
    Match,
    action_ref,
    classify_action,
    classify_command,
    is_lane,
    script_ref,
)
from digestgate.linting.compose import ComposeFile, command_dirs, compose_refs
from digestgate.linting.config import LintConfig
from digestgate.linting.model import Job, Loc, Script, Step, Workflow

#: Stands for a digest a step is known to output (build-push-action, digestgate capture).
KNOWN_DIGEST: Final = "sha256:" + "0123456789abcdef" * 4
_MAX_DEPTH: Final = 10
_OUTPUT_LINE: Final = re.compile(r"(GITHUB|GITEA|FORGEJO)_(OUTPUT|ENV)|::set-output ")
_SET_OUTPUT: Final = re.compile(r"::set-output name=([A-Za-z_][\w-]*)::(.*)")
Adder = Callable[[Kind, Match, Loc, "str | None", bool], None]


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
    #: variables written to $GITHUB_ENV (visible as env to the later steps of the job)
    env_writes: list[Assignment] = field(default_factory=list)
    compose: dict[str, ComposeFile | None] = field(default_factory=dict)

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
    facts = JobFacts(job, compose=workflow.compose)
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
        # (unless it runs on another host)
        facts.events = [e for e in facts.events if not e.match.starts_services or e.remote]
    return facts


def _called(facts: JobFacts, job: Job, config: LintConfig, depth: int) -> None:
    assert job.uses is not None
    loc = job.uses.loc
    if not job.uses.value.startswith("./"):
        what = f"remote reusable workflow {job.uses.value}"
        match = Match(Kind.OPAQUE, what, unreadable=True)
        facts.events.append(Event(Kind.OPAQUE, match, loc))
        return
    if job.called is None or depth >= _MAX_DEPTH:
        why = job.called_error or "nested too deeply"
        match = Match(Kind.OPAQUE, f"reusable workflow {job.uses.value} ({why})", unreadable=True)
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

    def add(kind: Kind, match: Match, loc: Loc, where: str | None, remote: bool) -> None:
        real = via or (where if at is None else where or str(loc))
        event = Event(kind, match, at or loc, owner, real if real else None, remote=remote)
        facts.events.append(event)

    if is_lane(step.name, config):
        lane = Match(Kind.VALIDATION, f"lane {step.name}")
        add(Kind.VALIDATION, lane, step.loc, None, False)
    if step.run is not None:
        commands = shell.commands(step.run.value)
        dirs = command_dirs(commands, step.working_directory)
        scope: dict[str, tuple[str, tuple[shell.Command, ...]]] = {}
        for command, cwd in zip(commands, dirs, strict=True):
            loc = step.run.line_loc(command.line)
            _record(facts, step, command, at or loc)
            where = _Where(loc, None, cwd, step.working_directory, scope)
            _command(facts, add, command, where, step.scripts, config, 0)
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
                unreadable = action is None or bool(action.error)
                what = f"local action {ref.raw} ({why})"
                opaque = Match(Kind.OPAQUE, what, unreadable=unreadable)
                add(Kind.OPAQUE, opaque, loc, None, False)
            else:
                for inner in action.steps:
                    _step(facts, inner, config, at or loc, via, depth + 1)
        else:
            with_ = {k: v.value for k, v in step.with_.items()}
            for match in classify_action(ref, with_, config):
                add(match.kind, match, loc, None, False)
            if ref.name in SSH_ACTIONS:
                _ssh_action(facts, add, step, ref.name, config)
            if step.id and ref.name in DIGEST_OUTPUTS:
                facts.step_outputs.setdefault(step.id, {}).update(
                    dict.fromkeys(DIGEST_OUTPUTS[ref.name], KNOWN_DIGEST)
                )


@dataclass(frozen=True, slots=True)
class _Where:
    """Where a command runs: the line to report, its script, its directory, the step's."""

    loc: Loc
    via: str | None
    cwd: str | None
    start: str | None
    #: functions of the scripts the run block sourced: name -> (script path, body)
    scope: dict[str, tuple[str, tuple[shell.Command, ...]]] = field(default_factory=dict)


def _ssh_action(facts: JobFacts, add: Adder, step: Step, name: str, config: LintConfig) -> None:
    """The script of an ssh action runs on the remote host: classify it command by command."""
    lines = {k.lower().replace("_", "-"): v for k, v in step.with_lines.items()}
    scripts = [lines[key] for key in SSH_ACTIONS[name] if key in lines]
    if not scripts:
        assert step.uses is not None
        what = f"action {name} runs a script that is not in the workflow on a remote host"
        add(Kind.OPAQUE, Match(Kind.OPAQUE, what), step.uses.loc, None, False)
    for script in scripts:
        for command in shell.commands(script.value, remote=True):
            where = _Where(script.line_loc(command.line), None, None, None)
            _command(facts, add, command, where, {}, config, 0)


def _command(
    facts: JobFacts,
    add: Adder,
    command: shell.Command,
    where: _Where,
    scripts: dict[str, Script],
    config: LintConfig,
    level: int,
) -> None:
    name = command.argv[0] if command.argv else ""
    if name in where.scope and not command.remote:
        if level <= _MAX_DEPTH:  # a function of a sourced library: its body runs here
            path, body = where.scope[name]
            for inner in body:
                called = shell.with_arguments(inner, command.argv[1:])
                nested = replace(where, via=f"{path}:{inner.line + 1}")
                _command(facts, add, called, nested, scripts, config, level + 1)
        return
    matches = classify_command(command.argv, config)
    for match in matches:
        if match.compose is not None:
            refs = compose_refs(match.compose, where.cwd, facts.compose)
            match = replace(match, refs=refs)
        add(match.kind, match, where.loc, where.via, command.remote)
    if matches or command.remote:
        return
    word = script_ref(command.argv)
    if word is None:
        return
    script = scripts.get(word)
    if script is None or script.text is None:
        if level == 0 or script is not None:
            missing = Match(Kind.OPAQUE, f"script {word} (not in the repository)")
            add(Kind.OPAQUE, missing, where.loc, where.via, False)
        return
    parsed = shell.parse(script.text)
    if command.argv[0] in ("source", "."):  # its functions can be called from here on
        where.scope.update({n: (script.path, b) for n, b in parsed.functions.items()})
    ran = parsed.commands
    for command_, cwd in zip(ran, command_dirs(ran, where.start), strict=True):
        via = f"{script.path}:{command_.line + 1}"
        nested = _Where(where.loc, via, cwd, where.start, where.scope)
        _command(facts, add, command_, nested, script.scripts, config, level + 1)


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
    """Step outputs and job env a run block writes: ``echo name=value >> $GITHUB_OUTPUT``
    (also Gitea/Forgejo's files and the older ``::set-output name=X::value``) and
    ``echo NAME=value >> $GITHUB_ENV``."""
    assert step.run is not None
    for index, logical in shell.logical_lines(step.run.value):
        found = _OUTPUT_LINE.search(logical)
        if not found:
            continue
        to_env = found.group(2) == "ENV"
        for command in shell.commands(logical):
            if not command.argv or command.argv[0] not in ("echo", "printf"):
                continue
            for word in command.argv[1:]:
                legacy = _SET_OUTPUT.search(word)
                if legacy:
                    name, value = legacy.group(1), legacy.group(2)
                else:
                    name, sep, value = word.partition("=")
                    if not (sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name)):
                        continue
                written = Assignment(name, value, step.run.line_loc(index), step)
                if to_env and not legacy:
                    facts.env_writes.append(written)
                    continue
                facts.assigns.append(written)
                if step.id:
                    facts.step_outputs.setdefault(step.id, {})[name] = value


def _publication(facts: JobFacts) -> None:
    """``docker push``/``docker tag``: publication in a job that builds, promotion elsewhere."""
    builds = [e for e in facts.events if e.kind is Kind.BUILD and not e.foreign]
    if builds or facts.has(Kind.LOAD):
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
