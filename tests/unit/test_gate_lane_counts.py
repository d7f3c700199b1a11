"""A PASSED lane result whose own test counts say otherwise does not count (lane.failed).

``attest test-result --junit`` never signs such a result; one signed by another tool, or by a
key holder who edits the predicate, must still not pass the gate. A result without counts
(``--result PASSED``) keeps counting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from digestgate.rules.decision import Decision
from digestgate.rules.evaluate import evaluate
from tests.unit.gatekit import (
    BOTH,
    HOUR,
    NOW,
    good_evidence,
    ids_by_artifact,
    lane,
    policy,
    release,
    verified,
)


def _e2e(counts: Mapping[str, int] | None, **kwargs: Any) -> dict[str, Any]:
    doc = lane("e2e", BOTH, **kwargs)
    if counts is None:
        del doc["predicate"]["digestgate_counts"]
    else:
        doc["predicate"]["digestgate_counts"] = dict(counts)
    return doc


def _decide(*e2e: dict[str, Any]) -> Decision:
    evidence = good_evidence()[:4]  # provenance and fast-check; e2e comes from the test
    evidence += [verified(doc, ["tests"]) for doc in e2e]
    return evaluate(policy(), release(), evidence, [], NOW, None)


def _messages(decision: Decision, name: str) -> list[str]:
    return [f.message for f in decision.artifacts[name].findings]


@pytest.mark.parametrize(
    ("counts", "reason"),
    [
        ({"tests": 12, "failures": 2, "errors": 0, "skipped": 0}, "report 2 failed or errored"),
        ({"tests": 12, "failures": 0, "errors": 1, "skipped": 0}, "report 1 failed or errored"),
        ({"tests": 3, "failures": 0, "errors": 0, "skipped": 3}, "report no test that ran"),
        ({"tests": 0, "failures": 0, "errors": 0, "skipped": 0}, "report no test that ran"),
        ({}, "report no test that ran"),  # every count defaults to 0
    ],
)
def test_passed_result_contradicted_by_its_counts_is_lane_failed(
    counts: dict[str, int], reason: str
) -> None:
    decision = _decide(_e2e(counts))
    assert decision.verdict == "FAILED"
    assert ids_by_artifact(decision) == {"backend": {"lane.failed"}, "frontend": {"lane.failed"}}
    message = _messages(decision, "backend")[0]
    assert message.startswith("the newest e2e result (")
    assert f"is PASSED but its counts {reason}" in message
    assert message.endswith("; it does not count")


def test_passed_result_without_counts_still_counts() -> None:
    decision = _decide(_e2e(None))
    assert decision.verdict == "PASSED"
    assert ids_by_artifact(decision) == {}


def test_passed_result_with_consistent_counts_counts() -> None:
    decision = _decide(_e2e({"tests": 5, "failures": 0, "errors": 0, "skipped": 4}))
    assert decision.verdict == "PASSED"


def test_a_contradicted_newer_result_is_not_skipped_for_an_older_pass() -> None:
    bad = {"tests": 12, "failures": 1, "errors": 0, "skipped": 0}
    decision = _decide(_e2e(None, finished=NOW - 2 * HOUR), _e2e(bad, finished=NOW - HOUR))
    assert decision.verdict == "FAILED"
    assert ids_by_artifact(decision) == {"backend": {"lane.failed"}, "frontend": {"lane.failed"}}


def test_a_contradicted_result_tied_with_an_honest_pass_disagrees() -> None:
    bad = {"tests": 12, "failures": 1, "errors": 0, "skipped": 0}
    decision = _decide(_e2e(None), _e2e(bad))
    assert decision.verdict == "FAILED"
    assert "disagree: FAILED, PASSED" in _messages(decision, "frontend")[0]


def test_only_the_contradicted_lane_fails() -> None:
    decision = _decide(_e2e({"tests": 1, "failures": 1, "errors": 0, "skipped": 0}))
    for name in ("backend", "frontend"):
        assert [f.requirement for f in decision.artifacts[name].findings] == ["lane:e2e"]
