#!/usr/bin/env python3
"""Precision and recall of ``digestgate lint`` over the workflow corpus (tests/lint_corpus).

Each corpus workflow declares its expected findings on its first line
(``# expect: DG101@23, DG102@40`` or ``# expect: none``). Prints precision and recall per
rule and overall; exits 1 if either is below 1.0 anywhere, 2 if the corpus is malformed.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "lint_corpus"
_EXPECT = re.compile(r"#\s*expect:\s*(.*)")


def corpus_files(corpus: Path = CORPUS) -> list[Path]:
    """Every workflow file of the corpus."""
    return sorted(
        p
        for p in corpus.rglob("*.yml")
        if p.parent.name == "workflows"
        and p.parent.parent.name in (".github", ".gitea", ".forgejo")
    )


def expected(path: Path) -> set[tuple[str, int]]:
    """The ``(rule, line)`` pairs a corpus file's header declares."""
    first = path.read_text(encoding="utf-8").split("\n", 1)[0]
    match = _EXPECT.fullmatch(first.strip())
    if not match:
        raise ValueError(f"{path}: first line must be '# expect: ...'")
    body = match.group(1).strip()
    if body == "none":
        return set()
    pairs = set()
    for item in body.split(","):
        rule, _, line = item.strip().partition("@")
        pairs.add((rule, int(line)))
    return pairs


def actual(path: Path) -> set[tuple[str, int]]:
    """The ``(rule, line)`` pairs ``digestgate lint`` reports for a corpus file."""
    from digestgate.lint.api import lint_paths

    result = lint_paths([path], cwd=ROOT)
    return {(f.rule, f.line) for f in result.findings}


def main() -> int:
    """Print the table; 0 when precision and recall are 1.0 everywhere."""
    true_pos: Counter[str] = Counter()
    false_pos: Counter[str] = Counter()
    false_neg: Counter[str] = Counter()
    files = corpus_files()
    if not files:
        print("no corpus files found", file=sys.stderr)
        return 2
    for path in files:
        try:
            want = expected(path)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        got = actual(path)
        for rule, _ in got & want:
            true_pos[rule] += 1
        for rule, line in got - want:
            false_pos[rule] += 1
            print(f"unexpected: {path.relative_to(ROOT)}:{line} {rule}", file=sys.stderr)
        for rule, line in want - got:
            false_neg[rule] += 1
            print(f"missed:     {path.relative_to(ROOT)}:{line} {rule}", file=sys.stderr)
    rules = sorted(set(true_pos) | set(false_pos) | set(false_neg))
    ok = True
    print(f"{'rule':<8} {'tp':>4} {'fp':>4} {'fn':>4} {'precision':>10} {'recall':>8}")
    for rule in [*rules, "overall"]:
        if rule == "overall":
            tp, fp, fn = (sum(c.values()) for c in (true_pos, false_pos, false_neg))
        else:
            tp, fp, fn = true_pos[rule], false_pos[rule], false_neg[rule]
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        ok = ok and precision == 1.0 and recall == 1.0
        print(f"{rule:<8} {tp:>4} {fp:>4} {fn:>4} {precision:>10.3f} {recall:>8.3f}")
    print(f"{len(files)} corpus files")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
