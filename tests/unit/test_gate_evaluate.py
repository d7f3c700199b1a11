"""The gate's decision rules, one hostile or benign case at a time.

Every test asserts the verdict and the exact finding ids per artifact ("*" = release-level).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digestgate.evidence.model import EvidenceProblem, VerifiedEvidence
from digestgate.report.enforcement import render_json_report
from digestgate.rules.decision import Decision, RegistryCheck
from digestgate.rules.evaluate import evaluate
from digestgate.rules.findings import ALL_IDS, HINTS, is_blocking
from tests.unit.gatekit import (
    BACKEND,
    BOTH,
    FRONTEND,
    HOUR,
    NOW,
    OTHER_REVISION,
    POLICY,
    REGISTRY,
    SIBLING,
    FakeSource,
    good_evidence,
    ids_by_artifact,
    image,
    lane,
    policy,
    provenance,
    release,
    verified,
)

Expected = Mapping[str, set[str]]


def decide(
    evidence: list[VerifiedEvidence] | None = None,
    *,
    rel: object = None,
    text: str = POLICY,
    problems: list[EvidenceProblem] | None = None,
    registry: Mapping[str, RegistryCheck] | None = None,
) -> Decision:
    return evaluate(
        policy(text),
        rel if rel is not None else release(),  # type: ignore[arg-type]
        good_evidence() if evidence is None else evidence,
        problems or [],
        NOW,
        registry,
    )


def check(decision: Decision, verdict: str, expected: Expected) -> None:
    assert decision.verdict == verdict
    assert ids_by_artifact(decision) == dict(expected)


def without(index: int) -> list[VerifiedEvidence]:
    items = good_evidence()
    del items[index]
    return items


def replaced(index: int, new: VerifiedEvidence) -> list[VerifiedEvidence]:
    items = good_evidence()
    items[index] = new
    return items


def test_complete_evidence_passes() -> None:
    decision = decide()
    check(decision, "PASSED", {})
    backend = decision.artifacts["backend"]
    assert backend.digest == BACKEND
    assert [r.requirement for r in backend.requirements] == [
        "artifact",
        "provenance",
        "lane:e2e",
        "lane:fast-check",
    ]
    assert all(r.passed for r in backend.requirements)
    # provenance, fast-check and the shared e2e statement were used for the backend
    assert len(backend.evidence) == 3
    assert {e.predicate_type.rsplit("/", 2)[-2] for e in backend.evidence} >= {"provenance"}


def test_every_finding_id_has_a_hint_and_evidence_ids_do_not_block() -> None:
    assert len(ALL_IDS) == 36
    assert all(HINTS[i] for i in ALL_IDS)
    assert not is_blocking("evidence.malformed")
    assert not is_blocking("evidence.unverified")
    assert not is_blocking("evidence.future-time")
    assert is_blocking("evidence.name-mismatch")
    assert is_blocking("lane.source-mismatch")


# --- references and release membership ------------------------------------------------------


def test_tag_only_reference_blocks_the_artifact() -> None:
    rel = release(
        {"backend": f"{REGISTRY}/backend:latest", "frontend": image("frontend", FRONTEND)}
    )
    decision = decide(rel=rel)
    check(
        decision,
        "FAILED",
        {"backend": {"reference.not-digest"}, "frontend": {"lane.not-together"}},
    )
    rows = {r.requirement: r for r in decision.artifacts["backend"].requirements}
    assert not rows["provenance"].passed
    assert rows["provenance"].reason == "not evaluated: no digest"


@pytest.mark.parametrize(
    "bad",
    [
        "sha256:" + BACKEND.hex.upper(),
        "sha256:" + BACKEND.hex[:12],
        "sha256:" + "z" * 64,
        "md5:" + "0" * 32,
    ],
    ids=["uppercase", "short", "non-hex", "algorithm"],
)
def test_malformed_digest_is_reference_invalid(bad: str) -> None:
    rel = release({"backend": f"{REGISTRY}/backend@{bad}", "frontend": image("frontend", FRONTEND)})
    check(
        decide(rel=rel),
        "FAILED",
        {"backend": {"reference.invalid"}, "frontend": {"lane.not-together"}},
    )


def test_missing_artifact() -> None:
    rel = release({"backend": image("backend", BACKEND)})
    evidence = [
        verified(provenance({"backend": BACKEND})),
        verified(lane("fast-check", {"backend": BACKEND}), ["tests"]),
        verified(lane("e2e", {"backend": BACKEND}), ["tests"]),
    ]
    check(decide(evidence, rel=rel), "FAILED", {"*": {"release.missing-artifact"}})


def test_unexpected_artifact() -> None:
    worker = BACKEND.of(b"worker")
    rel = release(
        {
            "backend": image("backend", BACKEND),
            "frontend": image("frontend", FRONTEND),
            "worker": image("worker", worker),
        }
    )
    # e2e covering backend+frontend is no longer "exactly the release's artifacts"
    check(
        decide(rel=rel),
        "FAILED",
        {
            "*": {"release.unexpected-artifact"},
            "backend": {"lane.not-together"},
            "frontend": {"lane.not-together"},
        },
    )


def test_artifact_from_another_repository() -> None:
    rel = release(
        {
            "backend": f"registry.evil.example/org/staging/backend@{BACKEND}",
            "frontend": image("frontend", FRONTEND),
        }
    )
    check(decide(rel=rel), "FAILED", {"backend": {"artifact.wrong-repository"}})


def test_denied_digest() -> None:
    text = POLICY.replace("deny: []", f'deny: ["{BACKEND}"]')
    check(decide(text=text), "FAILED", {"backend": {"artifact.denied"}})


# --- subject binding ----------------------------------------------------------------------


def test_statement_for_another_digest_does_not_count() -> None:
    other = BACKEND.of(b"an older backend build")
    check(
        decide(replaced(0, verified(provenance({"backend": other})))),
        "FAILED",
        {"backend": {"provenance.missing"}},
    )


def test_statement_for_a_sibling_platform_manifest_does_not_count() -> None:
    check(
        decide(replaced(2, verified(lane("fast-check", {"backend": SIBLING}), ["tests"]))),
        "FAILED",
        {"backend": {"lane.missing"}},
    )


def test_backend_and_frontend_digests_swapped_between_names() -> None:
    swapped = {"backend": FRONTEND, "frontend": BACKEND}
    evidence = [
        verified(provenance({"backend": FRONTEND})),
        verified(provenance({"frontend": BACKEND})),
        verified(lane("fast-check", swapped), ["tests"]),
        verified(lane("e2e", swapped), ["tests"]),
    ]
    per = {"evidence.name-mismatch", "provenance.missing", "lane.missing"}
    check(decide(evidence), "FAILED", {"backend": per, "frontend": per})


def test_release_swapped_against_evidence() -> None:
    rel = release({"backend": image("backend", FRONTEND), "frontend": image("frontend", BACKEND)})
    per = {"evidence.name-mismatch", "provenance.missing", "lane.missing"}
    check(decide(rel=rel), "FAILED", {"backend": per, "frontend": per})


# --- provenance ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "finding"),
    [
        ({"repo": "https://git.example.org/evil/app"}, "provenance.source-mismatch"),
        ({"ref": "refs/heads/feature/pr-7"}, "provenance.source-mismatch"),
        ({"ref": "refs/pull/7/head"}, "provenance.source-mismatch"),
        ({"event": "pull_request"}, "provenance.source-mismatch"),
        ({"revision": OTHER_REVISION}, "provenance.source-mismatch"),
        ({"run": "4241"}, "provenance.source-mismatch"),
        (
            {"builder": "https://git.example.org/org/app/.gitea/workflows/pr.yml@refs/heads/x"},
            "provenance.builder-mismatch",
        ),
        ({"finished": NOW - 8 * 24 * HOUR}, "provenance.stale"),
    ],
    ids=["repository", "branch", "pr-ref", "pr-event", "revision", "run", "builder", "stale"],
)
def test_provenance_rejections(kwargs: dict[str, object], finding: str) -> None:
    bad = verified(provenance({"backend": BACKEND}, **kwargs))  # type: ignore[arg-type]
    check(decide(replaced(0, bad)), "FAILED", {"backend": {finding}})


def test_tag_ref_allowed_by_glob() -> None:
    ok = verified(provenance({"backend": BACKEND}, ref="refs/tags/v1.2.3"))
    check(decide(replaced(0, ok)), "PASSED", {})


def test_provenance_signed_by_tests_key_is_untrusted() -> None:
    bad = verified(provenance({"backend": BACKEND}), ["tests"])
    check(decide(replaced(0, bad)), "FAILED", {"backend": {"provenance.untrusted-signer"}})


def test_missing_provenance() -> None:
    check(decide(without(1)), "FAILED", {"frontend": {"provenance.missing"}})


def test_threshold_counts_distinct_keys_not_signatures() -> None:
    text = POLICY.replace("threshold: 1", "threshold: 2")
    same_key_twice = [
        *good_evidence(),
        verified(provenance({"backend": BACKEND}, finished=NOW - 2 * HOUR)),
        verified(provenance({"frontend": FRONTEND}, finished=NOW - 2 * HOUR)),
    ]
    check(
        decide(same_key_twice, text=text),
        "FAILED",
        {"backend": {"provenance.untrusted-signer"}, "frontend": {"provenance.untrusted-signer"}},
    )
    two_keys = [
        *good_evidence(),
        verified(provenance({"backend": BACKEND}), ["build2"]),
        verified(provenance({"frontend": FRONTEND}), ["build", "build2"]),
    ]
    check(decide(two_keys, text=text), "PASSED", {})


def test_threshold_keys_must_agree_on_one_revision() -> None:
    text = POLICY.replace("threshold: 1", "threshold: 2").replace(
        "sameRevision: true", "sameRevision: false"
    )
    evidence = [
        *good_evidence(),
        verified(provenance({"backend": BACKEND}, revision=OTHER_REVISION), ["build2"]),
        verified(provenance({"frontend": FRONTEND}), ["build2"]),
    ]
    check(decide(evidence, text=text), "FAILED", {"backend": {"provenance.untrusted-signer"}})


def test_two_names_for_one_key_count_once() -> None:
    text = POLICY.replace("threshold: 1", "threshold: 2")
    base = policy(text)
    same = dataclasses.replace(base.keys["build2"], keyid=base.keys["build"].keyid)
    pol = dataclasses.replace(base, keys={**base.keys, "build2": same})
    evidence = [
        *good_evidence(),
        verified(provenance({"backend": BACKEND}), ["build2"]),
        verified(provenance({"frontend": FRONTEND}), ["build2"]),
    ]
    decision = evaluate(pol, release(), evidence, [], NOW)
    check(
        decision,
        "FAILED",
        {"backend": {"provenance.untrusted-signer"}, "frontend": {"provenance.untrusted-signer"}},
    )


def test_backend_and_frontend_from_different_revisions() -> None:
    evidence = [
        verified(provenance({"frontend": FRONTEND}, revision=OTHER_REVISION)),
        verified(lane("fast-check", {"frontend": FRONTEND}, revision=OTHER_REVISION), ["tests"]),
    ]
    base = good_evidence()
    mixed = [base[0], base[2], base[4], *evidence]
    # sameRevision: the frontend does not match the release's revision
    check(
        decide(mixed),
        "FAILED",
        {"frontend": {"provenance.source-mismatch", "lane.revision-mismatch"}},
    )
    # without sameRevision the release is still one revision: mixed revisions are refused
    text = POLICY.replace("sameRevision: true", "sameRevision: false")
    # (and the e2e run, at the release's revision, did not test the frontend that was built)
    check(
        decide(mixed, text=text),
        "FAILED",
        {"*": {"release.mixed-revisions"}, "frontend": {"lane.revision-mismatch"}},
    )


def test_mixed_runs_when_the_release_records_no_run() -> None:
    rel = release(source=FakeSource(run_id=None))
    evidence = good_evidence()
    evidence[1] = verified(provenance({"frontend": FRONTEND}, run="999"))
    check(
        decide(evidence, rel=rel),
        "FAILED",
        {"*": {"release.mixed-runs"}, "frontend": {"lane.revision-mismatch"}},
    )
    text = POLICY.replace("sameRun: true", "sameRun: false")
    check(decide(evidence, rel=rel, text=text), "PASSED", {})


# --- lanes ----------------------------------------------------------------------------------


def test_failed_lane() -> None:
    bad = verified(lane("fast-check", {"backend": BACKEND}, result="FAILED"), ["tests"])
    check(decide(replaced(2, bad)), "FAILED", {"backend": {"lane.failed"}})


def test_warned_lane_does_not_pass() -> None:
    warned = verified(lane("fast-check", {"backend": BACKEND}, result="WARNED"), ["tests"])
    check(decide(replaced(2, warned)), "FAILED", {"backend": {"lane.failed"}})


def test_failed_result_newer_than_passed_one_decides() -> None:
    newer = verified(
        lane("fast-check", {"backend": BACKEND}, result="FAILED", finished=NOW - HOUR / 2),
        ["tests"],
    )
    check(decide([*good_evidence(), newer]), "FAILED", {"backend": {"lane.failed"}})


def test_newer_failed_result_for_one_artifact_beats_an_older_run_covering_more() -> None:
    # fast-check is not a `together` lane: an older PASSED run over both images must not
    # outvote a newer FAILED run over the backend alone.
    both_passed = verified(lane("fast-check", BOTH, finished=NOW - 2 * HOUR), ["tests"])
    backend_failed = verified(
        lane("fast-check", {"backend": BACKEND}, result="FAILED", finished=NOW - HOUR),
        ["tests"],
    )
    evidence = [e for e in good_evidence() if "fast-check" not in str(e.statement.raw)]
    check(
        decide([*evidence, both_passed, backend_failed]),
        "FAILED",
        {"backend": {"lane.failed"}},
    )
    check(decide([*evidence, both_passed]), "PASSED", {})


def test_passed_result_newer_than_failed_one_decides() -> None:
    older = verified(
        lane("fast-check", {"backend": BACKEND}, result="FAILED", finished=NOW - 2 * HOUR),
        ["tests"],
    )
    check(decide([*good_evidence(), older]), "PASSED", {})


def test_tie_between_different_results_fails() -> None:
    tie = verified(lane("fast-check", {"backend": BACKEND}, result="FAILED"), ["tests"])
    decision = decide([*good_evidence(), tie])
    check(decision, "FAILED", {"backend": {"lane.failed"}})
    assert "disagree" in decision.artifacts["backend"].findings[0].message


def test_passed_result_older_than_max_age() -> None:
    old = verified(
        lane("fast-check", {"backend": BACKEND}, finished=NOW - 8 * 24 * HOUR), ["tests"]
    )
    check(decide(replaced(2, old)), "FAILED", {"backend": {"lane.stale"}})


def test_finish_time_in_the_future_never_counts() -> None:
    future = verified(
        lane("fast-check", {"backend": BACKEND}, finished=NOW + 10 * 60 * HOUR / 60), ["tests"]
    )
    check(
        decide(replaced(2, future)),
        "FAILED",
        {"backend": {"evidence.future-time", "lane.missing"}},
    )
    future_prov = verified(provenance({"backend": BACKEND}, finished=NOW + HOUR))
    check(
        decide(replaced(0, future_prov)),
        "FAILED",
        {"backend": {"evidence.future-time", "provenance.missing"}},
    )


def test_small_clock_skew_is_tolerated() -> None:
    skewed = verified(lane("fast-check", {"backend": BACKEND}, finished=NOW + HOUR / 20), ["tests"])
    check(decide(replaced(2, skewed)), "PASSED", {})


def test_together_lane_covering_only_the_backend() -> None:
    partial = [
        *good_evidence()[:4],
        verified(lane("e2e", {"backend": BACKEND}), ["tests"]),
        verified(lane("e2e", {"frontend": FRONTEND}), ["tests"]),
    ]
    check(
        decide(partial),
        "FAILED",
        {"backend": {"lane.not-together"}, "frontend": {"lane.not-together"}},
    )


def test_together_lane_covering_a_superset() -> None:
    extra = {**BOTH, "worker": BACKEND.of(b"worker")}
    check(
        decide(replaced(4, verified(lane("e2e", extra), ["tests"]))),
        "FAILED",
        {"backend": {"lane.not-together"}, "frontend": {"lane.not-together"}},
    )


def test_lane_signed_by_a_provenance_key() -> None:
    bad = verified(lane("e2e", BOTH), ["build"])
    check(
        decide(replaced(4, bad)),
        "FAILED",
        {"backend": {"lane.untrusted-signer"}, "frontend": {"lane.untrusted-signer"}},
    )


def test_lane_missing() -> None:
    check(decide(without(3)), "FAILED", {"frontend": {"lane.missing"}})


def test_lane_from_another_revision_or_run() -> None:
    other_rev = verified(lane("e2e", BOTH, revision=OTHER_REVISION), ["tests"])
    per = {"lane.revision-mismatch"}
    check(decide(replaced(4, other_rev)), "FAILED", {"backend": per, "frontend": per})
    other_run = verified(lane("e2e", BOTH, run="1"), ["tests"])
    check(decide(replaced(4, other_run)), "FAILED", {"backend": per, "frontend": per})


def test_non_together_lane_accepts_a_shared_statement() -> None:
    shared = [
        *good_evidence()[:2],
        good_evidence()[4],
        verified(lane("fast-check", BOTH), ["tests"]),
    ]
    check(decide(shared), "PASSED", {})


# --- evidence problems, duplicates, registry ------------------------------------------------


def test_same_evidence_twice_counts_once() -> None:
    evidence = good_evidence()
    copy = verified(provenance({"backend": BACKEND}), origin="attached:backend")
    decision = decide([*evidence, copy])
    check(decision, "PASSED", {})
    assert len(decision.artifacts["backend"].evidence) == 3


def test_unrelated_malformed_evidence_beside_valid_evidence() -> None:
    problems = [
        EvidenceProblem("malformed", "dir:evidence/junk.json", "not JSON"),
        EvidenceProblem("unverified", "dir:evidence/x.json", "no trusted key verifies it"),
    ]
    decision = decide(problems=problems)
    check(decision, "PASSED", {"*": {"evidence.malformed", "evidence.unverified"}})


def test_verified_but_unreadable_predicate_is_malformed_and_does_not_count() -> None:
    doc = provenance({"backend": BACKEND})
    del doc["predicate"]["runDetails"]
    check(
        decide(replaced(0, verified(doc))),
        "FAILED",
        {"backend": {"evidence.malformed", "provenance.missing"}},
    )


def test_evidence_about_other_digests_is_ignored() -> None:
    unrelated = verified(provenance({"other": BACKEND.of(b"x")}, repo="https://evil"))
    check(decide([*good_evidence(), unrelated]), "PASSED", {})


def test_unverified_evidence_alone_never_passes() -> None:
    problems = [EvidenceProblem("unverified", f"dir:e/{i}.json", "bad signature") for i in range(5)]
    decision = decide([], problems=problems)
    assert decision.verdict == "FAILED"
    assert ids_by_artifact(decision)["*"] == {"evidence.unverified"}
    assert ids_by_artifact(decision)["backend"] == {"provenance.missing", "lane.missing"}


def test_registry_checks() -> None:
    registry = {
        "backend": RegistryCheck("not-found", "served sha256:0000"),
        "frontend": RegistryCheck("ok"),
    }
    check(decide(registry=registry), "FAILED", {"backend": {"artifact.not-found"}})
    ok = {"backend": RegistryCheck("ok"), "frontend": RegistryCheck("ok")}
    check(decide(registry=ok), "PASSED", {})


def test_monotonic_removing_any_statement_never_turns_fail_into_pass() -> None:
    full = good_evidence()
    for index in range(len(full)):
        reduced = full[:index] + full[index + 1 :]
        assert decide(reduced).verdict == "FAILED"


# --- properties ---------------------------------------------------------------------------

POOL = [
    *good_evidence(),
    verified(
        lane("fast-check", {"backend": BACKEND}, result="FAILED", finished=NOW - 2 * HOUR),
        ["tests"],
    ),
    verified(lane("e2e", {"backend": BACKEND}), ["tests"]),
    verified(provenance({"backend": FRONTEND})),
    verified(provenance({"backend": BACKEND}, event="pull_request")),
    verified(lane("e2e", BOTH, result="FAILED", finished=NOW - 3 * HOUR), ["tests"]),
    verified(lane("fast-check", {"frontend": FRONTEND}), ["build"]),
]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(range(len(POOL))), max_size=len(POOL) + 3))
def test_decision_ignores_order_and_copies(picks: list[int]) -> None:
    chosen = [POOL[i] for i in picks]
    first = decide(chosen)
    again = decide(list(reversed(chosen)) + chosen[:2])
    assert render_json_report(first, "enforce") == render_json_report(again, "enforce")
    # a pass needs every statement of the complete set that nothing else can replace
    if first.passed:
        assert {0, 1, 2, 3, 4} <= set(picks)
