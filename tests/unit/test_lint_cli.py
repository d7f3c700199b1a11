"""``digestgate lint`` end to end: formats, exit codes, --strict, --config, --root."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]
import pytest

from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "lint_corpus"
APP = CORPUS / "app" / ".github" / "workflows"
SCHEMA = ROOT / "tests" / "data" / "sarif-schema-2.1.0.json"


def test_text_format_and_exit_one() -> None:
    result = run_cli("lint", str(APP / "02-test-then-build.yml"))
    assert result.code == 1
    first, hint = result.stdout.splitlines()[:2]
    assert first.endswith(
        "02-test-then-build.yml:15:14: DG101 [error] image build 'docker buildx build' in job "
        "'build' runs after validation job(s) 'test'"
    )
    assert hint.startswith("    hint: ")


def test_clean_workflow_exits_zero() -> None:
    result = run_cli("lint", str(APP / "01-clean-build-once.yml"))
    assert (result.code, result.stdout) == (0, "")


def test_strict_turns_opaque_warnings_into_errors() -> None:
    path = str(APP / "25-opaque-remote.yml")
    normal = run_cli("lint", "--format", "json", path)
    strict = run_cli("lint", "--format", "json", "--strict", path)
    assert normal.code == 0 and strict.code == 1
    assert {f["severity"] for f in json.loads(normal.stdout)["findings"]} == {"warning"}
    assert {f["severity"] for f in json.loads(strict.stdout)["findings"]} == {"error"}


def test_json_is_sorted_and_versioned() -> None:
    result = run_cli("lint", "--format", "json", str(APP))
    data = json.loads(result.stdout)
    assert data["schemaVersion"] == 1
    keys = [(f["file"], f["line"], f["column"], f["id"]) for f in data["findings"]]
    assert keys == sorted(keys)
    assert {"id", "name", "severity", "file", "line", "column", "message", "hint"} <= set(
        data["findings"][0]
    )


def test_sarif_is_valid_against_the_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CORPUS / "app")
    result = run_cli("lint", "--format", "sarif")
    assert result.code == 1
    log = json.loads(result.stdout)
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.validate(log, schema)
    run = log["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert {"DG100", "DG101", "DG106", "DG199"} <= set(rule_ids)
    assert all("defaultConfiguration" in r for r in run["tool"]["driver"]["rules"])
    first = run["results"][0]
    location = first["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"].startswith(".github/workflows/")
    assert location["region"]["startLine"] >= 1
    assert rule_ids[first["ruleIndex"]] == first["ruleId"]


def test_github_annotations_are_escaped(tmp_path: Path) -> None:
    flow = tmp_path / ".github" / "workflows"
    flow.mkdir(parents=True)
    (flow / "a,b.yml").write_text("on: push\njobs: 5\n")
    result = run_cli("lint", "--format", "github", "--root", str(tmp_path))
    assert result.code == 1
    assert result.stdout.strip().startswith(
        "::error file=.github/workflows/a%2Cb.yml,line=2,col=7,title=DG100::"
    )


def test_default_paths_cover_gitea_and_forgejo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CORPUS / "gitea")
    assert "DG101" in run_cli("lint").stdout
    monkeypatch.chdir(CORPUS / "forgejo")
    assert "DG105" in run_cli("lint").stdout


def test_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_cli("lint", str(tmp_path / "missing.yml")).code == 2
    assert run_cli("lint", "--format", "xml", str(APP)).code == 2
    monkeypatch.chdir(tmp_path)
    assert run_cli("lint").code == 2  # no workflow directory
    bad = tmp_path / "lint.yaml"
    bad.write_text("lanes: [a]\nunknown: 1\n")
    assert run_cli("lint", "--config", str(bad), str(APP)).code == 2
    bad.write_text("build-commands: ['(']\n")
    assert run_cli("lint", "--config", str(bad), str(APP)).code == 2


def test_config_option_adds_lanes() -> None:
    path = str(CORPUS / "configured" / ".github" / "workflows" / "ci.yml")
    config = CORPUS / "configured" / ".digestgate" / "lint.yaml"
    assert run_cli("lint", "--config", str(config), path).code == 1
    empty = ROOT / "tests" / "data" / "lint-empty.yaml"
    assert run_cli("lint", "--config", str(empty), path).code == 0


def test_release_jobs_limit_the_release_path(tmp_path: Path) -> None:
    flow = tmp_path / ".github" / "workflows"
    flow.mkdir(parents=True)
    (flow / "ci.yml").write_text(
        "on: push\njobs:\n  test:\n    runs-on: x\n    steps:\n      - run: pytest\n"
        "  runner-image:\n    needs: test\n    runs-on: x\n    steps:\n"
        "      - run: docker build -t e2e .\n"
    )
    assert run_cli("lint", "--root", str(tmp_path)).code == 1
    (tmp_path / ".digestgate").mkdir()
    (tmp_path / ".digestgate" / "lint.yaml").write_text("version: 1\nrelease-jobs: [test]\n")
    assert run_cli("lint", "--root", str(tmp_path)).code == 0
