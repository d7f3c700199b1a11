"""Shared test helpers: an in-process CLI runner and a clean, CI-free environment."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import pytest
from click.testing import CliRunner

from digestgate.cli.main import run

pytest_plugins = ["tests.fixtures.registry"]

#: Variables that make digestgate believe it runs inside CI; tests set them explicitly.
_CI_PREFIXES = ("GITHUB_", "GITEA_", "FORGEJO_", "RUNNER_", "DIGESTGATE_")
_CI_NAMES = ("CI", "ACTIONS_RUNTIME_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_URL", "NO_COLOR")
_KEEP = ("DIGESTGATE_REQUIRE_REGISTRY",)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name in _KEEP:
            continue
        if name in _CI_NAMES or name.startswith(_CI_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    yield


@dataclass(frozen=True)
class CliResult:
    """What one in-process CLI run produced."""

    code: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: Mapping[str, str | None] | None = None) -> CliResult:
    """Run ``digestgate ARGS`` in-process through the real error boundary."""
    runner = CliRunner()
    with runner.isolation(env=dict(env or {})) as (out, err, _):
        code = run(list(args))
    return CliResult(
        code,
        out.getvalue().decode("utf-8", "replace"),
        err.getvalue().decode("utf-8", "replace"),
    )
