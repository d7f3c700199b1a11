"""The CLI entry point: version, help, exit codes, lazy imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from digestgate._version import __version__
from tests.conftest import run_cli


def test_version() -> None:
    result = run_cli("--version")
    assert result.code == 0
    assert __version__ in result.stdout


def test_help_lists_commands() -> None:
    result = run_cli("--help")
    assert result.code == 0
    for name in ("resolve", "capture", "attest", "gate", "promote", "verify", "drift", "lint"):
        assert name in result.stdout


def test_unknown_command_is_usage_error() -> None:
    assert run_cli("frobnicate").code == 2


def test_version_and_help_import_nothing_heavy() -> None:
    code = (
        "import sys; from digestgate.cli.main import run; "
        "[run([a]) for a in ('--version', '--help')]; "
        "heavy = [m for m in ('httpx', 'yaml', 'securesystemslib', 'cryptography', 'defusedxml') "
        "if m in sys.modules]; print('HEAVY=' + ','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "HEAVY="


def test_options_come_from_digestgate_variables_named_after_the_flag(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    env = {
        "DIGESTGATE_GATE_RELEASE": str(tmp_path / "release.json"),
        "DIGESTGATE_GATE_POLICY": missing,
        "DIGESTGATE_GATE_EVIDENCE": f"dir:{tmp_path}",
    }
    result = run_cli("gate", env=env)
    assert result.code == 2
    assert "Missing option" not in result.stderr
    assert "nope.yaml" in result.stderr  # got as far as reading the policy named by the variable
    nested = run_cli(
        "attest",
        "test-result",
        "--release",
        str(tmp_path / "release.json"),
        "--key",
        "k",
        "--evidence",
        "dir:x",
        env={"DIGESTGATE_ATTEST_TEST_RESULT_LANE": "e2e"},
    )
    assert "Missing option '--lane'" not in nested.stderr
