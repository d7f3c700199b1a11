"""Every subcommand and every file argument, given bad input: exit 1, 2 or 3 with a one-line
message and a hint, never 4 (a traceback), never a hang, and nothing written.

Flags, paths and references here; hostile file contents are in test_hostile_inputs.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CliResult, run_cli
from tests.integration.test_gate_adversarial import World
from tests.unit.gatekit import REPO

DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path)
    (tmp_path / "afile").write_text("not a directory\n")
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "adir").mkdir()
    os.mkfifo(tmp_path / "fifo")
    return w


def good(world: World, command: str) -> dict[str, str]:
    """Valid values for every argument of the commands below."""
    return {
        "release": str(world.release),
        "policy": str(world.policy),
        "evidence": f"dir:{world.evidence}",
        "key": str(world.keys["build"]),
        "tests-key": str(world.keys["tests"]),
        "vsa-key": str(world.keys["gate"]),
        "image": world.image("backend"),
        "to": f"oci:{world.root / 'production'}",
        "out": str(world.root / "promoted.json"),
        "report": str(world.root / "report.json"),
        "junit": str(world.root / "junit.xml"),
        "metadata": str(world.root / "metadata.json"),
    }


def commands(world: World, v: dict[str, str]) -> dict[str, list[str]]:
    return {
        "resolve": ["resolve", v["image"]],
        "keygen": ["keygen", "--out", str(world.root / "new" / "key")],
        "capture": ["capture", "backend", v["image"], "--release", str(world.root / "r2.json"),
                    "--source-repo", "https://git.example.org/org/app", "--revision", "a" * 40,
                    "--ref", "refs/heads/main", "--run-id", "1"],
        "provenance": ["attest", "provenance", "--release", v["release"], "--key", v["key"],
                       "--evidence", v["evidence"], "--source-repo", REPO,
                       "--ref", "refs/heads/main", "--revision", "a1" * 20, "--run-id", "4242",
                       "--event", "push", "--builder-id", "b"],
        "test-result": ["attest", "test-result", "--release", v["release"], "--lane", "e2e",
                        "--junit", v["junit"], "--key", v["tests-key"], "--evidence",
                        v["evidence"]],
        "gate": ["gate", "--release", v["release"], "--policy", v["policy"], "--evidence",
                 v["evidence"], "--report", v["report"], "--offline"],
        "promote": ["promote", "--release", v["release"], "--policy", v["policy"],
                    "--evidence", v["evidence"], "--to", v["to"], "--vsa-key", v["vsa-key"],
                    "--out", v["out"], "--report", v["report"]],
        "verify": ["verify", v["image"], "--policy", v["policy"], "--evidence", v["evidence"]],
        "drift": ["drift", v["out"]],
        "lint": ["lint", str(world.root / "wf")],
        "policy": ["policy", "digest", "--policy", v["policy"]],
    }  # fmt: skip


def replaced(argv: list[str], flag: str, value: str) -> list[str]:
    """``argv`` with the value after ``flag`` (or the positional ``flag``) replaced."""
    out = list(argv)
    if out[0] == "capture" and flag == "--metadata-file":
        del out[2]  # SOURCE and --metadata-file are alternatives
    if flag.startswith("-"):
        if flag in out:
            out[out.index(flag) + 1] = value
        else:
            out += [flag, value]
    else:
        out[int(flag)] = value
    return out


# (command, flag or positional index, bad value) -- {root} is the world's directory.
CASES: list[tuple[str, str, str]] = [
    ("resolve", "1", ""),
    ("resolve", "1", "Registry.Example/UPPER@" + DIGEST),
    ("resolve", "1", "127.0.0.1:0/app@" + DIGEST),
    ("resolve", "1", "127.0.0.1:99999/app:tag"),
    ("resolve", "1", "oci:"),
    ("resolve", "1", "oci:{root}/nothing@" + DIGEST),
    ("resolve", "1", "oci:{root}/afile@" + DIGEST),
    ("resolve", "1", "app@sha256:abc"),
    ("keygen", "--out", ""),
    ("keygen", "--out", "{root}/adir/"),
    ("keygen", "--out", "{root}/afile/key"),
    ("keygen", "--out", "/proc/digestgate-key"),
    ("capture", "1", "Backend"),
    ("capture", "1", "../x"),
    ("capture", "2", "registry.example.org/app:latest"),
    ("capture", "--release", "{root}/adir"),
    ("capture", "--release", "{root}/afile"),
    ("capture", "--metadata-file", "{root}/missing.json"),
    ("capture", "--metadata-file", "{root}/adir"),
    ("capture", "--metadata-file", "{root}/empty"),
    ("provenance", "--release", "{root}/missing.json"),
    ("provenance", "--release", "{root}/adir"),
    ("provenance", "--release", "{root}/empty"),
    ("provenance", "--key", "{root}/missing.key"),
    ("provenance", "--key", "{root}/adir"),
    ("provenance", "--key", "{root}/empty"),
    ("provenance", "--key", "env:DIGESTGATE_UNSET_VARIABLE"),
    ("provenance", "--evidence", "s3://bucket"),
    ("provenance", "--evidence", "dir:"),
    ("test-result", "--junit", "{root}/missing.xml"),
    ("test-result", "--junit", "{root}/adir"),
    ("test-result", "--junit", "{root}/empty"),
    ("test-result", "--lane", "E2E"),
    ("test-result", "--lane", ""),
    ("gate", "--release", "{root}/missing.json"),
    ("gate", "--release", "{root}/adir"),
    ("gate", "--policy", "{root}/missing.yaml"),
    ("gate", "--policy", "{root}/adir"),
    ("gate", "--policy", "{root}/empty"),
    ("gate", "--evidence", "{root}/evidence"),
    ("gate", "--evidence", "dir:{root}/missing"),
    ("gate", "--evidence", "dir:{root}/afile"),
    ("gate", "--report", "{root}/missing/report.json"),
    ("gate", "--report", "{root}/adir"),
    ("gate", "--vsa-key", "{root}/missing.key"),
    ("gate", "--width", "0"),
    ("promote", "--to", "oci:{root}/afile"),
    ("promote", "--to", "registry.example.org/prod:v1"),
    ("promote", "--to", ""),
    ("promote", "--out", "{root}/missing/promoted.json"),
    ("promote", "--out", "{root}/adir"),
    ("promote", "--out", "{root}/release.json"),
    ("promote", "--report", "{root}/missing/report.json"),
    ("promote", "--tag", "bad tag"),
    ("promote", "--tag", "sha256-" + "a" * 64),
    ("promote", "--concurrency", "0"),
    ("promote", "--concurrency", "many"),
    ("promote", "--vsa-key", "{root}/empty"),
    ("verify", "1", "registry.example.org/app:latest"),
    ("verify", "1", "not a reference"),
    ("verify", "--policy-digest", "sha256:nope"),
    ("verify", "--deny", "latest"),
    ("verify", "--policy", "{root}/adir"),
    ("drift", "1", "{root}/missing.json"),
    ("drift", "1", "{root}/adir"),
    ("drift", "1", "{root}/empty"),
    ("drift", "1", "{root}/release.json"),
    ("lint", "1", "{root}/missing"),
    ("lint", "1", "{root}/adir"),
    ("lint", "1", "{root}/empty"),
    ("policy", "--policy", "{root}/missing.yaml"),
    ("policy", "--policy", "{root}/adir"),
    ("policy", "--policy", "{root}/release.json"),
]


def snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if "evidence" not in p.parts}


def check(result: CliResult, case: object) -> None:
    assert result.code in (1, 2, 3), (case, result.code, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("digestgate: error")]
    if result.code != 1:
        assert len(errors) == 1, (case, result.stderr)
        assert "Traceback" not in result.stderr, case


def prepare(world: World) -> None:
    """The files the baseline commands read."""
    (world.root / "junit.xml").write_text('<testsuite><testcase name="t"/></testsuite>')
    (world.root / "wf").mkdir(exist_ok=True)
    (world.root / "wf" / "a.yml").write_text("on: push\njobs: {}\n")


BASELINE_CODES: dict[str, int] = {}  # run in this order, every baseline passes


def test_every_baseline_command_runs_so_each_bad_case_is_the_only_fault(world: World) -> None:
    prepare(world)
    argvs = commands(world, good(world, "all"))
    for command in ("resolve", "keygen", "capture", "provenance", "test-result", "gate",
                    "promote", "verify", "drift", "lint", "policy"):  # fmt: skip
        result = run_cli(*argvs[command])
        assert result.code == BASELINE_CODES.get(command, 0), (command, result.stderr)


@pytest.mark.parametrize(("command", "flag", "value"), CASES)
def test_bad_flag_or_path_is_refused_cleanly(
    world: World, command: str, flag: str, value: str
) -> None:
    prepare(world)
    argv = commands(world, good(world, command))[command]
    argv = replaced(argv, flag, value.replace("{root}", str(world.root)))
    before = snapshot(world.root)
    result = run_cli(*argv)
    check(result, (command, flag, value))
    if command not in ("gate",):  # gate writes nothing unless it decides
        assert snapshot(world.root) <= before | {"new"}, (command, flag, value)


FIFO_CASES: list[tuple[str, str]] = [
    ("capture", "--metadata-file"),
    ("provenance", "--release"),
    ("provenance", "--key"),
    ("test-result", "--junit"),
    ("gate", "--policy"),
    ("gate", "--release"),
    ("promote", "--vsa-key"),
    ("drift", "1"),
    ("policy", "--policy"),
    ("lint", "1"),
    ("lint", "--config"),
    ("resolve", "--ca-bundle"),
]


@pytest.mark.parametrize(("command", "flag"), FIFO_CASES)
def test_a_fifo_as_a_file_argument_never_hangs(world: World, command: str, flag: str) -> None:
    prepare(world)
    argv = replaced(commands(world, good(world, command))[command], flag, str(world.root / "fifo"))
    proc = subprocess.run(  # a separate process: a hang is a timeout, not a stuck suite
        [sys.executable, "-m", "digestgate", *argv],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    check(CliResult(proc.returncode, proc.stdout, proc.stderr), (command, flag))
    said = proc.stderr + proc.stdout  # lint reports an unreadable workflow as a DG100 finding
    assert "FIFO" in said or "not a regular file" in said, said
