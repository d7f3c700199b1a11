"""Renderers: table, JSON report, Markdown summary and workflow-command annotations."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from digestgate.report.annotations import annotation, escape_data, escape_property
from digestgate.report.enforcement import render_json_report
from digestgate.report.jsonreport import report_document
from digestgate.report.markdown import cell, render_markdown
from digestgate.report.table import render_table, render_verify, verdict_line, verify_line
from digestgate.rules.decision import Decision
from digestgate.rules.evaluate import evaluate
from digestgate.rules.findings import finding
from digestgate.rules.verify import verify_digest
from tests.unit.gatekit import (
    BACKEND,
    FRONTEND,
    NOW,
    good_evidence,
    lane,
    policy,
    provenance,
    release,
    verified,
)


def passing() -> Decision:
    return evaluate(policy(), release(), good_evidence(), [], NOW)


def failing() -> Decision:
    evidence = good_evidence()
    evidence[0] = verified(provenance({"backend": BACKEND}, repo="https://evil\x1b[2J|<b>x</b>"))
    evidence[3] = verified(lane("fast-check", {"frontend": FRONTEND}, result="FAILED"), ["tests"])
    return evaluate(policy(), release(), evidence, [], NOW)


def test_json_report_shape_and_determinism() -> None:
    decision = failing()
    text = render_json_report(decision, "enforce")
    assert text == render_json_report(failing(), "enforce")
    doc = json.loads(text)
    assert list(doc) == sorted(doc)
    assert doc["schemaVersion"] == 1
    assert doc["verdict"] == "FAILED"
    assert doc["policy"] == {"digest": str(policy().digest)}
    assert set(doc["artifacts"]) == {"backend", "frontend"}
    backend = doc["artifacts"]["backend"]
    assert backend["digest"] == str(BACKEND)
    assert backend["verdict"] == "FAILED"
    assert [f["id"] for f in backend["findings"]] == ["provenance.source-mismatch"]
    assert set(backend["findings"][0]) == {"id", "message", "hint"}
    assert "\x1b" not in text
    frontend = doc["artifacts"]["frontend"]
    assert [f["id"] for f in frontend["findings"]] == ["lane.failed"]
    # frontend provenance and e2e still counted as evidence
    assert len(frontend["evidence"]) == 2
    assert frontend["evidence"] == sorted(frontend["evidence"], key=lambda e: e["digest"])
    assert doc["findings"] == []


def test_json_report_for_a_pass_lists_the_evidence_used() -> None:
    doc = report_document(passing())
    assert doc["verdict"] == "PASSED"
    assert {len(a["evidence"]) for a in doc["artifacts"].values()} == {3}


def test_table_has_every_requirement_and_no_control_characters() -> None:
    text = render_table(failing(), width=90)
    lines = text.splitlines()
    assert lines[0].split() == ["ARTIFACT", "REQUIREMENT", "VERDICT", "REASON"]
    assert sum(1 for ln in lines if ln.startswith("backend ")) == 4
    assert "\x1b" not in text
    assert "\\u001b[2J" in text
    assert all(len(ln) <= 90 for ln in lines[:9])
    assert "- provenance.source-mismatch [backend]" in text
    assert verdict_line(failing()).startswith("gate: FAILED (2 artifact(s)")
    assert "\x1b[32m" in render_table(passing(), color=True)
    assert verdict_line(passing()).startswith("gate: PASSED")


def test_markdown_escapes_evidence_text() -> None:
    text = render_markdown(failing())
    assert text.startswith("### ❌ digestgate gate: FAILED")
    assert "<b>" not in text and "&lt;b&gt;" in text
    assert "\\|" in text
    rows = [ln for ln in text.splitlines() if ln.startswith("| backend")]
    assert all(ln.count(" | ") == 4 for ln in rows)
    assert "- `lane.failed` (frontend)" in text
    assert render_markdown(passing()).startswith("### ✅ digestgate gate: PASSED")


def test_annotation_escaping() -> None:
    assert escape_data("50%\r\nnext") == "50%25%0D%0Anext"
    assert escape_property("a: b, c") == "a%3A b%2C c"
    f = finding("lane.failed", "line1\nline2 100%", artifact="backend", requirement="lane:e2e")
    line = annotation(f)
    assert line.startswith("::error title=digestgate gate%3A lane.failed backend::line1%0Aline2")
    assert "\n" not in line
    warn = annotation(finding("evidence.malformed", "x"))
    assert warn.startswith("::warning ")


@given(st.text(max_size=80))
def test_escaped_data_never_contains_line_breaks(text: str) -> None:
    out = escape_data(text)
    assert "\n" not in out and "\r" not in out
    assert "\n" not in cell(text) and "|" not in cell(text).replace("\\|", "")


def test_render_verify() -> None:
    decision = verify_digest(policy(), BACKEND, [], [], NOW)
    text = render_verify(decision)
    assert "vsa.missing" in text
    assert verify_line(decision) == f"verify: FAILED {BACKEND}"
