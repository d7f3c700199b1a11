"""Inline suppressions: ``# digestgate: ignore[DG101] reason`` on the line or the line before.

A suppression must give a reason; one without is reported as DG199 and suppresses nothing,
so an unexplained ``ignore`` never hides a finding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from digestgate.linting.findings import Finding, make

_SUPPRESS: Final = re.compile(r"#\s*digestgate:\s*ignore\[([A-Za-z0-9_,\s]*)\]([^\n]*)")


@dataclass(frozen=True, slots=True)
class Suppression:
    """One inline suppression: the rule ids it names and its reason."""

    line: int
    column: int
    rules: frozenset[str]
    reason: str


def suppressions(lines: tuple[str, ...]) -> list[Suppression]:
    """Every suppression comment of a file, with 1-based line numbers."""
    found: list[Suppression] = []
    for number, text in enumerate(lines, start=1):
        match = _SUPPRESS.search(text)
        if match:
            rules = frozenset(r.strip().upper() for r in match.group(1).split(",") if r.strip())
            found.append(Suppression(number, match.start() + 1, rules, match.group(2).strip()))
    return found


def apply(findings: list[Finding], path: str, lines: tuple[str, ...]) -> list[Finding]:
    """Drop findings of ``path`` suppressed with a reason; add DG199 for reasonless ones."""
    marks = suppressions(lines)
    kept: list[Finding] = []
    for finding in findings:
        if finding.file == path and any(
            s.reason and finding.rule in s.rules and finding.line in (s.line, s.line + 1)
            for s in marks
        ):
            continue
        kept.append(finding)
    for mark in marks:
        if not mark.reason:
            kept.append(
                make(
                    "DG199",
                    path,
                    mark.line,
                    mark.column,
                    f"suppression of {', '.join(sorted(mark.rules)) or 'nothing'} "
                    "gives no reason and is ignored",
                )
            )
    return kept
