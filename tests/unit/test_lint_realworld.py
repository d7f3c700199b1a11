"""The real-world sample list and the scoring mode of scripts/lint_precision.py.

The fetched copies of public workflows are not part of the repository, so these tests check
the committed list itself and score small workflows of their own through the same code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from scripts.lint_precision import SAMPLE, load_sample, main, text_digest

FLOW = """\
on: push
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - run: pytest
  image:
    needs: test
    runs-on: ubuntu-latest
    steps:
      - run: docker build -t registry.example.org/app:main .
"""
CLEAN = FLOW.split("  image:", 1)[0]  # the test job alone


def _sample(tmp_path: Path, labels: list[tuple[str, int]]) -> tuple[Path, Path]:
    copies = tmp_path / "copies"
    entries = []
    for repo, text, expected in (
        ("acme/rebuild", FLOW, labels),
        ("acme/clean", CLEAN, []),
    ):
        path = copies / repo / ".github" / "workflows" / "ci.yml"
        path.parent.mkdir(parents=True)
        path.write_text(text, encoding="utf-8")
        entries.append(
            {
                "repository": repo,
                "path": ".github/workflows/ci.yml",
                "commit": "0" * 40,
                "sha256": text_digest(path),
                "expected": [{"rule": r, "line": n} for r, n in expected],
            }
        )
    sample = tmp_path / "sample.json"
    doc = {"schemaVersion": 1, "rules": ["DG101", "DG102"], "workflows": entries}
    sample.write_text(json.dumps(doc), encoding="utf-8")
    return sample, copies


def _row(out: str, rule: str) -> list[str]:
    return next(line.split() for line in out.splitlines() if line.startswith(rule))


def test_scores_fetched_copies_per_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample, copies = _sample(tmp_path, [("DG101", 11)])
    assert main(["--realworld", str(copies), "--sample", str(sample)]) == 0
    out = capsys.readouterr().out
    assert _row(out, "DG101") == ["DG101", "1", "0", "0", "1.000", "1.000"]
    assert _row(out, "DG102") == ["DG102", "0", "0", "0", "1.000", "1.000"]
    assert "2 workflows; other rules (not scored): none" in out


def test_a_finding_on_another_line_is_a_miss_and_a_false_alarm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample, copies = _sample(tmp_path, [("DG101", 10)])
    assert main(["--realworld", str(copies), "--sample", str(sample)]) == 1
    captured = capsys.readouterr()
    assert _row(captured.out, "DG101") == ["DG101", "0", "1", "1", "0.000", "0.000"]
    assert "missed:     acme/rebuild/.github/workflows/ci.yml:10 DG101" in captured.err
    assert "unexpected: acme/rebuild/.github/workflows/ci.yml:11 DG101" in captured.err


def test_missing_copy_exits_two_and_says_what_to_fetch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample, copies = _sample(tmp_path, [("DG101", 11)])
    (copies / "acme" / "clean" / ".github" / "workflows" / "ci.yml").unlink()
    assert main(["--realworld", str(copies), "--sample", str(sample)]) == 2
    assert "no copy; fetch acme/clean .github/workflows/ci.yml at 0000" in capsys.readouterr().err


def test_changed_copy_exits_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample, copies = _sample(tmp_path, [("DG101", 11)])
    path = copies / "acme" / "rebuild" / ".github" / "workflows" / "ci.yml"
    path.write_text("# moved\n" + FLOW, encoding="utf-8")
    assert main(["--realworld", str(copies), "--sample", str(sample)]) == 2
    assert "differs from the labelled one" in capsys.readouterr().err


def test_copy_digest_ignores_line_endings_and_final_newlines(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"on: push\njobs: {}")
    b.write_bytes(b"on: push\r\njobs: {}\r\n\r\n")
    assert text_digest(a) == text_digest(b)


@pytest.mark.parametrize(
    "doc",
    [
        {"schemaVersion": 2, "rules": ["DG101"], "workflows": []},
        {"schemaVersion": 1, "rules": ["nope"], "workflows": [{}]},
        {"schemaVersion": 1, "rules": ["DG101"], "workflows": [{"repository": "a/b"}]},
        {
            "schemaVersion": 1,
            "rules": ["DG101"],
            "workflows": [
                {
                    "repository": "a/b",
                    "path": "p",
                    "commit": "c",
                    "sha256": "d",
                    "expected": [{"rule": "DG102", "line": 3}],
                }
            ],
        },
    ],
)
def test_malformed_sample_exits_two(
    tmp_path: Path, doc: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps(doc), encoding="utf-8")
    assert main(["--realworld", str(tmp_path), "--sample", str(sample)]) == 2
    assert capsys.readouterr().err.strip()


def test_committed_sample_is_pinned_and_large_enough() -> None:
    rules, entries = load_sample(SAMPLE)
    assert rules == ["DG101", "DG102"]
    assert len(entries) >= 25
    keys = [(e["repository"], e["path"]) for e in entries]
    assert len(set(keys)) == len(keys)
    assert all(re.fullmatch(r"[0-9a-f]{40}", e["commit"]) for e in entries)
    assert all(re.fullmatch(r"[0-9a-f]{64}", e["sha256"]) for e in entries)
    platforms = {e["platform"] for e in entries}
    assert platforms == {"github", "gitea", "forgejo"}
    assert sum(1 for e in entries if e["deploysByTag"]) >= 10
    compose_ssh = [
        e
        for e in entries
        if e["composeOverSsh"] and e["deploysByTag"] and e["platform"] in ("gitea", "forgejo")
    ]
    assert len(compose_ssh) >= 3
    labelled = {item["rule"] for e in entries for item in e["expected"]}
    assert labelled == {"DG101", "DG102"}
