"""The terminal verdict table: artifact x requirement with verdict and reason (plain text).

Width-aware (reasons are cut to fit ``width``) but never asks the terminal; colour is an
option of the caller. Every text that may come from evidence is made printable first, so a
hostile statement cannot move the cursor or rewrite the screen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from digestgate.rules.decision import Decision
from digestgate.rules.findings import Finding, printable
from digestgate.rules.verify import VerifyDecision

_GREEN: Final = "\x1b[32m"
_RED: Final = "\x1b[31m"
_YELLOW: Final = "\x1b[33m"
_RESET: Final = "\x1b[0m"
_MIN_REASON: Final = 20


def _cut(text: str, width: int) -> str:
    text = printable(text)
    return text if len(text) <= width else text[: max(width - 3, 0)] + "..."


def _paint(text: str, colour: str, enabled: bool) -> str:
    return f"{colour}{text}{_RESET}" if enabled else text


def _verdict(passed: bool, color: bool) -> str:
    return _paint("PASSED", _GREEN, color) if passed else _paint("FAILED", _RED, color)


def _grid(rows: Sequence[tuple[str, str, bool, str]], width: int, color: bool) -> list[str]:
    headers = ("ARTIFACT", "REQUIREMENT", "VERDICT")
    first = max([len(headers[0]), *(len(printable(r[0])) for r in rows)])
    second = max([len(headers[1]), *(len(printable(r[1])) for r in rows)])
    reason_width = max(width - first - second - len("VERDICT") - 6, _MIN_REASON)
    lines = [f"{headers[0]:<{first}}  {headers[1]:<{second}}  VERDICT  REASON"]
    for artifact, requirement, passed, reason in rows:
        lines.append(
            f"{printable(artifact):<{first}}  {printable(requirement):<{second}}  "
            f"{_verdict(passed, color)}   {_cut(reason, reason_width)}"
        )
    return lines


def _findings(findings: Sequence[Finding], color: bool) -> list[str]:
    lines: list[str] = []
    for f in findings:
        tag = _paint(f.id, _RED if f.blocking else _YELLOW, color)
        where = f" [{printable(f.artifact)}]" if f.artifact else ""
        lines.append(f"- {tag}{where}: {printable(f.message)}")
        lines.append(f"    hint: {printable(f.hint)}")
    return lines


def render_table(decision: Decision, *, width: int = 100, color: bool = False) -> str:
    """The gate's table and its findings with hints (the verdict line is separate)."""
    rows = [
        (name, req.requirement, req.passed, req.reason)
        for name, artifact in sorted(decision.artifacts.items())
        for req in artifact.requirements
    ]
    rows.extend(("*", "release", False, f.message) for f in decision.findings if f.blocking)
    lines = _grid(rows, width, color) if rows else []
    findings = decision.all_findings()
    if findings:
        lines += ["", "Findings:", *_findings(findings, color)]
    return "\n".join(lines) + "\n"


def verdict_line(decision: Decision, *, color: bool = False) -> str:
    """``gate: PASSED (2 artifacts, policy sha256:...)`` or the FAILED equivalent."""
    blocking = sum(1 for f in decision.all_findings() if f.blocking)
    detail = f"{len(decision.artifacts)} artifact(s), policy {decision.policy_digest.short}"
    if not decision.passed:
        detail += f", {blocking} blocking finding(s)"
    return f"gate: {_verdict(decision.passed, color)} ({detail})"


def render_verify(decision: VerifyDecision, *, color: bool = False) -> str:
    """The deploy-side findings with hints and the VSA that passed (verdict line separate)."""
    lines = _findings(decision.findings, color)
    if decision.vsa is not None:
        lines.append(f"VSA: {printable(decision.vsa.origin)} ({decision.vsa.digest.short})")
    return "\n".join(lines) + "\n"


def verify_line(decision: VerifyDecision, *, color: bool = False) -> str:
    """``verify: PASSED sha256:...`` or the FAILED equivalent."""
    return f"verify: {_verdict(decision.passed, color)} {decision.digest}"
