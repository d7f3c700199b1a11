"""Every corpus workflow yields exactly the (rule, line) findings its header declares."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from scripts.lint_precision import CORPUS, ROOT, corpus_files, expected

from digestgate.linting.api import lint

FILES = corpus_files()


def test_corpus_is_large_enough() -> None:
    assert len(FILES) >= 110  # 45 first files, 70 modelled on real-world release workflows
    rules = {rule for path in FILES for rule, _ in expected(path)}
    assert rules >= {"DG100", "DG101", "DG102", "DG103", "DG104", "DG105", "DG106", "DG199"}
    assert sum(1 for path in FILES if not expected(path)) >= 8  # clean pipelines too


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(CORPUS)))
def test_corpus_file(path: Path) -> None:
    result = lint(paths=[path], cwd=ROOT)
    assert {(f.rule, f.line) for f in result.findings} == expected(path)
    assert result.failed == any(f.severity.value == "error" for f in result.findings)


def test_precision_script_reports_full_precision_and_recall() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "lint_precision.py")],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    overall = next(line for line in proc.stdout.splitlines() if line.startswith("overall"))
    assert overall.split()[-2:] == ["1.000", "1.000"]
