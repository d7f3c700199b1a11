"""JUnit reports and lane results through the CLI: attest never signs a false PASSED, and
the gate refuses a PASSED result whose own counts report failures or no test run."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from digestgate.evidence.model import TEST_RESULT
from tests.conftest import CliResult, run_cli
from tests.integration.test_gate_adversarial import World
from tests.unit.gatekit import lane


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def _attest(world: World, report: str) -> CliResult:
    path = world.root / "junit.xml"
    path.write_text(report)
    return run_cli(
        "attest", "test-result", "--release", str(world.release), "--lane", "e2e",
        "--junit", str(path), "--key", str(world.keys["tests"]),
        "--evidence", f"dir:{world.root / 'signed'}",
    )  # fmt: skip


def _signed_result(world: World) -> str:
    [path] = list((world.root / "signed").rglob("*.json"))
    envelope = json.loads(path.read_text())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["predicateType"] == TEST_RESULT
    result: str = statement["predicate"]["result"]
    return result


OK = '<testcase classname="t" name="ok"/>'


@pytest.mark.parametrize(
    "report",
    [
        f'<testsuite name="s">{OK}<testcase name="f"><system-out><failure/></system-out>'
        "</testcase></testsuite>",
        f'<testsuite name="s">{OK}<error message="suite setup failed"/></testsuite>',
        f'<testsuite name="s">{OK}<system-out><failure/></system-out></testsuite>',
        f'<testsuite name="s">{OK}<testcase name="f" status="failed"/></testsuite>',
        f'<testsuite name="s">{OK}<testcase name="f" result="fail"/></testsuite>',
    ],
    ids=["failure-under-system-out", "suite-error", "suite-system-out", "status", "result"],
)
def test_hidden_failures_are_signed_failed(world: World, report: str) -> None:
    result = _attest(world, report)
    assert result.code == 0, result.stderr
    assert "lane e2e: FAILED" in result.stderr
    assert _signed_result(world) == "FAILED"


@pytest.mark.parametrize(
    ("report", "problem"),
    [
        (f'<testsuite name="s">{OK}<testcase name="a"><testcase name="b"><failure/>'
         "</testcase></testcase></testsuite>", "nested test cases cannot be interpreted"),
        (f'<testsuite name="s">{OK}<testcase name="a" status="quarantined"/></testsuite>',
         "status='quarantined', which digestgate cannot interpret"),
    ],
)  # fmt: skip
def test_uninterpretable_reports_are_refused(world: World, report: str, problem: str) -> None:
    result = _attest(world, report)
    assert result.code == 2
    assert problem in result.stderr
    assert not (world.root / "signed").exists() or not list((world.root / "signed").rglob("*"))


def test_gate_refuses_a_passed_result_whose_counts_report_failures(world: World) -> None:
    doc = lane("e2e", world.digests, finished=world.when)
    doc["predicate"]["digestgate_counts"] = {"tests": 9, "failures": 3, "errors": 0, "skipped": 0}
    world.put("e2e", doc, "tests")
    result = world.gate()
    assert result.code == 1
    assert world.ids() == {"backend": {"lane.failed"}, "frontend": {"lane.failed"}}
    report = json.loads(world.report.read_text())
    message = report["artifacts"]["backend"]["findings"][0]["message"]
    assert "is PASSED but its counts report 3 failed or errored test(s)" in message


def test_gate_accepts_a_passed_result_without_counts(world: World) -> None:
    doc = lane("e2e", world.digests, finished=world.when)
    del doc["predicate"]["digestgate_counts"]
    world.put("e2e", doc, "tests")
    assert world.gate().code == 0
