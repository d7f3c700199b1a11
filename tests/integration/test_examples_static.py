"""Static checks of the shipped workflows and the composite action.

What a user copying ``examples/`` relies on: zizmor finds nothing (or only suppressions
with a written reason), every action is pinned by a commit SHA or says why not, every
digestgate call uses the command-line contract of docs (design section 3), and after the
build no job runs an image by tag or builds one. The composite action is executed with a
stand-in ``digestgate`` to see the exact argument vectors the example steps produce.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.actions_sim import (
    ACTION,
    EXAMPLES,
    GITEA_PROMOTE,
    ROOT,
    action_run_step,
    jobs,
    load,
    needs_of,
    run_action_script,
    steps,
)

WORKFLOWS = [
    *EXAMPLES.values(),
    GITEA_PROMOTE,
    *sorted((ROOT / ".github/workflows").glob("*.yml")),
]
PIN_DOC = ROOT / "docs/pipeline.md"

SHA_RE = re.compile(r"[0-9a-f]{40}")
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
USES_LINE_RE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>[^\s#]+)\s*(?:#\s*(?P<comment>.*))?$")
IGNORE_RE = re.compile(r"#\s*zizmor:\s*ignore\[[a-z0-9-]+(?:,\s*[a-z0-9-]+)*\](?P<reason>.*)$")
DIGESTGATE_ACTION = "digestgate/digestgate@"

# The command-line contract (design section 3): value-taking and boolean flags, required
# flags and the number of positional arguments of every subcommand.
GLOBAL_FLAGS = {"--version", "-v", "-vv", "--verbose", "-q", "--quiet", "--no-color"}


@dataclass(frozen=True)
class Spec:
    """Flags and positionals one subcommand accepts."""

    values: frozenset[str]
    switches: frozenset[str] = frozenset()
    required: frozenset[str] = frozenset()
    positionals: tuple[int, int] = (0, 0)


def spec(
    values: set[str],
    switches: set[str] | None = None,
    required: set[str] | None = None,
    positionals: tuple[int, int] = (0, 0),
) -> Spec:
    return Spec(
        frozenset(values), frozenset(switches or ()), frozenset(required or ()), positionals
    )


CONTRACT: dict[tuple[str, ...], Spec] = {
    ("resolve",): spec(set(), positionals=(1, 1)),
    ("keygen",): spec({"--out"}, required={"--out"}),
    ("capture",): spec(
        {"--release", "--metadata-file", "--source-repo", "--revision", "--ref", "--run-id"},
        {"--allow-tag"},
        {"--release"},
        (1, 2),
    ),
    ("attest", "provenance"): spec(
        {"--release", "--key", "--evidence"}, required={"--release", "--key", "--evidence"}
    ),
    ("attest", "test-result"): spec(
        {
            "--release",
            "--lane",
            "--artifact",
            "--junit",
            "--result",
            "--url",
            "--platform",
            "--key",
            "--evidence",
        },
        required={"--release", "--lane", "--key", "--evidence"},
    ),
    ("gate",): spec(
        {"--release", "--policy", "--evidence", "--report", "--vsa-key"},
        {"--offline"},
        {"--release", "--policy", "--evidence"},
    ),
    ("promote",): spec(
        {"--release", "--policy", "--evidence", "--to", "--vsa-key", "--tag", "--out"},
        {"--dry-run"},
        {"--release", "--policy", "--evidence", "--to", "--vsa-key"},
    ),
    ("verify",): spec(
        {"--policy", "--evidence"}, required={"--policy", "--evidence"}, positionals=(1, 1)
    ),
    ("drift",): spec(set(), positionals=(1, 1)),
    ("lint",): spec({"--format"}, {"--strict"}, positionals=(0, 99)),
}


def contract_problems(argv: list[str]) -> list[str]:
    """What in ``argv`` (without the program name) falls outside the contract."""
    args = list(argv)
    while args and args[0] in GLOBAL_FLAGS:
        args.pop(0)
    key = tuple(args[:2]) if args[:1] == ["attest"] else tuple(args[:1])
    rule = CONTRACT.get(key)
    if rule is None:
        return [f"unknown subcommand {' '.join(key) or '(none)'}"]
    problems: list[str] = []
    seen: set[str] = set()
    positionals = 0
    rest = args[len(key) :]
    i = 0
    while i < len(rest):
        token = rest[i]
        if token.startswith("-"):
            if token in rule.values:
                if i + 1 >= len(rest):
                    problems.append(f"{token} needs a value")
                i += 1
            elif token not in rule.switches and token not in GLOBAL_FLAGS:
                problems.append(f"{' '.join(key)}: flag {token} is not in the contract")
            seen.add(token)
        else:
            positionals += 1
        i += 1
    low, high = rule.positionals
    if not low <= positionals <= high:
        problems.append(f"{' '.join(key)}: {positionals} positional arguments")
    problems += [f"{' '.join(key)}: missing {flag}" for flag in sorted(rule.required - seen)]
    if key == ("attest", "test-result") and not seen & {"--junit", "--result"}:
        problems.append("attest test-result: needs --junit or --result")
    return problems


def after_build(workflow: Mapping[Any, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Jobs that (transitively) need the ``build`` job."""
    all_jobs = jobs(workflow)

    def downstream(name: str) -> bool:
        return any(n == "build" or downstream(n) for n in needs_of(all_jobs[name]))

    for name, job in all_jobs.items():
        if downstream(name):
            yield name, job


# --- zizmor ---------------------------------------------------------------------------


def zizmor_binary() -> str:
    candidates = [Path(sys.executable).parent / "zizmor", shutil.which("zizmor")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return str(candidate)
    reason = "zizmor is not installed (it comes with requirements-dev.txt)"
    if os.environ.get("DIGESTGATE_REQUIRE_REGISTRY") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def test_zizmor_reports_nothing_on_workflows_and_action() -> None:
    inputs = [str(p) for p in (ACTION, *WORKFLOWS)]
    flags = ["--offline", "--strict-collection", "--no-progress", "--format", "json"]
    proc = subprocess.run(
        [zizmor_binary(), *flags, *inputs],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    findings = json.loads(proc.stdout or "[]")
    summary = [f"{f.get('ident')}: {f.get('desc')}" for f in findings]
    assert proc.returncode == 0 and not findings, summary or proc.stderr[-2000:]


def test_every_zizmor_suppression_says_why() -> None:
    for path in (ACTION, *WORKFLOWS):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = IGNORE_RE.search(line)
            if match:
                assert len(match.group("reason").strip()) >= 10, f"{path}:{number}: no reason"


# --- pins -----------------------------------------------------------------------------


def uses_lines(path: Path) -> list[tuple[int, str, str]]:
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = USES_LINE_RE.match(line)
        if match:
            found.append((number, match.group("ref"), match.group("comment") or ""))
    return found


def all_uses(data: Any) -> Iterator[str]:
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "uses" and isinstance(value, str):
                yield value
            else:
                yield from all_uses(value)
    elif isinstance(data, list):
        for item in data:
            yield from all_uses(item)


@pytest.mark.parametrize("path", [ACTION, *WORKFLOWS], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_action_is_pinned_by_sha_or_says_why_not(path: Path) -> None:
    lines = uses_lines(path)
    assert len(lines) == len(list(all_uses(load(path)))), "a `uses:` the line scan missed"
    for number, ref, comment in lines:
        where = f"{path.relative_to(ROOT)}:{number} {ref}"
        if ref.startswith("./"):
            continue
        if ref.startswith("docker://"):
            assert "@" in ref and DIGEST_RE.fullmatch(ref.rsplit("@", 1)[1]), where
            continue
        _, _, version = ref.rpartition("@")
        if SHA_RE.fullmatch(version):
            assert re.search(r"\bv\d+(\.\d+)*\b", comment), f"{where}: no version comment"
        else:
            assert "could not be confirmed" in comment, f"{where}: not pinned by commit SHA"


def test_pin_table_lists_every_pinned_commit() -> None:
    doc = PIN_DOC.read_text(encoding="utf-8")
    for path in (ACTION, *WORKFLOWS):
        for _, ref, _ in uses_lines(path):
            version = ref.rpartition("@")[2]
            if SHA_RE.fullmatch(version):
                assert version in doc, f"{ref} is missing from the pin table in {PIN_DOC.name}"


# --- the pipeline's shape ---------------------------------------------------------------


@pytest.mark.parametrize("flavour", sorted(EXAMPLES))
def test_release_pipeline_shape(flavour: str) -> None:
    workflow = load(EXAMPLES[flavour])
    triggers = workflow.get("on", workflow.get(True))
    assert isinstance(triggers, dict) and set(triggers) <= {"push", "workflow_dispatch"}
    assert workflow["permissions"] == {}
    all_jobs = jobs(workflow)
    # Gitea/Forgejo promote from the release repository (GITEA_PROMOTE): see the custody test.
    promotes = {"promote"} if flavour == "github" else set()
    assert set(all_jobs) == {"build", "fast-check", "integration", "e2e", "gate", *promotes}
    lanes = {"fast-check", "integration", "e2e"}
    assert all(needs_of(all_jobs[lane]) == ["build"] for lane in lanes)
    assert set(needs_of(all_jobs["gate"])) == {"build", *lanes}
    gate_if = " ".join(str(all_jobs["gate"]["if"]).split())
    for name in ("build", *lanes):
        assert f"needs.{name}.result == 'success'" in gate_if
    if promotes:
        assert needs_of(all_jobs["promote"]) == ["gate"]
    for name, job in all_jobs.items():
        assert "permissions" in job, f"{name}: no job-level permissions"
        if flavour == "gitea":
            assert "environment" not in job, f"{name}: Gitea ignores environment:"
        for step in steps(job):
            uses = str(step.get("uses", ""))
            if "actions/checkout@" in uses:
                assert step["with"]["persist-credentials"] is False, name
            if flavour == "gitea" and uses and not uses.startswith("./"):
                assert uses.startswith("https://"), f"{name}: {uses} is not an absolute URL"


def _secrets_read(job: Mapping[str, Any]) -> set[str]:
    return set(re.findall(r"secrets\.([A-Z0-9_]+)", json.dumps(job)))


def test_only_the_promote_job_can_read_the_gate_key() -> None:
    """Key custody (design section 8): one key per role, and the gate key, which deployments
    trust, only where promotion runs: the reviewer-protected "production" environment on
    GitHub; the separate release repository on Gitea and Forgejo."""
    github = jobs(load(EXAMPLES["github"]))
    environments = {name: job.get("environment") for name, job in github.items()}
    assert environments == {
        "build": "build",
        "fast-check": "tests",
        "integration": "tests",
        "e2e": "tests",
        "gate": None,
        "promote": "production",
    }
    keys = {name: sorted(_secrets_read(job) & ROLE_KEYS) for name, job in github.items()}
    assert keys == {
        "build": ["DIGESTGATE_BUILD_KEY"],
        "fast-check": ["DIGESTGATE_TESTS_KEY"],
        "integration": ["DIGESTGATE_TESTS_KEY"],
        "e2e": ["DIGESTGATE_TESTS_KEY"],
        "gate": [],
        "promote": ["DIGESTGATE_GATE_KEY"],
    }
    assert github["promote"]["concurrency"]["group"] == "promote-production"
    gitea = jobs(load(EXAMPLES["gitea"]))
    assert not any("DIGESTGATE_GATE_KEY" in _secrets_read(job) for job in gitea.values())
    release = jobs(load(GITEA_PROMOTE))
    assert set(release) == {"promote"}
    assert _secrets_read(release["promote"]) & ROLE_KEYS == {"DIGESTGATE_GATE_KEY"}
    assert release["promote"]["runs-on"] == "digestgate-release"
    assert release["promote"]["concurrency"]["group"] == "promote-production"


ROLE_KEYS = {"DIGESTGATE_BUILD_KEY", "DIGESTGATE_TESTS_KEY", "DIGESTGATE_GATE_KEY"}


@pytest.mark.parametrize("flavour", sorted(EXAMPLES))
def test_after_build_images_are_run_by_digest_and_never_built(flavour: str) -> None:
    workflow = load(EXAMPLES[flavour])
    digest_ref = re.compile(r".+@(sha256:[0-9a-f]{64}|\$\{\{[^}]+\}\})")
    checked = 0
    for name, job in after_build(workflow):
        container = job.get("container")
        images = [container if isinstance(container, str) else (container or {}).get("image")]
        images += [svc.get("image") for svc in (job.get("services") or {}).values()]
        for image in filter(None, images):
            checked += 1
            assert digest_ref.fullmatch(image), f"{name}: image {image!r} is not by digest"
        for service, svc in (job.get("services") or {}).items():
            assert f"needs.build.outputs.{service}-digest" in svc["image"], (name, service)
        for step in steps(job):
            assert "build-push-action" not in str(step.get("uses", "")), f"{name} builds"
            script = str(step.get("run", ""))
            assert not re.search(r"\b(docker|buildah|podman)\s+(build|push)\b", script), name
    assert checked >= 5


# --- digestgate invocations -------------------------------------------------------------


def digestgate_calls(script: str) -> Iterator[list[str]]:
    """Argument vectors of ``digestgate`` commands in a shell script (one line each)."""
    for line in script.replace("\\\n", " ").splitlines():
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:
            continue
        command_start = True
        for i, token in enumerate(tokens):
            if command_start and token == "digestgate":
                end = next(
                    (j for j in range(i + 1, len(tokens)) if tokens[j] in {"&&", "||", "|", ";"}),
                    len(tokens),
                )
                yield tokens[i + 1 : end]
            command_start = token in {"&&", "||", "|", ";", "then", "do", "exec"}


def test_contract_checker_catches_mistakes() -> None:
    assert (
        contract_problems(
            ["gate", "--release", "r.json", "--policy", "p", "--evidence", "attached"]
        )
        == []
    )
    assert contract_problems(["gate", "--release", "r", "--policy", "p"]) == [
        "gate: missing --evidence"
    ]
    assert contract_problems(["promote", "--skip-gate"])[0].endswith("not in the contract")
    assert contract_problems(["rebuild"]) == ["unknown subcommand rebuild"]
    assert list(digestgate_calls("set -e && digestgate drift promoted.json # check")) == [
        ["drift", "promoted.json"]
    ]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: str(p.relative_to(ROOT)))
def test_run_scripts_call_digestgate_by_the_contract(path: Path) -> None:
    for name, job in jobs(load(path)).items():
        for step in steps(job):
            for argv in digestgate_calls(str(step.get("run", ""))):
                assert contract_problems(argv) == [], f"{name}: digestgate {shlex.join(argv)}"


FAKE_DIGESTGATE = """#!/usr/bin/env bash
printf '%s\\0' "$@" >"$FAKE_ARGV"
if [ "$1" = capture ]; then
  d="sha256:$(printf '0%.0s' {1..64})"
  printf '%s-digest=%s\\n%s-image=%s\\n' "$2" "$d" "$2" \\
    "registry.example.org/app/$2@$d" >>"$GITHUB_OUTPUT"
  echo "$2 registry.example.org/app/$2@$d"
fi
exit "${FAKE_EXIT:-0}"
"""


def run_action(
    tmp_path: Path, given: Mapping[str, str], fake_exit: int = 0
) -> tuple[int, list[str], dict[str, str]]:
    """Run the action's script with ``given`` inputs; return (exit code, argv, outputs)."""
    fake = tmp_path / "digestgate"
    fake.write_text(FAKE_DIGESTGATE, encoding="utf-8")
    fake.chmod(0o755)
    argv_file = tmp_path / "argv"
    argv_file.unlink(missing_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "FAKE_ARGV": str(argv_file),
        "FAKE_EXIT": str(fake_exit),
    }
    # Workflow expressions are not evaluated here: only the argument vector matters.
    inputs = {k: re.sub(r"\$\{\{[^}]*\}\}", "EXPR", v) for k, v in given.items()}
    proc, outputs = run_action_script(
        inputs, dg_bin=fake, env=env, cwd=tmp_path, output_file=tmp_path / "outputs", timeout=30
    )
    argv = argv_file.read_text(encoding="utf-8").split("\0")[:-1] if argv_file.exists() else []
    return proc.returncode, argv, outputs


def test_action_maps_every_input() -> None:
    _, mapping = action_run_step()
    assert set(load(ACTION)["inputs"]) - set(mapping) == {"python"}
    for step in load(ACTION)["runs"]["steps"]:
        assert step["shell"] == "bash"
        assert "${{" not in step["run"], "expression expanded inside a run script"


@pytest.mark.parametrize("flavour", sorted(EXAMPLES))
def test_example_action_steps_produce_contract_arguments(flavour: str, tmp_path: Path) -> None:
    commands: list[str] = []
    files = [EXAMPLES[flavour], *([GITEA_PROMOTE] if flavour == "gitea" else [])]
    all_jobs = [item for path in files for item in jobs(load(path)).items()]
    for name, job in all_jobs:
        for step in steps(job):
            if DIGESTGATE_ACTION not in str(step.get("uses", "")):
                continue
            given = {k: str(v) for k, v in (step.get("with") or {}).items()}
            code, argv, outputs = run_action(tmp_path, given)
            where = f"{name}/{step.get('id') or step.get('name')}"
            assert code == 0, where
            assert contract_problems(argv) == [], f"{where}: digestgate {shlex.join(argv)}"
            commands.append(given["command"])
            for keyref in (given.get("key"), given.get("vsa-key")):
                if keyref is not None:  # keys come from a role secret via the step's env
                    variable = keyref.removeprefix("env:")
                    assert keyref.startswith("env:") and variable in {
                        "DIGESTGATE_BUILD_KEY",
                        "DIGESTGATE_TESTS_KEY",
                        "DIGESTGATE_GATE_KEY",
                    }, where
                    assert step["env"][variable] == f"${{{{ secrets.{variable} }}}}", where
            if given["command"] == "capture":
                assert DIGEST_RE.fullmatch(outputs["digest"]), where
                assert outputs["image"] == f"{outputs['repository']}@{outputs['digest']}"
    assert sorted(set(commands)) == [
        "attest-provenance",
        "attest-test-result",
        "capture",
        "gate",
        "promote",
    ]


def test_action_reports_verdicts_and_refuses_pasted_keys(tmp_path: Path) -> None:
    gate = {"command": "gate", "policy": "p.yaml", "evidence": "dir:evidence"}
    code, _, outputs = run_action(tmp_path, gate, fake_exit=1)
    assert (code, outputs["verdict"]) == (1, "FAILED")
    code, _, outputs = run_action(tmp_path, gate, fake_exit=3)
    assert (code, outputs["verdict"]) == (3, "ERROR")
    pasted = {**gate, "vsa-key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"}
    code, argv, _ = run_action(tmp_path, pasted)
    assert (code, argv) == (2, [])
    code, argv, _ = run_action(tmp_path, {"command": "rebuild"})
    assert (code, argv) == (2, [])
    promote = {
        "command": "promote",
        "policy": "p.yaml",
        "evidence": "dir:a\n  attached  \n",
        "to": "registry.example.org/prod",
        "vsa-key": "env:K",
        "tags": "v1.2.3 latest",
        "dry-run": "true",
    }
    code, argv, outputs = run_action(tmp_path, promote)
    assert code == 0 and outputs["promoted"] == "promoted.json"
    assert argv == [
        "promote", "--release", "release.json", "--policy", "p.yaml",
        "--evidence", "dir:a", "--evidence", "attached",
        "--to", "registry.example.org/prod", "--vsa-key", "env:K",
        "--tag", "v1.2.3", "--tag", "latest", "--out", "promoted.json", "--dry-run",
    ]  # fmt: skip
