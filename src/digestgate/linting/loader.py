"""Read workflow files into the model, following local calls; the only file I/O of lint.

Local reusable workflows (``jobs.<id>.uses: ./.github/workflows/x.yml``), local actions
(``uses: ./path`` with ``action.yml``) and repository scripts named by ``run:`` commands
are read relative to the repository root and attached to the nodes that call them. A file
that is not a workflow yields a DG100 finding with its position, never an exception.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from digestgate.errors import ConfigError, DigestgateError
from digestgate.fileread import read_capped
from digestgate.linting import shell
from digestgate.linting.classify import classify_command, script_ref
from digestgate.linting.compose import ComposeFile, candidates, command_dirs, parse_compose
from digestgate.linting.config import LintConfig
from digestgate.linting.findings import Finding, make
from digestgate.linting.model import Job, Loc, LocalAction, RunText, Script, Step, Text, Workflow
from digestgate.yamlsource import MAX_BYTES, YamlError, YMap, YNode, YScalar, YSeq, load_yaml

WORKFLOW_DIRS: Final = (".github/workflows", ".gitea/workflows", ".forgejo/workflows")
_REPO_MARKERS: Final = (".github", ".gitea", ".forgejo")
_MAX_FILE: Final = 1024 * 1024
_MAX_CALL_DEPTH: Final = 10
_MAX_SCRIPT_DEPTH: Final = 2
_DEFAULTS: Final = LintConfig()


def repository_root(path: Path, fallback: Path) -> Path:
    """The directory holding the ``.github``/``.gitea``/``.forgejo`` that contains ``path``."""
    parts = path.resolve().parts
    for i in range(len(parts) - 1, 0, -1):
        if parts[i] in _REPO_MARKERS:
            return Path(*parts[:i])
    return fallback.resolve()


def workflow_files(directory: Path) -> list[Path]:
    """Workflow files under a directory: its workflow folders if it is a repository root."""
    found: list[Path] = []
    roots = [directory / d for d in WORKFLOW_DIRS if (directory / d).is_dir()]
    for folder in roots or [directory]:
        found.extend(
            p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix in (".yml", ".yaml")
        )
    return found


@dataclass
class _File:
    """The file being converted: its display path, source lines and findings."""

    display: str
    lines: tuple[str, ...]
    findings: list[Finding] = field(default_factory=list)

    def loc(self, node: YNode) -> Loc:
        return Loc(self.display, node.pos.line, node.pos.column)

    def invalid(self, node: YNode | None, message: str) -> None:
        line, column = (node.pos.line, node.pos.column) if node is not None else (1, 1)
        self.findings.append(make("DG100", self.display, line, column, message))


class Loader:
    """Reads workflows of one repository, caching called workflows, actions and scripts."""

    def __init__(self, root: Path, display_root: Path) -> None:
        self.root = root.resolve()
        self.display_root = display_root.resolve()
        self._workflows: dict[Path, tuple[Workflow | None, str | None]] = {}
        self._active: set[Path] = set()
        self._compose: dict[str, ComposeFile | None] = {}

    # -------------------------------------------------------------------- files
    def display(self, path: Path) -> str:
        """``path`` relative to the reporting root (posix), or absolute outside it."""
        resolved = path.resolve()
        try:
            return resolved.relative_to(self.display_root).as_posix()
        except ValueError:
            return resolved.as_posix()

    def _inside(self, relative: str) -> Path | None:
        norm = posixpath.normpath(relative.lstrip("/"))
        if norm.startswith("..") or "\x00" in norm:
            return None
        return self.root / norm

    @staticmethod
    def _read(path: Path) -> str | None:
        try:
            data = read_capped(path, _MAX_FILE, what="file")
            return None if len(data) > _MAX_FILE else data.decode("utf-8")
        except (OSError, UnicodeDecodeError, ConfigError):
            return None

    # ---------------------------------------------------------------- workflows
    def load(self, path: Path) -> tuple[Workflow | None, list[Finding]]:
        """Load one workflow file given on the command line."""
        display = self.display(path)
        try:
            data = read_capped(path, MAX_BYTES, what="workflow file")
        except ConfigError as exc:
            return None, [make("DG100", display, 1, 1, f"cannot read the file: {exc.message}")]
        except OSError as exc:
            return None, [make("DG100", display, 1, 1, f"cannot read the file: {exc.strerror}")]
        return self.parse(data, display, depth=0)

    def parse(
        self, data: bytes | str, display: str, depth: int = 0
    ) -> tuple[Workflow | None, list[Finding]]:
        """Convert workflow text into a :class:`Workflow` plus DG100 findings."""
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        file = _File(display, tuple(text.split("\n")))
        try:
            node = load_yaml(data, source=display)
        except YamlError as exc:
            file.findings.append(make("DG100", display, exc.line, exc.column, exc.reason))
            return None, file.findings
        except DigestgateError as exc:
            file.findings.append(make("DG100", display, 1, 1, exc.message))
            return None, file.findings
        if not isinstance(node, YMap):
            file.invalid(node, "the workflow is not a mapping")
            return None, file.findings
        workflow = Workflow(display, file.loc(node), file.lines)
        workflow.compose = self._compose
        workflow.env = _scalars(node.get("env"))
        _triggers(workflow, node.get("on"))
        jobs = node.get("jobs")
        if not isinstance(jobs, YMap):
            file.invalid(jobs if jobs is not None else node, "the workflow has no 'jobs' mapping")
            return workflow, file.findings
        for job_id, job_node in jobs.items():
            key = jobs.key_node(job_id)
            assert key is not None
            if not isinstance(job_node, YMap):
                file.invalid(job_node, f"job {job_id!r} is not a mapping")
                continue
            workflow.jobs[job_id] = self._job(
                file, job_id, Loc(display, key.pos.line, key.pos.column), job_node, depth
            )
        _check_graph(file, workflow)
        return workflow, file.findings

    def _job(self, file: _File, job_id: str, loc: Loc, node: YMap, depth: int) -> Job:
        job = Job(job_id, loc)
        job.name = _scalar(node.get("name"))
        job.if_ = _text(file, node.get("if"))
        job.env = _scalars(node.get("env"))
        job.with_ = _scalars(node.get("with"))
        job.outputs = _scalars(node.get("outputs"))
        strategy = node.get("strategy")
        job.matrix = isinstance(strategy, YMap) and strategy.get("matrix") is not None
        needs = node.get("needs")
        if isinstance(needs, YScalar):
            job.needs = [Text(needs.text, file.loc(needs))]
        elif isinstance(needs, YSeq):
            job.needs = [Text(n.text, file.loc(n)) for n in needs.items if isinstance(n, YScalar)]
        uses = node.get("uses")
        if isinstance(uses, YScalar):
            job.uses = Text(uses.text, file.loc(uses))
            if uses.text.startswith("./"):
                job.called, job.called_error = self._callee(uses.text, depth)
        job.steps = self._steps(file, node.get("steps"), depth)
        return job

    def _callee(self, relative: str, depth: int) -> tuple[Workflow | None, str | None]:
        path = self._inside(relative.split("@", 1)[0])
        if path is None:
            return None, "outside the repository"
        if depth >= _MAX_CALL_DEPTH or path in self._active:
            return None, "called recursively"
        if path in self._workflows:
            return self._workflows[path]
        data = self._read(path)
        if data is None:
            result: tuple[Workflow | None, str | None] = (
                None,
                "not in the repository",
            )
        else:
            self._active.add(path)
            try:
                workflow, findings = self.parse(data, self.display(path), depth + 1)
            finally:
                self._active.discard(path)
            bad = [f for f in findings if f.rule == "DG100"]
            result = (
                workflow,
                "not a valid workflow" if bad and not workflow else None,
            )
        self._workflows[path] = result
        return result

    # -------------------------------------------------------------------- steps
    def _steps(self, file: _File, node: YNode | None, depth: int) -> list[Step]:
        if node is None:
            return []
        if not isinstance(node, YSeq):
            file.invalid(node, "'steps' is not a list")
            return []
        steps: list[Step] = []
        for item in node.items:
            if not isinstance(item, YMap):
                file.invalid(item, "a step is not a mapping")
                continue
            steps.append(self._step(file, item, depth))
        return steps

    def _step(self, file: _File, node: YMap, depth: int) -> Step:
        step = Step(file.loc(node))
        step.name = _scalar(node.get("name"))
        step.id = _scalar(node.get("id"))
        step.shell = _scalar(node.get("shell"))
        step.working_directory = _scalar(node.get("working-directory"))
        step.if_ = _text(file, node.get("if"))
        step.with_ = _scalars(node.get("with"))
        inputs = node.get("with")
        if isinstance(inputs, YMap):
            step.with_lines = {
                k: _run_text(file, v) for k, v in inputs.items() if isinstance(v, YScalar)
            }
        step.env = _scalars(node.get("env"))
        run, uses = node.get("run"), node.get("uses")
        if isinstance(run, YScalar):
            step.run = _run_text(file, run)
            step.scripts = self._scripts(step.run.value, step.working_directory, 1)
            self._read_compose(step.run.value, step.working_directory)
        if isinstance(uses, YScalar):
            step.uses = Text(uses.text, file.loc(uses))
            if uses.text.startswith("./"):
                step.action = self._action(uses.text, depth)
        if step.run is None and step.uses is None:
            file.invalid(node, "a step needs 'run' or 'uses'")
        return step

    def _action(self, relative: str, depth: int) -> LocalAction:
        folder = self._inside(relative)
        if folder is None:
            return LocalAction(relative, None, error="outside the repository")
        if depth >= _MAX_CALL_DEPTH or folder in self._active:
            return LocalAction(relative, None, error="called recursively")
        for name in ("action.yml", "action.yaml"):
            data = self._read(folder / name)
            if data is not None:
                break
        else:
            return LocalAction(relative, None, error="no action.yml in the repository")
        display = self.display(folder / name)
        file = _File(display, tuple(data.split("\n")))
        try:
            node = load_yaml(data, source=display)
        except DigestgateError as exc:
            return LocalAction(display, None, error=exc.message)
        runs = node.get("runs") if isinstance(node, YMap) else None
        using = _scalar(runs.get("using")) if isinstance(runs, YMap) else None
        action = LocalAction(display, using)
        if isinstance(runs, YMap) and using == "composite":
            self._active.add(folder)
            try:
                action.steps = self._steps(file, runs.get("steps"), depth + 1)
            finally:
                self._active.discard(folder)
        elif using is None:
            action.error = "action.yml has no runs.using"
        return action

    def _scripts(self, text: str, working_dir: str | None, level: int) -> dict[str, Script]:
        found: dict[str, Script] = {}
        if level > _MAX_SCRIPT_DEPTH:
            return found
        base = working_dir if working_dir and "${{" not in working_dir else ""
        for command in _every_command(text):
            word = script_ref(command.argv)
            if word is None or word in found:
                continue
            path = self._inside(posixpath.join(base, word))
            if path is None:
                found[word] = Script(word, None)
                continue
            body = self._read(path)
            script = Script(self.display(path), body)
            if body is not None:
                script.scripts = self._scripts(body, working_dir, level + 1)
                self._read_compose(body, working_dir)
            found[word] = script
        return found

    def _read_compose(self, text: str, working_dir: str | None) -> None:
        """Read the repository compose files that the compose deploys of ``text`` name."""
        commands = _every_command(text)
        for command, cwd in zip(commands, command_dirs(commands, working_dir), strict=True):
            for match in classify_command(command.argv, _DEFAULTS):
                if match.compose is None:
                    continue
                for path in candidates(match.compose.files, cwd):
                    if path is not None and path not in self._compose:
                        self._compose[path] = self._compose_file(path)

    def _compose_file(self, relative: str) -> ComposeFile | None:
        path = self._inside(relative)
        text = self._read(path) if path is not None else None
        if path is None or text is None:
            return None
        display = self.display(path)
        try:
            return parse_compose(load_yaml(text, source=display), display)
        except DigestgateError as exc:
            return ComposeFile(display, (), exc.message)


# ------------------------------------------------------------------------ helpers
def _every_command(text: str) -> list[shell.Command]:
    """The commands a text runs plus its function bodies (others may source and call them)."""
    parsed = shell.parse(text)
    return [*parsed.commands, *(c for body in parsed.functions.values() for c in body)]


def _scalar(node: YNode | None) -> str | None:
    return node.text if isinstance(node, YScalar) and node.value is not None else None


def _text(file: _File, node: YNode | None) -> Text | None:
    if isinstance(node, YScalar) and node.value is not None:
        return Text(node.text, file.loc(node))
    return None


def _scalars(node: YNode | None) -> dict[str, Text]:
    if not isinstance(node, YMap):
        return {}
    out: dict[str, Text] = {}
    for key, value in node.items():
        if isinstance(value, YScalar):
            out[key] = Text(value.text, Loc(value.pos.source, value.pos.line, value.pos.column))
        elif isinstance(value, YMap) and isinstance(value.get("value"), YScalar):
            inner = value.get("value")
            assert isinstance(inner, YScalar)
            out[key] = Text(inner.text, Loc(inner.pos.source, inner.pos.line, inner.pos.column))
    return out


def _run_text(file: _File, node: YScalar) -> RunText:
    loc = file.loc(node)
    header = file.lines[node.pos.line - 1] if node.pos.line - 1 < len(file.lines) else ""
    indicator = header[node.pos.column - 1 : node.pos.column]
    if indicator != "|":
        return RunText(node.text, loc, ())
    locs: list[Loc] = []
    for offset in range(node.text.count("\n") + 1):
        number = node.pos.line + 1 + offset
        source = file.lines[number - 1] if number - 1 < len(file.lines) else ""
        locs.append(Loc(file.display, number, len(source) - len(source.lstrip()) + 1))
    return RunText(node.text, loc, tuple(locs))


def _triggers(workflow: Workflow, node: YNode | None) -> None:
    names: list[tuple[str, YNode | None]] = []
    if isinstance(node, YScalar) and node.value is not None:
        names = [(node.text, None)]
    elif isinstance(node, YSeq):
        names = [(n.text, None) for n in node.items if isinstance(n, YScalar)]
    elif isinstance(node, YMap):
        names = list(node.items())
    for name, value in names:
        workflow.triggers[name] = None
        if name == "push" and isinstance(value, YMap) and value.get("tags") is not None:
            workflow.tag_push = True
        if name == "workflow_call" and isinstance(value, YMap):
            workflow.call_outputs = _scalars(value.get("outputs"))


def _check_graph(file: _File, workflow: Workflow) -> None:
    for job in workflow.jobs.values():
        for need in job.needs:
            if need.value not in workflow.jobs:
                file.findings.append(
                    make(
                        "DG100",
                        need.loc.file,
                        need.loc.line,
                        need.loc.column,
                        f"job {job.id!r} needs unknown job {need.value!r}",
                    )
                )
    for job_id in workflow.cycles():
        loc = workflow.jobs[job_id].loc
        file.findings.append(
            make(
                "DG100",
                loc.file,
                loc.line,
                loc.column,
                f"job {job_id!r} is part of a 'needs' cycle",
            )
        )
