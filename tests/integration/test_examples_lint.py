"""The example pipelines and digestgate's own CI workflow pass `digestgate lint --strict`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "workflows",
    [
        "examples/github/.github/workflows",
        "examples/gitea/.gitea/workflows",
        "examples/gitea/release-repository/.gitea/workflows",
        ".github/workflows",
    ],
)
def test_workflows_lint_clean_in_strict_mode(
    workflows: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    result = run_cli("lint", "--strict", "--format", "json", workflows)
    assert result.code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["findings"] == []
