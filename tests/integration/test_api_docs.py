"""docs/api.md's worked example runs verbatim, in the directory the demo leaves behind."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _example() -> str:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    section = text.split("## A worked example", 1)[1].split("\n## ", 1)[0]
    blocks: list[str] = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1
    return blocks[0]


def _demo_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What ``scripts/demo --keep`` leaves: keys, policy, releases, evidence, staging."""
    work = tmp_path / "work"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--keep", str(work)],
        check=True,
        capture_output=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )
    monkeypatch.chdir(work)
    return work


def test_the_worked_example_gates_promotes_and_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = _demo_directory(tmp_path, monkeypatch)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(_example(), "docs/api.md", "exec"), {})  # noqa: S102
    lines = printed.getvalue().splitlines()
    assert lines[0] == "gate: PASSED"
    verdicts = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert set(verdicts) == {"backend", "frontend"}
    release = (work / "release.json").read_text(encoding="utf-8")
    for name, (verdict, digest) in verdicts.items():
        assert verdict == "PASSED"
        assert digest in release  # the digest at the target is the one captured
        assert (work / "api-production" / name / "index.json").is_file()


def test_a_blocked_release_raises_and_copies_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same example on the demo's rebuilt-frontend release stops at the gate."""
    import digestgate

    work = _demo_directory(tmp_path, monkeypatch)
    code = _example().replace('"release.json"', '"release-rebuilt.json"')
    with (
        pytest.raises(digestgate.BlockedError) as caught,
        contextlib.redirect_stdout(io.StringIO()),
    ):
        exec(compile(code, "docs/api.md", "exec"), {})  # noqa: S102
    assert caught.value.exit_code == digestgate.ExitCode.BLOCKED
    assert not (work / "api-production").exists()
