"""The CLI entry point: version, help, exit codes, lazy imports."""

from __future__ import annotations

import subprocess
import sys

from digestgate import __version__
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
        "heavy = [m for m in ('httpx', 'yaml', 'pydantic', 'securesystemslib', 'cryptography') "
        "if m in sys.modules]; print('HEAVY=' + ','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "HEAVY="
