"""Statement and predicate builders round-trip through the gate's readers in evidence/model."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digestgate.ci import CiContext, detect_ci, with_overrides
from digestgate.digest import Digest
from digestgate.errors import UsageError
from digestgate.evidence.model import (
    BUILD_TYPE,
    PROVENANCE,
    STATEMENT_TYPE,
    TEST_RESULT,
    VERIFIER_ID,
    VSA,
    Statement,
    Subject,
    read_provenance,
    read_test_result,
    read_vsa,
)
from digestgate.evidence.model import TestCounts as Counts
from digestgate.evidence.statements import (
    MAX_FAILED_TESTS,
    MAX_TEST_NAME,
    provenance_predicate,
    statement_bytes,
    vsa_predicate,
)
from digestgate.evidence.statements import test_result_predicate as lane_predicate
from digestgate.jsonutil import dumps_canonical

SHA = "0123456789abcdef0123456789abcdef01234567"
BACKEND = Subject("backend", Digest.of(b"backend manifest"))
FRONTEND = Subject("frontend", Digest.of(b"frontend manifest"))
T0 = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 26, 10, 7, 30, tzinfo=UTC)

_text = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30).filter(
    lambda s: s.strip() == s and s != ""
)
_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))
_names = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True)
_digests = st.binary(max_size=16).map(Digest.of)


def _statement(predicate_type: str, predicate: dict[str, Any]) -> Statement:
    return Statement.parse(statement_bytes([BACKEND, FRONTEND], predicate_type, predicate))


def test_statement_layout_is_canonical() -> None:
    raw = statement_bytes([BACKEND], PROVENANCE, {"b": 1, "a": [2]})
    assert raw == dumps_canonical(json.loads(raw))
    assert json.loads(raw) == {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": "backend", "digest": {"sha256": BACKEND.digest.hex}}],
        "predicateType": PROVENANCE,
        "predicate": {"a": [2], "b": 1},
    }


def test_statement_needs_sha256_subjects() -> None:
    with pytest.raises(ValueError, match="at least one subject"):
        statement_bytes([], PROVENANCE, {})
    with pytest.raises(ValueError, match="sha256"):
        statement_bytes([Subject("x", Digest.of(b"x", "sha512"))], PROVENANCE, {})


GITEA_ENV = {
    "GITEA_ACTIONS": "true",
    "GITHUB_SERVER_URL": "https://git.example.org",
    "GITHUB_REPOSITORY": "org/app",
    "GITHUB_SHA": SHA,
    "GITHUB_REF": "refs/heads/main",
    "GITHUB_EVENT_NAME": "push",
    "GITHUB_RUN_ID": "4242",
    "GITHUB_RUN_ATTEMPT": "1",
    "GITHUB_WORKFLOW_REF": "org/app/.gitea/workflows/release.yml@refs/heads/main",
}


def test_provenance_layout() -> None:
    predicate = provenance_predicate(detect_ci(GITEA_ENV), started_on=T0, finished_on=T1)
    assert predicate == {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "workflow": {
                    "repository": "https://git.example.org/org/app",
                    "ref": "refs/heads/main",
                    "path": ".gitea/workflows/release.yml",
                }
            },
            "internalParameters": {
                "ci": "gitea",
                "event_name": "push",
                "run_id": "4242",
                "run_attempt": "1",
            },
            "resolvedDependencies": [
                {
                    "uri": "git+https://git.example.org/org/app@refs/heads/main",
                    "digest": {"gitCommit": SHA},
                }
            ],
        },
        "runDetails": {
            "builder": {
                "id": "https://git.example.org/org/app/.gitea/workflows/release.yml@refs/heads/main"
            },
            "metadata": {
                "invocationId": "https://git.example.org/org/app/actions/runs/4242/attempts/1",
                "startedOn": "2026-11-26T10:00:00Z",
                "finishedOn": "2026-11-26T10:07:30Z",
            },
        },
    }
    info = read_provenance(_statement(PROVENANCE, predicate))
    assert (info.repository, info.revision, info.event, info.run_id) == (
        "https://git.example.org/org/app",
        SHA,
        "push",
        "4242",
    )


@pytest.mark.parametrize(
    "missing", ["GITHUB_SHA", "GITHUB_REF", "GITHUB_EVENT_NAME", "GITHUB_RUN_ID"]
)
def test_provenance_needs_the_source(missing: str) -> None:
    env = {k: v for k, v in GITEA_ENV.items() if k != missing}
    with pytest.raises(UsageError, match="provenance needs"):
        provenance_predicate(detect_ci(env), started_on=None, finished_on=T1)


@given(
    repo=st.from_regex(r"[a-z][a-z0-9-]{0,10}/[a-z][a-z0-9._-]{0,10}", fullmatch=True),
    revision=st.from_regex(r"[0-9a-f]{40}|[0-9a-f]{64}", fullmatch=True),
    ref=st.from_regex(r"refs/(heads|tags)/[a-zA-Z0-9._/@-]{1,20}", fullmatch=True),
    event=st.sampled_from(["push", "workflow_dispatch", "pull_request", "tag"]),
    run_id=st.from_regex(r"[1-9][0-9]{0,11}", fullmatch=True),
    path=st.none()
    | st.from_regex(r"\.(github|gitea|forgejo)/workflows/[a-z]{1,8}\.ya?ml", fullmatch=True),
    started=st.none() | _times,
    finished=_times,
)
def test_provenance_round_trip(
    repo: str,
    revision: str,
    ref: str,
    event: str,
    run_id: str,
    path: str | None,
    started: datetime | None,
    finished: datetime,
) -> None:
    ctx: CiContext = with_overrides(
        detect_ci({}),
        repository_url=f"https://git.example.org/{repo}",
        revision=revision,
        ref=ref,
        event_name=event,
        run_id=run_id,
        workflow_path=path,
    )
    info = read_provenance(
        _statement(PROVENANCE, provenance_predicate(ctx, started_on=started, finished_on=finished))
    )
    assert info.repository == f"https://git.example.org/{repo}"
    assert (info.ref, info.revision, info.event, info.run_id) == (ref, revision, event, run_id)
    assert info.builder_id == ctx.builder_id
    assert info.workflow_path == path
    assert (info.started_on, info.finished_on) == (started, finished)


@given(
    lane=_names,
    result=st.sampled_from(["PASSED", "WARNED", "FAILED"]),
    revision=st.from_regex(r"[0-9a-f]{40}", fullmatch=True),
    run_id=_text,
    finished=_times,
    url=st.none() | st.just("https://git.example.org/org/app/actions/runs/7"),
    counts=st.none()
    | st.builds(
        Counts,
        tests=st.integers(0, 10**6),
        failures=st.integers(0, 10**6),
        errors=st.integers(0, 10**6),
        skipped=st.integers(0, 10**6),
    ),
    failed=st.lists(st.text(max_size=300), max_size=150),
)
def test_test_result_round_trip(
    lane: str,
    result: Any,
    revision: str,
    run_id: str,
    finished: datetime,
    url: str | None,
    counts: Counts | None,
    failed: list[str],
) -> None:
    predicate = lane_predicate(
        lane=lane,
        result=result,
        revision=revision,
        run_id=run_id,
        finished_on=finished,
        url=url,
        counts=counts,
        failed_tests=failed,
        configuration=[{"uri": "https://git.example.org/org/app/.gitea/workflows/ci.yml"}],
    )
    info = read_test_result(_statement(TEST_RESULT, predicate))
    assert (info.lane, info.result, info.revision, info.run_id) == (lane, result, revision, run_id)
    assert (info.finished_on, info.url, info.counts) == (finished, url, counts)
    assert predicate["failedTests"] == [name[:MAX_TEST_NAME] for name in failed[:MAX_FAILED_TESTS]]
    assert "passedTests" not in predicate


def test_failed_test_names_are_capped() -> None:
    predicate = lane_predicate(
        lane="e2e",
        result="FAILED",
        revision=SHA,
        run_id="1",
        finished_on=T1,
        url=None,
        counts=None,
        failed_tests=["x" * 1000] * 500,
        configuration=[],
    )
    assert len(predicate["failedTests"]) == MAX_FAILED_TESTS
    assert {len(n) for n in predicate["failedTests"]} == {MAX_TEST_NAME}


@given(
    result=st.sampled_from(["PASSED", "FAILED"]),
    policy=_digests,
    resource=st.just("registry.example.org/org/app/backend@sha256:" + "a" * 64),
    inputs=st.lists(st.tuples(st.just("dir:evidence/x.json"), _digests), max_size=5),
    verified=_times,
    kind=st.sampled_from(["gate", "promotion"]),
    source=st.none() | st.just("registry.example.org/staging/backend@sha256:" + "b" * 64),
    findings=st.lists(st.sampled_from(["lane.missing", "provenance.stale"]), max_size=4),
)
def test_vsa_round_trip(
    result: Any,
    policy: Digest,
    resource: str,
    inputs: list[tuple[str, Digest]],
    verified: datetime,
    kind: Any,
    source: str | None,
    findings: list[str],
) -> None:
    predicate = vsa_predicate(
        result=result,
        policy_digest=policy,
        policy_uri="file:policy.yaml",
        resource_uri=resource,
        input_attestations=inputs,
        time_verified=verified,
        kind=kind,
        source=source,
        findings=findings,
    )
    info = read_vsa(_statement(VSA, predicate))
    assert (info.result, info.policy_digest, info.time_verified) == (result, policy, verified)
    assert (info.resource_uri, info.verifier_id, info.kind, info.source) == (
        resource,
        VERIFIER_ID,
        kind,
        source,
    )
    assert predicate["verifiedLevels"] == (
        ["SLSA_BUILD_LEVEL_UNEVALUATED"] if result == "PASSED" else ["FAILED"]
    )
    assert len(predicate["inputAttestations"]) == len(inputs)
    assert predicate["digestgate_findings"] == sorted(set(findings))


def test_vsa_policy_digest_must_be_sha256() -> None:
    with pytest.raises(ValueError, match="sha256"):
        vsa_predicate(
            result="PASSED",
            policy_digest=Digest.of(b"p", "sha512"),
            policy_uri="policy.yaml",
            resource_uri="r",
            input_attestations=[],
            time_verified=T1,
            kind="gate",
            source=None,
            findings=[],
        )
