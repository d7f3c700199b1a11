"""How ``gate`` says it ran under ``enforcement: warn``: loudly, everywhere it reports.

In warn mode the gate exits 0 whatever it decided, so every output says so: a banner on the
terminal, the verdict line, a warning block at the top of the step summary, every finding
as a ``::warning`` annotation, and ``"enforcement"`` in the JSON report (always present:
``enforce`` or ``warn``).
"""

from __future__ import annotations

from typing import Final

from digestgate.jsonutil import dumps_pretty
from digestgate.policy.stages import Enforcement
from digestgate.report.annotations import escape_data, escape_property
from digestgate.report.jsonreport import report_document
from digestgate.report.markdown import cell
from digestgate.rules.decision import Decision

_CONSEQUENCES: Final = (
    "exit 0 is not a pass: every VSA this gate signs says FAILED (warn-only), verify "
    "refuses them and promote still blocks"
)


def render_json_report(decision: Decision, enforcement: Enforcement) -> str:
    """The JSON report with its ``enforcement`` field."""
    return dumps_pretty({**report_document(decision), "enforcement": enforcement})


def warn_banner(decision: Decision) -> str:
    """The terminal banner (stderr) of a warn-mode gate."""
    would = "would BLOCK this release" if not decision.passed else "passed"
    return f"WARNING: enforcement: warn: the gate {would} but does not enforce; {_CONSEQUENCES}."


def warn_verdict_suffix() -> str:
    """Appended to the stdout verdict line of a warn-mode gate."""
    return " [enforcement: warn: not enforced, exit 0]"


def warn_markdown(decision: Decision) -> str:
    """The warning block that heads the step summary of a warn-mode gate."""
    would = "would **block** this release" if not decision.passed else "passed"
    return (
        f"> [!WARNING]\n> **enforcement: warn**: the gate {would} but does not enforce; "
        f"{cell(_CONSEQUENCES)}.\n\n"
    )


def warn_annotations(decision: Decision) -> list[str]:
    """One ``::warning`` for warn mode, then every finding as a ``::warning``."""
    title = escape_property("digestgate gate: enforcement warn")
    lines = [f"::warning title={title}::{escape_data(warn_banner(decision))}"]
    for f in decision.all_findings():
        subject = f" {f.artifact}" if f.artifact else ""
        name = escape_property(f"digestgate gate: {f.id}{subject}")
        lines.append(f"::warning title={name}::{escape_data(f'{f.message} (hint: {f.hint})')}")
    return lines
