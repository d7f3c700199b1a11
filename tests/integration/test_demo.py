"""The README's first command: the demo runs from a clean directory and tells the story.

Its outcomes are asserted from the files it leaves behind, not from its own say-so: the
passing gate, the promoted digests equal to the captured ones, and the blocked cases with
their finding ids (a platform no lane ran, a rebuild, a tag).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _finding_ids(report: Path) -> set[str]:
    data = json.loads(report.read_text())
    ids = {f["id"] for f in data["findings"]}
    for artifact in data["artifacts"].values():
        ids.update(f["id"] for f in artifact["findings"])
    return ids


DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo.py"


def _run_demo(workdir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEMO), "--keep", str(workdir), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )


def _assert_story(workdir: Path, proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Every step behaved as expected" in proc.stdout
    gate = json.loads((workdir / "gate-report.json").read_text())
    assert gate["verdict"] == "PASSED"
    release = json.loads((workdir / "release.json").read_text())
    promoted = json.loads((workdir / "promoted.json").read_text())
    assert promoted["kind"] == "Promotion"
    for name in ("backend", "frontend"):
        captured = release["artifacts"][name]["image"].rpartition("@")[2]
        assert promoted["artifacts"][name]["image"].rpartition("@")[2] == captured
        assert promoted["artifacts"][name]["from"] == release["artifacts"][name]["image"]
    assert json.loads((workdir / "promoted-report.json").read_text())["verdict"] == "PASSED"
    # the two-platform backend, tested on linux/amd64 only, was blocked first
    assert _finding_ids(workdir / "platform-report.json") == {"lane.platform-missing"}
    assert [p["platform"] for p in release["artifacts"]["backend"]["platforms"]] == [
        "linux/amd64",
        "linux/arm64",
    ]
    rebuilt = _finding_ids(workdir / "rebuilt-report.json")
    assert {"provenance.missing", "lane.missing"} <= rebuilt
    assert "reference.not-digest" in _finding_ids(workdir / "tag-report.json")


def test_demo_on_layouts(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    proc = _run_demo(workdir)
    _assert_story(workdir, proc)
    assert (workdir / "production" / "backend" / "index.json").is_file()


@pytest.mark.registry
def test_demo_against_a_local_registry(tmp_path: Path) -> None:
    from tests.fixtures.registry import require_command

    require_command("docker-registry")
    workdir = tmp_path / "demo"
    _assert_story(workdir, _run_demo(workdir, "--registry"))
