"""GitHub workflow-command annotations (``::error title=...::message``) for findings.

Escaping follows the workflow-command rules: in data ``%``, CR and LF are percent-encoded;
in property values ``:`` and ``,`` are too.
"""

from __future__ import annotations

from digestgate.rules.decision import Decision
from digestgate.rules.findings import Finding


def escape_data(text: str) -> str:
    """Escape a command's message."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a command property value (such as ``title``)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(f: Finding, *, command: str = "gate") -> str:
    """One ``::error`` (blocking) or ``::warning`` line for a finding."""
    level = "error" if f.blocking else "warning"
    subject = f" {f.artifact}" if f.artifact else ""
    title = escape_property(f"digestgate {command}: {f.id}{subject}")
    return f"::{level} title={title}::{escape_data(f'{f.message} (hint: {f.hint})')}"


def render_annotations(decision: Decision) -> list[str]:
    """Annotation lines for every finding of the decision, in report order."""
    return [annotation(f) for f in decision.all_findings()]
