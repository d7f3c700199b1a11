"""A GitHub-flavoured Markdown summary for ``$GITHUB_STEP_SUMMARY`` (specs 9.2).

Text from evidence is escaped for table cells and HTML, so a statement cannot inject
markup into the job summary; the output stays under the per-step 1 MiB limit.
"""

from __future__ import annotations

from typing import Final

from digestgate.rules.decision import Decision
from digestgate.rules.findings import printable

MAX_BYTES: Final = 900 * 1024


def cell(text: str) -> str:
    """``text`` safe inside a Markdown table cell."""
    text = printable(text.replace("\r", " ").replace("\n", " "))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("`", "\\`").replace("*", "\\*").replace("_", "\\_")


def render_markdown(decision: Decision) -> str:
    """The summary: verdict heading, requirement table, findings with hints."""
    mark = "✅" if decision.passed else "❌"
    lines = [
        f"### {mark} digestgate gate: {decision.verdict}",
        "",
        f"Policy `{decision.policy_digest}`",
        "",
        "| Artifact | Digest | Requirement | Verdict | Reason |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, artifact in sorted(decision.artifacts.items()):
        digest = f"`{artifact.digest.short}`" if artifact.digest else "none"
        for req in artifact.requirements:
            verdict = "PASSED" if req.passed else "**FAILED**"
            lines.append(
                f"| {cell(name)} | {digest} | {cell(req.requirement)} | {verdict} | "
                f"{cell(req.reason)} |"
            )
    findings = decision.all_findings()
    if findings:
        lines += ["", "#### Findings", ""]
        for f in findings:
            where = f" ({cell(f.artifact)})" if f.artifact else ""
            lines.append(f"- `{f.id}`{where}: {cell(f.message)}  ")
            lines.append(f"  _hint_: {cell(f.hint)}")
    text = "\n".join(lines) + "\n"
    if len(text.encode()) > MAX_BYTES:
        text = text.encode()[:MAX_BYTES].decode(errors="ignore")
        text = text.rsplit("\n", 1)[0] + "\n\n_(summary truncated; see the JSON report)_\n"
    return text
