"""A small local Actions runner for the shipped workflows and the composite action.

It reads a workflow file, orders its jobs by ``needs`` (file order among equals) and runs
their steps with a simulated GitHub or Gitea Actions environment: ``GITHUB_*`` variables, a
fresh ``$GITHUB_OUTPUT`` per step, one ``$GITHUB_STEP_SUMMARY`` per job, step outputs,
job outputs (evaluated at the end of the job, dropped when they contain a secret, as
runners do), ``needs``, ``env``, ``secrets``, ``vars`` and ``github`` contexts, and the
status functions of ``if:`` (a job's implicit ``success()`` over every upstream job, as act
and GitHub evaluate it). Expressions (tests/integration/actions_expr.py) cover exactly
the forms the examples use; anything else, and any reference to something that does not
exist, fails loudly instead of becoming an empty string, so a wrong output name cannot hide.

What runs for real: ``run:`` scripts made only of simple shell and ``digestgate`` commands,
and the composite action's ``run`` script (with ``DG_BIN`` pointing at a digestgate
executable). What is simulated, and how, is recorded per step: checkout copies a
repository directory, upload/download-artifact copy files through a per-run artifact store
(least-common-ancestor roots, one folder per artifact for pattern downloads), the image
build pushes a layout made by a factory and answers build-push-action's ``metadata``
output, test runners write a passing JUnit file where the step says its runner writes one,
and services are pulled by the reference the job names. Everything else is skipped with a
reason. ``Run.report()`` lists it all.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.integration.actions_expr import condition, parse_output_file, resolve, scalar, substitute

ROOT = Path(__file__).resolve().parents[2]
ACTION = ROOT / "action.yml"
EXAMPLES = {
    "github": ROOT / "examples/github/.github/workflows/release.yml",
    "gitea": ROOT / "examples/gitea/.gitea/workflows/release.yml",
}
#: Gitea/Forgejo promote from a separate release repository (the gate key's only home).
GITEA_PROMOTE = ROOT / "examples/gitea/release-repository/.gitea/workflows/promote.yml"
DIGESTGATE_ACTION_RE = re.compile(r"(?:https://github\.com/)?digestgate/digestgate@[^\s]+")

# --- workflow files -------------------------------------------------------------------------


def load(path: Path) -> dict[Any, Any]:
    """A workflow or action file as a mapping."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), path
    return data


def jobs(workflow: Mapping[Any, Any]) -> dict[str, dict[str, Any]]:
    """The ``jobs`` mapping of a workflow."""
    result = workflow["jobs"]
    assert isinstance(result, dict)
    return result


def steps(job: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The steps of a job (none for a job without ``steps``)."""
    return list(job.get("steps") or [])


def needs_of(job: Mapping[str, Any]) -> list[str]:
    """``needs`` as a list, whether the file gives a string or a list."""
    needs = job.get("needs") or []
    return [needs] if isinstance(needs, str) else list(needs)


def upstream(workflow: Mapping[Any, Any], name: str) -> set[str]:
    """Every job ``name`` depends on, directly or through other jobs' ``needs``."""
    all_jobs = jobs(workflow)
    found: set[str] = set()
    pending = needs_of(all_jobs[name])
    while pending:
        job = pending.pop()
        if job not in found:
            found.add(job)
            pending += needs_of(all_jobs[job])
    return found


def release_repository_inputs(release: Mapping[str, Any], tag: str = "main") -> dict[str, str]:
    """The Gitea release repository's promote inputs for a release.json (as a mapping)."""
    return {
        "backend": release["artifacts"]["backend"]["image"],
        "frontend": release["artifacts"]["frontend"]["image"],
        "revision": release["source"]["revision"],
        "ref": release["source"]["ref"],
        "run-id": release["source"]["runId"],
        "tag": tag,
    }


def job_order(workflow: Mapping[Any, Any]) -> list[str]:
    """Job ids in topological order of ``needs``; file order breaks ties."""
    all_jobs = jobs(workflow)
    done: list[str] = []
    while len(done) < len(all_jobs):
        ready = [
            name
            for name, job in all_jobs.items()
            if name not in done and all(n in done for n in needs_of(job))
        ]
        assert ready, f"cycle or unknown job in needs: {sorted(set(all_jobs) - set(done))}"
        done.append(ready[0])
    return done


def action_run_step() -> tuple[str, dict[str, str]]:
    """The action's run script and its input -> environment variable mapping."""
    action = load(ACTION)
    run = next(s for s in action["runs"]["steps"] if s.get("id") == "run")
    mapping: dict[str, str] = {}
    for env, value in run["env"].items():
        match = re.fullmatch(r"\$\{\{\s*inputs\.([a-z-]+)\s*\}\}", str(value))
        if match:
            mapping[match.group(1)] = env
    return str(run["run"]), mapping


# --- the composite action ------------------------------------------------------------------


def run_action_script(
    given: Mapping[str, str],
    *,
    dg_bin: Path,
    env: Mapping[str, str],
    cwd: Path,
    output_file: Path,
    timeout: float = 120,
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """Run the action's ``run`` step as a runner would; return the process and its outputs.

    Each ``with:`` value (or the input's default) reaches the script through the step's
    ``env:`` mapping, exactly as action.yml declares it; ``DG_BIN`` replaces the install
    step's output.
    """
    action = load(ACTION)
    declared: dict[str, Any] = action["inputs"]
    unknown = set(given) - set(declared)
    assert not unknown, f"inputs the action does not declare: {sorted(unknown)}"
    run = next(s for s in action["runs"]["steps"] if s.get("id") == "run")
    assert run.get("shell") == "bash", "the action's run step must use bash"
    inputs = {
        name: str(given.get(name, spec.get("default", ""))) for name, spec in declared.items()
    }
    context = {"inputs": inputs, "steps": {"install": {"outputs": {"bin": str(dg_bin)}}}}
    step_env = {k: substitute(str(v), context) for k, v in run["env"].items()}
    output_file.write_text("", encoding="utf-8")
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", str(run["run"])],
        env={**env, **step_env, "GITHUB_OUTPUT": str(output_file)},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return proc, parse_output_file(output_file.read_text(encoding="utf-8"))


def action_outputs(run_outputs: Mapping[str, str]) -> dict[str, str]:
    """The composite action's declared outputs, from what its ``run`` step wrote.

    An output the script did not write is left out (a runner would give ""), so a workflow
    that reads it fails loudly here.
    """
    result: dict[str, str] = {}
    for name, spec in load(ACTION)["outputs"].items():
        match = re.fullmatch(
            r"\$\{\{\s*steps\.run\.outputs\.([A-Za-z0-9_-]+)\s*\}\}", spec["value"]
        )
        assert match, f"action output {name}: unsupported value {spec['value']!r}"
        if run_outputs.get(match.group(1)):
            result[name] = run_outputs[match.group(1)]
    return result


# --- simulated build, tests and artifacts ------------------------------------------------------

#: build(context directory, tags) -> buildx metadata (specs 7.1).
Builder = Callable[[str, list[str]], dict[str, Any]]
#: pull(image reference) -> a note for the report; raises when the image cannot be pulled.
Puller = Callable[[str], str]


def buildx_metadata(
    digest: str, media_type: str, size: int, names: Sequence[str], config_digest: str | None
) -> dict[str, Any]:
    """What ``docker buildx build --metadata-file`` (and build-push-action's ``metadata``
    output) reports for a pushed image (specs 7.1; tests/data/buildx samples)."""
    descriptor: dict[str, Any] = {
        "mediaType": media_type,
        "digest": digest,
        "size": size,
        "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
    }
    metadata: dict[str, Any] = {
        "buildx.build.provenance": {"buildType": "https://mobyproject.org/buildkit@v1"},
        "buildx.build.ref": "builder/builder0/simulatedbuild",
        "containerimage.descriptor": descriptor,
        "containerimage.digest": digest,
        "image.name": ",".join(names),
    }
    if config_digest is not None:
        descriptor["annotations"]["config.digest"] = config_digest
        metadata["containerimage.config.digest"] = config_digest
    return metadata


def junit_xml(suite: str, tests: int = 3) -> str:
    """A passing JUnit report with ``tests`` test cases."""
    cases = "".join(
        f'    <testcase classname="{suite}" name="case_{n}" time="0.01"/>\n' for n in range(tests)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n'
        f'  <testsuite name="{suite}" tests="{tests}" failures="0" errors="0" skipped="0">\n'
        f"{cases}  </testsuite>\n</testsuites>\n"
    )


#: Commands a ``run:`` script may use to be run for real here.
RUNNABLE_COMMANDS = frozenset({"digestgate", "mkdir", "printf", "echo", "cat", "cp", "set", "test"})


def script_commands(script: str) -> list[str]:
    """The command words of a simple shell script (first word of each command)."""
    words: list[str] = []
    for line in script.replace("\\\n", " ").splitlines():
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:
            words.append(line.strip())
            continue
        start = True
        for token in tokens:
            if start and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", token):
                words.append(token)
                start = False
            if token in {"&&", "||", "|", ";"}:
                start = True
    return words


def junit_destination(step: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
    """Where a test-runner step's own command line says its JUnit report goes (relative)."""
    script = str(step.get("run", ""))
    match = re.search(r'JUNIT_XML="\$PWD/([^"$]+)"', script)
    if match:
        return match.group(1)
    if "playwright test" in script and "PLAYWRIGHT_JUNIT_OUTPUT_NAME" in env:
        where = Path(str(step.get("working-directory", ".")))
        return os.path.normpath(where / env["PLAYWRIGHT_JUNIT_OUTPUT_NAME"])
    return None


class StepFailed(Exception):
    """A simulated step failed the way its action would."""


class ArtifactStore:
    """Workflow artifacts of one run: one directory per artifact name."""

    UPLOAD_KEYS = frozenset({"name", "path", "if-no-files-found", "retention-days", "overwrite"})
    DOWNLOAD_KEYS = frozenset({"name", "pattern", "path"})

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        """The directory holding artifact ``name``."""
        return self.root / name

    def upload(self, workspace: Path, given: Mapping[str, Any]) -> str:
        """upload-artifact: files under the least common ancestor of the paths."""
        assert set(given) <= self.UPLOAD_KEYS, f"upload-artifact: {sorted(given)}"
        assert str(given.get("overwrite", "false")).lower() == "false", "never overwritten"
        name = str(given["name"])
        assert not self.path(name).exists(), f"artifact {name} uploaded twice"
        lines = [p.strip().rstrip("/") for p in str(given["path"]).splitlines()]
        entries = [workspace / p for p in lines if p]
        files: list[Path] = []
        roots: list[Path] = []
        for entry in entries:
            if entry.is_dir():
                files += sorted(p for p in entry.rglob("*") if p.is_file())
                roots.append(entry)
            elif entry.is_file():
                files.append(entry)
                roots.append(entry.parent)
        if not files:
            if given.get("if-no-files-found", "warn") == "error":
                raise StepFailed(f"upload-artifact {name}: no files found")
            return f"artifact {name}: nothing to upload"
        root = Path(os.path.commonpath(roots)) if len(entries) > 1 else roots[0]
        for file in files:
            target = self.path(name) / file.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, target)
        return f"artifact {name}: {len(files)} files"

    def download(self, workspace: Path, given: Mapping[str, Any]) -> str:
        """download-artifact: by name into ``path``, or by pattern into ``path/NAME``."""
        assert set(given) <= self.DOWNLOAD_KEYS, f"download-artifact: {sorted(given)}"
        dest = workspace / str(given.get("path", "."))
        if "name" in given:
            source = self.path(str(given["name"]))
            if not source.is_dir():
                raise StepFailed(f"download-artifact: no artifact {given['name']}")
            shutil.copytree(source, dest, dirs_exist_ok=True)
            return f"artifact {given['name']} -> {given.get('path', '.')}"
        pattern = str(given.get("pattern", "*"))
        names = sorted(p.name for p in self.root.iterdir() if fnmatch.fnmatch(p.name, pattern))
        for name in names:
            shutil.copytree(self.path(name), dest / name, dirs_exist_ok=True)
        return f"artifacts {', '.join(names) or '(none)'} -> {given.get('path', '.')}/<name>"


# --- the run ---------------------------------------------------------------------------------


@dataclass
class StepRecord:
    """What happened to one step."""

    job: str
    label: str
    how: str  # ran | action | simulated | skipped | not-run
    note: str
    outcome: str  # success | failure | skipped
    code: int | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    stderr: str = ""
    command: str = ""  # the digestgate action's `command` input
    seconds: float = 0.0


@dataclass
class JobRecord:
    """What happened to one job."""

    name: str
    result: str  # success | failure | skipped
    workspace: Path
    summary: Path
    outputs: dict[str, str] = field(default_factory=dict)
    steps: list[StepRecord] = field(default_factory=list)

    def step(self, label: str) -> StepRecord:
        """The record of the step with this id or name."""
        found = [s for s in self.steps if s.label == label]
        assert len(found) == 1, f"{self.name}: no single step {label!r}"
        return found[0]


@dataclass
class Simulation:
    """Everything a workflow run needs from outside the workflow file."""

    workflow: Path
    work: Path
    github: dict[str, str]  # the github context (GITHUB_<KEY> variables are derived)
    platform_env: dict[str, str]  # CI=true, GITHUB_ACTIONS / GITEA_ACTIONS, ...
    secrets: dict[str, str]
    vars: dict[str, str]
    repository: Path  # what actions/checkout puts in the workspace
    dg_bin: Path
    build: Builder
    pull: Puller
    #: Called before the named job starts; returns what it did, for the report.
    before_job: dict[str, Callable[[Run], str]] = field(default_factory=dict)
    #: The inputs context (a workflow_dispatch run).
    inputs: dict[str, str] = field(default_factory=dict)


class Run:
    """One simulated workflow run; ``execute()`` runs every job in order."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.workflow = load(sim.workflow)
        self.artifacts = ArtifactStore(sim.work / "artifacts")
        self.jobs: dict[str, JobRecord] = {}
        self.interventions: dict[str, str] = {}
        self.home = sim.work / "home"
        self.home.mkdir(parents=True, exist_ok=True)

    # -- environment
    def base_env(self) -> dict[str, str]:
        """Process environment every step starts from (no variables of the host's CI)."""
        env = {
            "PATH": f"{self.sim.dg_bin.parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "RUNNER_OS": "Linux",
            **self.sim.platform_env,
        }
        env.update({f"GITHUB_{k.upper()}": v for k, v in self.sim.github.items()})
        return env

    def execute(self) -> Run:
        """Run every job; returns self."""
        for name in job_order(self.workflow):
            hook = self.sim.before_job.get(name)
            if hook is not None:
                self.interventions[name] = hook(self)
            self.jobs[name] = self._job(name, jobs(self.workflow)[name])
        return self

    # -- jobs
    def _job(self, name: str, job: Mapping[str, Any]) -> JobRecord:
        allowed = {"name", "runs-on", "environment", "permissions", "outputs", "steps", "needs"}
        allowed |= {"if", "services", "container", "env", "timeout-minutes", "concurrency"}
        assert set(job) <= allowed, f"{name}: unsupported job keys {sorted(set(job) - allowed)}"
        root = self.sim.work / "jobs" / name
        workspace, temp = root / "workspace", root / "temp"
        workspace.mkdir(parents=True)
        temp.mkdir()
        summary = root / "step-summary.md"
        summary.write_text("", encoding="utf-8")
        record = JobRecord(name, "success", workspace, summary)
        needs = {
            n: {"result": self.jobs[n].result, "outputs": self.jobs[n].outputs}
            for n in needs_of(job)
        }
        context: dict[str, Any] = {
            "github": self.sim.github,
            "needs": needs,
            "vars": self.sim.vars,
            "secrets": self.sim.secrets,
            "inputs": self.sim.inputs,
        }
        # A job's implicit success() looks at every upstream job, not only its `needs`:
        # one skipped job skips everything after it unless an `if:` calls a status
        # function (GitHub, act; actions/runner#2205).
        upstream_failed = any(
            self.jobs[n].result != "success" for n in upstream(self.workflow, name)
        )
        if not condition(job.get("if"), context, failed=upstream_failed):
            record.result = "skipped"
            record.steps.append(StepRecord(name, "(job)", "not-run", "job if: false", "skipped"))
            return record
        env_ctx = {
            **resolve(self.workflow.get("env") or {}, context),
        }
        env_ctx.update(resolve(job.get("env") or {}, {**context, "env": env_ctx}))
        self._services(name, job, {**context, "env": env_ctx}, record)
        step_ctx: dict[str, Any] = {**context, "env": env_ctx, "steps": {}, "job": {}}
        base = {
            **self.base_env(),
            "GITHUB_JOB": name,
            "GITHUB_WORKSPACE": str(workspace),
            "GITHUB_STEP_SUMMARY": str(summary),
            "RUNNER_TEMP": str(temp),
        }
        failed = False
        for index, step in enumerate(steps(job)):
            started = time.monotonic()
            step_record = self._step(name, index, step, step_ctx, base, workspace, failed)
            step_record.seconds = time.monotonic() - started
            record.steps.append(step_record)
            if "id" in step:
                step_ctx["steps"][step["id"]] = {
                    "outputs": step_record.outputs,
                    "outcome": step_record.outcome,
                    "conclusion": step_record.outcome,
                }
            failed = failed or step_record.outcome == "failure"
        record.result = "failure" if failed else "success"
        for key, expr in (job.get("outputs") or {}).items():
            value = substitute(str(expr), step_ctx)
            # Runners skip job outputs that contain a secret (specs 9.1).
            if any(secret and secret in value for secret in self.sim.secrets.values()):
                record.steps.append(
                    StepRecord(name, f"(output {key})", "skipped", "contains a secret", "skipped")
                )
                continue
            record.outputs[key] = value
        return record

    def _services(
        self, name: str, job: Mapping[str, Any], context: Mapping[str, Any], record: JobRecord
    ) -> None:
        container = job.get("container")
        if container is not None:
            image = resolve(
                container if isinstance(container, str) else container["image"], context
            )
            record.steps.append(
                StepRecord(name, "(container)", "skipped", f"job container {image}", "skipped")
            )
        for service, spec in (job.get("services") or {}).items():
            resolved = resolve(spec, context)  # credentials and env must resolve too
            note = self.sim.pull(str(resolved["image"]))
            record.steps.append(
                StepRecord(name, f"(service {service})", "simulated", note, "success")
            )

    # -- steps
    def _step(
        self,
        job: str,
        index: int,
        step: Mapping[str, Any],
        context: dict[str, Any],
        base: Mapping[str, str],
        workspace: Path,
        failed: bool,
    ) -> StepRecord:
        allowed = {"id", "name", "uses", "with", "run", "env", "if", "working-directory", "shell"}
        assert set(step) <= allowed, f"{job}: unsupported step keys {sorted(set(step) - allowed)}"
        uses = str(step.get("uses", ""))
        action = re.sub(r"^https://github\.com/", "", uses).split("@")[0]
        label = str(step.get("id") or step.get("name") or action or f"step {index}")
        if not condition(step.get("if"), context, failed=failed):
            return StepRecord(job, label, "not-run", "if: false", "skipped")
        step_env = resolve(step.get("env") or {}, context)
        env_ctx = {**context["env"], **{k: scalar(v) for k, v in step_env.items()}}
        step_ctx = {**context, "env": env_ctx}
        given = {k: scalar(v) for k, v in resolve(step.get("with") or {}, step_ctx).items()}
        out_dir = workspace.parent / "outputs"
        out_dir.mkdir(exist_ok=True)
        output_file = out_dir / f"{index}.txt"
        env = {**base, **env_ctx, "GITHUB_OUTPUT": str(output_file)}
        try:
            if "run" in step:
                return self._run_step(job, label, step, env, workspace, output_file)
            return self._uses_step(job, label, uses, given, env, workspace, output_file)
        except StepFailed as exc:
            return StepRecord(job, label, "simulated", str(exc), "failure")

    def _run_step(
        self,
        job: str,
        label: str,
        step: Mapping[str, Any],
        env: Mapping[str, str],
        workspace: Path,
        output_file: Path,
    ) -> StepRecord:
        script = str(step["run"])
        commands = script_commands(script)
        foreign = sorted(set(commands) - RUNNABLE_COMMANDS)
        cwd = workspace / str(step.get("working-directory", "."))
        if foreign:
            junit = junit_destination(step, env)
            if junit is None:
                return StepRecord(job, label, "skipped", f"runs {', '.join(foreign)}", "success")
            target = workspace / junit
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(junit_xml(label), encoding="utf-8")
            note = f"test runner ({', '.join(foreign)}): wrote a passing JUnit report to {junit}"
            return StepRecord(job, label, "simulated", note, "success")
        shell = step.get("shell")
        # Without `shell:` a Linux runner uses `bash -e {0}`; `shell: bash` adds pipefail.
        flags = ["-e"] if shell is None else ["--noprofile", "--norc", "-eo", "pipefail"]
        assert shell in (None, "bash"), f"{job}/{label}: unsupported shell {shell!r}"
        output_file.write_text("", encoding="utf-8")
        cwd.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            ["bash", *flags, "-c", script],
            env=dict(env),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        outcome = "success" if proc.returncode == 0 else "failure"
        outputs = parse_output_file(output_file.read_text(encoding="utf-8"))
        note = f"bash: {' '.join(dict.fromkeys(commands))}"
        return StepRecord(job, label, "ran", note, outcome, proc.returncode, outputs, proc.stderr)

    def _uses_step(
        self,
        job: str,
        label: str,
        uses: str,
        given: Mapping[str, str],
        env: Mapping[str, str],
        workspace: Path,
        output_file: Path,
    ) -> StepRecord:
        action = re.sub(r"^https://github\.com/", "", uses).split("@")[0]
        if DIGESTGATE_ACTION_RE.fullmatch(uses):
            proc, outputs = run_action_script(
                given, dg_bin=self.sim.dg_bin, env=env, cwd=workspace, output_file=output_file
            )
            outcome = "success" if proc.returncode == 0 else "failure"
            argv = [line for line in proc.stderr.splitlines() if line.startswith("digestgate ")]
            note = f"action ({given.get('command')}): {argv[0] if argv else '(no command)'}"
            published = action_outputs(outputs)
            return StepRecord(
                job,
                label,
                "action",
                note,
                outcome,
                proc.returncode,
                published,
                proc.stderr,
                given.get("command", ""),
            )
        if action == "actions/checkout":
            shutil.copytree(self.sim.repository, workspace, dirs_exist_ok=True)
            return StepRecord(job, label, "simulated", "checkout: copied the repository", "success")
        if action == "actions/upload-artifact":
            return StepRecord(
                job, label, "simulated", self.artifacts.upload(workspace, given), "success"
            )
        if action == "actions/download-artifact":
            return StepRecord(
                job, label, "simulated", self.artifacts.download(workspace, given), "success"
            )
        if action == "docker/build-push-action":
            assert given.get("push") == "true", f"{job}/{label}: build without push"
            tags = [t.strip() for t in re.split(r"[,\n]", given["tags"]) if t.strip()]
            metadata = self.sim.build(given["context"], tags)
            outputs = {
                "metadata": json.dumps(metadata, indent=2),
                "digest": metadata["containerimage.digest"],
                "imageid": metadata.get("containerimage.config.digest", ""),
            }
            note = f"build-push-action: pushed {metadata['image.name']}@{outputs['digest']}"
            return StepRecord(job, label, "simulated", note, "success", None, outputs)
        if action in ("docker/setup-buildx-action", "docker/login-action"):
            return StepRecord(
                job, label, "skipped", "the test registry needs no set-up or login", "success"
            )
        raise AssertionError(f"{job}/{label}: no simulation for {uses}")

    # -- reading the result
    def report(self) -> str:
        """One line per step: what ran for real, what was simulated or skipped, and why."""
        workflow = self.sim.workflow
        shown = workflow.relative_to(ROOT) if workflow.is_relative_to(ROOT) else workflow
        lines = [f"workflow {shown}"]
        for job in self.jobs.values():
            if job.name in self.interventions:
                lines.append(f"before job {job.name}: {self.interventions[job.name]}")
            lines.append(f"job {job.name}: {job.result}")
            for s in job.steps:
                code = "" if s.code is None else f" exit {s.code}"
                took = f"{s.seconds:5.2f}s" if s.seconds else " " * 6
                lines.append(f"  {s.how:9} {s.outcome:7}{code:7} {took} {s.label}: {s.note}")
                if s.outcome == "failure":
                    lines += [f"      | {line}" for line in s.stderr.splitlines()[-8:]]
        return "\n".join(lines)

    def records(self) -> Iterator[StepRecord]:
        """Every step record of every job, in run order."""
        for job in self.jobs.values():
            yield from job.steps
