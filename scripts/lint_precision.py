#!/usr/bin/env python3
"""Precision and recall of ``digestgate lint``, per rule.

Two modes:

- corpus (default): every workflow of tests/lint_corpus declares its expected findings on
  its first line (``# expect: DG101@23, DG102@40`` or ``# expect: none``). Exits 1 if
  precision or recall is below 1.0 anywhere (the corpus is a regression suite).
- ``--realworld DIR``: the public workflows listed in tests/data/lint_realworld.json, pinned
  by commit and labelled with the (rule, line) findings they should produce, are scored
  against fetched copies stored as ``DIR/<repository>/<path>``. Only the labelled rules are
  scored; findings of other rules are counted for information. Exits 1 unless every scored
  rule reaches recall >= 0.8 and precision >= 0.9.

Exit 2 when the corpus or the sample is malformed, or a copy is missing or differs from
the labelled one (its sha256 does not match).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "lint_corpus"
SAMPLE = ROOT / "tests" / "data" / "lint_realworld.json"
_EXPECT = re.compile(r"#\s*expect:\s*(.*)")
_RULE = re.compile(r"DG1[0-9]{2}")
MIN_RECALL = 0.8
MIN_PRECISION = 0.9


class SampleError(Exception):
    """The corpus or the sample cannot be scored (exit 2)."""


@dataclass
class Score:
    """True positives, false positives and false negatives per rule."""

    tp: Counter[str] = field(default_factory=Counter)
    fp: Counter[str] = field(default_factory=Counter)
    fn: Counter[str] = field(default_factory=Counter)

    def add(self, name: str, want: set[tuple[str, int]], got: set[tuple[str, int]]) -> None:
        """Count one file; print what was missed or unexpected on stderr."""
        for rule, _ in got & want:
            self.tp[rule] += 1
        for rule, line in sorted(got - want):
            self.fp[rule] += 1
            print(f"unexpected: {name}:{line} {rule}", file=sys.stderr)
        for rule, line in sorted(want - got):
            self.fn[rule] += 1
            print(f"missed:     {name}:{line} {rule}", file=sys.stderr)

    def rates(self, rule: str | None) -> tuple[int, int, int, float, float]:
        """tp, fp, fn, precision, recall of one rule (None: all rules together)."""
        if rule is None:
            tp, fp, fn = (sum(c.values()) for c in (self.tp, self.fp, self.fn))
        else:
            tp, fp, fn = self.tp[rule], self.fp[rule], self.fn[rule]
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        return tp, fp, fn, precision, recall

    def table(self, rules: list[str]) -> None:
        """Print the per-rule table and the overall line."""
        print(f"{'rule':<8} {'tp':>4} {'fp':>4} {'fn':>4} {'precision':>10} {'recall':>8}")
        for rule in [*rules, None]:
            tp, fp, fn, precision, recall = self.rates(rule)
            name = rule or "overall"
            print(f"{name:<8} {tp:>4} {fp:>4} {fn:>4} {precision:>10.3f} {recall:>8.3f}")


# --------------------------------------------------------------------------------- corpus
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
    from digestgate.linting.api import lint

    result = lint(paths=[path], cwd=ROOT)
    return {(f.rule, f.line) for f in result.findings}


def score_corpus() -> int:
    """The corpus table; 0 when precision and recall are 1.0 everywhere."""
    files = corpus_files()
    if not files:
        print("no corpus files found", file=sys.stderr)
        return 2
    score = Score()
    for path in files:
        try:
            want = expected(path)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        score.add(str(path.relative_to(ROOT)), want, actual(path))
    rules = sorted(set(score.tp) | set(score.fp) | set(score.fn))
    score.table(rules)
    print(f"{len(files)} corpus files")
    ok = all(score.rates(r)[3:] == (1.0, 1.0) for r in [*rules, None])
    return 0 if ok else 1


# ---------------------------------------------------------------------------- real world
def text_digest(path: Path) -> str:
    """sha256 of a copy's text with CRLF turned into LF and trailing newlines removed."""
    text = path.read_text(encoding="utf-8").replace("\r\n", "\n").rstrip("\n")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _field(entry: dict[str, Any], key: str, kind: type) -> Any:
    value = entry.get(key)
    if not isinstance(value, kind):
        raise SampleError(f"sample entry {entry.get('repository')!r}: '{key}' is missing or wrong")
    return value


def load_sample(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """The scored rules and the workflow entries of a sample file."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SampleError(f"{path}: cannot read the sample: {exc}") from None
    if not isinstance(doc, dict) or doc.get("schemaVersion") != 1:
        raise SampleError(f"{path}: not a version 1 sample")
    rules = doc.get("rules")
    entries = doc.get("workflows")
    if not isinstance(rules, list) or not all(
        isinstance(r, str) and _RULE.fullmatch(r) for r in rules
    ):
        raise SampleError(f"{path}: 'rules' must list rule ids")
    if not isinstance(entries, list) or not entries:
        raise SampleError(f"{path}: 'workflows' must be a non-empty list")
    for entry in entries:
        if not isinstance(entry, dict):
            raise SampleError(f"{path}: a workflow entry is not an object")
        for key in ("repository", "path", "commit", "sha256"):
            _field(entry, key, str)
        for item in _field(entry, "expected", list):
            if not (
                isinstance(item, dict)
                and item.get("rule") in rules
                and isinstance(item.get("line"), int)
            ):
                raise SampleError(f"{entry['repository']}: bad expected item {item!r}")
    return rules, entries


def _copy(copies: Path, entry: dict[str, Any], relative: str, digest: str) -> Path:
    path: Path = copies / str(entry["repository"]) / relative
    if not path.is_file():
        raise SampleError(
            f"{path}: no copy; fetch {entry['repository']} {relative} at {entry['commit']}"
        )
    if text_digest(path) != digest:
        raise SampleError(f"{path}: the copy differs from the labelled one (sha256)")
    return path


def score_sample(sample: Path, copies: Path) -> int:
    """The real-world table; 0 when every scored rule meets the thresholds."""
    from digestgate.linting.api import lint

    try:
        rules, entries = load_sample(sample)
        paths = []
        for entry in entries:
            for extra in entry.get("extraFiles", []):
                _copy(copies, entry, extra["path"], extra["sha256"])
            paths.append(_copy(copies, entry, entry["path"], entry["sha256"]))
    except SampleError as exc:
        print(exc, file=sys.stderr)
        return 2
    score = Score()
    others: Counter[str] = Counter()
    for entry, path in zip(entries, paths, strict=True):
        repo = copies / entry["repository"]
        result = lint(paths=[path], cwd=repo, root=repo)
        found = {(f.rule, f.line) for f in result.findings if f.file == entry["path"]}
        others.update(rule for rule, _ in found if rule not in rules)
        want = {(item["rule"], item["line"]) for item in entry["expected"]}
        scored = {pair for pair in found if pair[0] in rules}
        score.add(f"{entry['repository']}/{entry['path']}", want, scored)
    score.table(rules)
    print(
        f"{len(entries)} workflows; other rules (not scored): "
        + (", ".join(f"{r} {n}" for r, n in sorted(others.items())) or "none")
    )
    ok = all(score.rates(r)[3] >= MIN_PRECISION and score.rates(r)[4] >= MIN_RECALL for r in rules)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    """Score the corpus, or the real-world sample with ``--realworld DIR``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--realworld", type=Path, metavar="DIR", help="directory of fetched copies")
    parser.add_argument("--sample", type=Path, default=SAMPLE, help="sample list (JSON)")
    args = parser.parse_args(argv)
    if args.realworld is not None:
        return score_sample(args.sample, args.realworld)
    return score_corpus()


if __name__ == "__main__":
    sys.exit(main())
