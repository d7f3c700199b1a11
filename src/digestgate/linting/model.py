"""The workflow model: workflows, jobs and steps with the position of every value.

Built by :mod:`digestgate.linting.loader`; read by classification and rules. Local reusable
workflows, local composite actions and repository scripts are resolved by the loader and
hung on the nodes that call them, so the rules never touch the filesystem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from digestgate.linting.compose import ComposeFile


@dataclass(frozen=True, slots=True)
class Loc:
    """A position: file path (relative to the reporting root), 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class Text:
    """A string value and where it was written."""

    value: str
    loc: Loc


@dataclass(frozen=True, slots=True)
class RunText:
    """A ``run:`` body and the position of each of its lines (block scalars keep lines)."""

    value: str
    loc: Loc
    line_locs: tuple[Loc, ...]

    def line_loc(self, index: int) -> Loc:
        """Where line ``index`` (0-based) of the body starts; the value's start if unknown."""
        if 0 <= index < len(self.line_locs):
            return self.line_locs[index]
        return self.loc


@dataclass
class Step:
    """One step of a job or of a composite action."""

    loc: Loc
    name: str | None = None
    id: str | None = None
    run: RunText | None = None
    uses: Text | None = None
    with_: dict[str, Text] = field(default_factory=dict)
    #: ``with:`` values with the position of each of their lines (scripts of ssh actions)
    with_lines: dict[str, RunText] = field(default_factory=dict)
    env: dict[str, Text] = field(default_factory=dict)
    if_: Text | None = None
    shell: str | None = None
    working_directory: str | None = None
    #: the local action this step calls, once the loader read it
    action: LocalAction | None = None
    #: repository scripts the ``run:`` body calls, keyed by the word that names them
    scripts: dict[str, Script] = field(default_factory=dict)


@dataclass
class LocalAction:
    """A local action (``uses: ./path``): composite steps, or another kind we cannot see."""

    path: str
    using: str | None
    steps: list[Step] = field(default_factory=list)
    error: str | None = None


@dataclass
class Job:
    """One job: either steps, or a call to a reusable workflow (``uses:``)."""

    id: str
    loc: Loc
    name: str | None = None
    needs: list[Text] = field(default_factory=list)
    if_: Text | None = None
    steps: list[Step] = field(default_factory=list)
    uses: Text | None = None
    with_: dict[str, Text] = field(default_factory=dict)
    outputs: dict[str, Text] = field(default_factory=dict)
    env: dict[str, Text] = field(default_factory=dict)
    matrix: bool = False
    #: the local reusable workflow this job calls, or why it could not be read
    called: Workflow | None = None
    called_error: str | None = None


@dataclass
class Workflow:
    """One workflow file."""

    path: str
    loc: Loc
    lines: tuple[str, ...]
    triggers: dict[str, Text | None] = field(default_factory=dict)
    tag_push: bool = False
    jobs: dict[str, Job] = field(default_factory=dict)
    env: dict[str, Text] = field(default_factory=dict)
    call_outputs: dict[str, Text] = field(default_factory=dict)
    #: compose files of the repository that deploys read, by repository path (None: absent)
    compose: dict[str, ComposeFile | None] = field(default_factory=dict)

    def needs_of(self, job: Job) -> list[str]:
        """Direct needs that name existing jobs."""
        return [n.value for n in job.needs if n.value in self.jobs]

    def ancestors(self, job_id: str) -> set[str]:
        """Every job ``job_id`` needs, directly or transitively (cycle-safe)."""
        seen: set[str] = set()
        stack = [job_id]
        while stack:
            current = self.jobs.get(stack.pop())
            if current is None:
                continue
            for need in self.needs_of(current):
                if need not in seen:
                    seen.add(need)
                    stack.append(need)
        seen.discard(job_id)
        return seen

    def descendants(self, job_id: str) -> set[str]:
        """Every job that needs ``job_id``, directly or transitively."""
        return {j for j in self.jobs if j != job_id and job_id in self.ancestors(j)}

    def cycles(self) -> list[str]:
        """Jobs that take part in a ``needs`` cycle, in document order."""
        return [j for j in self.jobs if j in _reach(self, j)]


def _reach(workflow: Workflow, job_id: str) -> set[str]:
    seen: set[str] = set()
    job = workflow.jobs.get(job_id)
    stack = workflow.needs_of(job) if job else []
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        nxt = workflow.jobs.get(current)
        if nxt is not None:
            stack.extend(workflow.needs_of(nxt))
    return seen


@dataclass
class Script:
    """A repository script a command runs; ``text`` is None when it is not in the repository."""

    path: str
    text: str | None
    #: scripts this one runs, keyed by the word that names them (followed one level)
    scripts: dict[str, Script] = field(default_factory=dict)
