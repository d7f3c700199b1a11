"""Render lint results as text, JSON, SARIF 2.1.0 or GitHub workflow commands."""

from __future__ import annotations

import json
from typing import Any, Final

from digestgate._version import __version__
from digestgate.linting.api import LintResult
from digestgate.linting.findings import RULES, Finding, Severity

SCHEMA_VERSION: Final = 1
SARIF_SCHEMA: Final = "https://json.schemastore.org/sarif-2.1.0.json"
_INFO_URI: Final = "https://github.com/digestgate/digestgate/blob/main/docs/lint.md"


def render(result: LintResult, fmt: str) -> str:
    """The whole report in format ``fmt``: text, json, sarif or github (``--format``)."""
    if fmt == "text":
        return text(result)
    if fmt == "json":
        return json_report(result)
    if fmt == "sarif":
        return json.dumps(sarif(result), indent=2, sort_keys=True)
    if fmt == "github":
        return github(result)
    raise ValueError(fmt)  # pragma: no cover - the CLI restricts the choice


def text(result: LintResult) -> str:
    """``file:line:col: DG101 [error] message`` and an indented hint line per finding."""
    lines: list[str] = []
    for f in result.findings:
        lines.append(f"{f.file}:{f.line}:{f.column}: {f.rule} [{f.severity.value}] {f.message}")
        lines.append(f"    hint: {f.hint}")
    return "\n".join(lines)


def _finding_json(f: Finding) -> dict[str, Any]:
    return {
        "id": f.rule,
        "name": f.name,
        "severity": f.severity.value,
        "file": f.file,
        "line": f.line,
        "column": f.column,
        "message": f.message,
        "hint": f.hint,
    }


def json_report(result: LintResult) -> str:
    """``{"schemaVersion": 1, "files": [...], "findings": [...]}``, sorted, deterministic."""
    errors = sum(1 for f in result.findings if f.severity is Severity.ERROR)
    data = {
        "schemaVersion": SCHEMA_VERSION,
        "files": sorted(result.files),
        "findings": [_finding_json(f) for f in result.findings],
        "summary": {"errors": errors, "warnings": len(result.findings) - errors},
    }
    return json.dumps(data, indent=2, sort_keys=True)


def _level(severity: Severity) -> str:
    return "error" if severity is Severity.ERROR else "warning"


def sarif(result: LintResult) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run; URIs are relative to the reporting root."""
    rule_ids = list(RULES)
    rules = [
        {
            "id": r.id,
            "name": r.name,
            "shortDescription": {"text": r.summary},
            "fullDescription": {"text": r.summary},
            "help": {"text": r.hint},
            "helpUri": f"{_INFO_URI}#{r.id.lower()}-{r.name}",
            "defaultConfiguration": {"level": _level(r.severity)},
        }
        for r in RULES.values()
    ]
    results = [
        {
            "ruleId": f.rule,
            "ruleIndex": rule_ids.index(f.rule),
            "level": _level(f.severity),
            "message": {"text": f.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(f.file), "uriBaseId": "%SRCROOT%"},
                        "region": {"startLine": f.line, "startColumn": f.column},
                    }
                }
            ],
        }
        for f in result.findings
    ]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "digestgate-lint",
                        "version": __version__,
                        "informationUri": _INFO_URI,
                        "rules": rules,
                    }
                },
                "results": results,
                "columnKind": "unicodeCodePoints",
            }
        ],
    }


def _uri(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/:")


def _escape_data(value: str) -> str:
    """Workflow-command message escaping: ``%``, CR and LF."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    """Workflow-command property escaping: also ``:`` and ``,``."""
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def github(result: LintResult) -> str:
    """``::error file=F,line=L,col=C,title=DG101::message`` per finding (annotations)."""
    lines = []
    for f in result.findings:
        props = ",".join(
            f"{k}={_escape_property(str(v))}"
            for k, v in (("file", f.file), ("line", f.line), ("col", f.column), ("title", f.rule))
        )
        lines.append(f"::{_level(f.severity)} {props}::{_escape_data(f.message + ' - ' + f.hint)}")
    return "\n".join(lines)
