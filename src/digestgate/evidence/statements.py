"""Builders for the statements digestgate signs (pure): canonical in-toto Statement bytes and
the three predicates, laid out exactly as :mod:`digestgate.evidence.model` reads them.

Extension fields are named ``digestgate_<field>`` (SLSA's extension-field convention: real
fields never contain ``_``). Unknown or empty values are omitted rather than written as
``null`` (SLSA: unset, null and empty are the same).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final, Literal

from digestgate._version import __version__
from digestgate.ci import CiContext
from digestgate.digest import Digest
from digestgate.errors import UsageError
from digestgate.evidence.model import (
    BUILD_TYPE,
    STATEMENT_TYPE,
    VERIFIER_ID,
    LaneResult,
    Subject,
    TestCounts,
    VsaResult,
)
from digestgate.jsonutil import dumps_canonical
from digestgate.timeutil import format_timestamp

#: At most this many failed test names are recorded, each cut to MAX_TEST_NAME characters.
MAX_FAILED_TESTS: Final = 100
MAX_TEST_NAME: Final = 200

VsaKind = Literal["gate", "promotion"]


def statement_bytes(
    subjects: Sequence[Subject], predicate_type: str, predicate: Mapping[str, Any]
) -> bytes:
    """The canonical JSON bytes of an in-toto Statement v1 (subject digests as sha256 hex)."""
    if not subjects:
        raise ValueError("a statement needs at least one subject")
    entries = []
    for subject in subjects:
        if subject.digest.algorithm != "sha256":
            raise ValueError(f"subject {subject.name!r}: only sha256 digests are recorded")
        entries.append({"name": subject.name, "digest": {"sha256": subject.digest.hex}})
    return dumps_canonical(
        {
            "_type": STATEMENT_TYPE,
            "subject": entries,
            "predicateType": predicate_type,
            "predicate": dict(predicate),
        }
    )


def _required(value: str | None, what: str, flag: str) -> str:
    if not value:
        raise UsageError(
            f"provenance needs the {what}, which the CI environment did not provide",
            hint=f"run inside GitHub, Gitea or Forgejo Actions, or pass {flag}",
        )
    return value


def _without_empty(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v is not None and v != ""}


def provenance_predicate(
    ci: CiContext, *, started_on: datetime | None, finished_on: datetime
) -> dict[str, Any]:
    """SLSA Provenance v1 for a build described by ``ci`` (layout: evidence/model.py)."""
    repository = _required(ci.repository_url, "source repository", "--source-repo")
    ref = _required(ci.ref, "git ref", "--ref")
    revision = _required(ci.revision, "source revision", "--revision")
    event = _required(ci.event_name, "triggering event", "--event")
    run_id = _required(ci.run_id, "run id", "--run-id")
    builder_id = _required(ci.builder_id, "builder id", "--builder-id")
    invocation = None
    if ci.run_url:
        invocation = ci.run_url + (f"/attempts/{ci.run_attempt}" if ci.run_attempt else "")
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "workflow": _without_empty(
                    {"repository": repository, "ref": ref, "path": ci.workflow_path}
                )
            },
            "internalParameters": _without_empty(
                {
                    "ci": ci.platform,
                    "event_name": event,
                    "run_id": run_id,
                    "run_attempt": ci.run_attempt,
                }
            ),
            "resolvedDependencies": [
                {"uri": f"git+{repository}@{ref}", "digest": {"gitCommit": revision}}
            ],
        },
        "runDetails": {
            "builder": {"id": builder_id},
            "metadata": _without_empty(
                {
                    "invocationId": invocation,
                    "startedOn": format_timestamp(started_on) if started_on else None,
                    "finishedOn": format_timestamp(finished_on),
                }
            ),
        },
    }


def cap_test_names(names: Sequence[str]) -> list[str]:
    """The first MAX_FAILED_TESTS names, each at most MAX_TEST_NAME characters."""
    return [name[:MAX_TEST_NAME] for name in names[:MAX_FAILED_TESTS]]


def test_result_predicate(
    *,
    lane: str,
    result: LaneResult,
    revision: str,
    run_id: str,
    finished_on: datetime,
    url: str | None,
    counts: TestCounts | None,
    failed_tests: Sequence[str],
    configuration: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """in-toto test-result v0.1 for one lane, with digestgate's extension fields.

    ``passedTests`` is not written: names of passing tests are not collected, and an empty
    list would wrongly claim that none passed.
    """
    if result not in ("PASSED", "WARNED", "FAILED"):
        raise ValueError(f"invalid lane result {result!r}")
    if not lane or not revision or not run_id:
        raise ValueError("a lane result needs a lane, a revision and a run id")
    predicate: dict[str, Any] = {
        "result": result,
        "configuration": [dict(c) for c in configuration],
        "failedTests": cap_test_names(failed_tests),
        "digestgate_lane": lane,
        "digestgate_revision": revision,
        "digestgate_runId": run_id,
        "digestgate_finishedOn": format_timestamp(finished_on),
    }
    if url:
        predicate["url"] = url
    if counts is not None:
        predicate["digestgate_counts"] = {
            "tests": counts.tests,
            "failures": counts.failures,
            "errors": counts.errors,
            "skipped": counts.skipped,
        }
    return predicate


def vsa_predicate(
    *,
    result: VsaResult,
    policy_digest: Digest,
    policy_uri: str,
    resource_uri: str,
    input_attestations: Sequence[tuple[str, Digest]],
    time_verified: datetime,
    kind: VsaKind,
    source: str | None,
    findings: Sequence[str],
) -> dict[str, Any]:
    """SLSA VSA v1 for a gate decision (``kind="gate"``) or a promotion record.

    ``verifiedLevels`` says ``FAILED`` when the policy failed; digestgate does not evaluate
    SLSA build levels, so a pass records ``SLSA_BUILD_LEVEL_UNEVALUATED``.
    """
    if result not in ("PASSED", "FAILED"):
        raise ValueError(f"invalid verification result {result!r}")
    if kind not in ("gate", "promotion"):
        raise ValueError(f"invalid VSA kind {kind!r}")
    if policy_digest.algorithm != "sha256":
        raise ValueError("the policy digest must be sha256")
    predicate: dict[str, Any] = {
        "verifier": {"id": VERIFIER_ID, "version": {"digestgate": __version__}},
        "timeVerified": format_timestamp(time_verified),
        "resourceUri": resource_uri,
        "policy": {"uri": policy_uri, "digest": {"sha256": policy_digest.hex}},
        "inputAttestations": [
            {"uri": uri, "digest": {digest.algorithm: digest.hex}}
            for uri, digest in sorted(input_attestations, key=lambda item: (item[1], item[0]))
        ],
        "verificationResult": result,
        "verifiedLevels": ["SLSA_BUILD_LEVEL_UNEVALUATED"] if result == "PASSED" else ["FAILED"],
        "digestgate_kind": kind,
        "digestgate_findings": sorted(set(findings)),
    }
    if source:
        predicate["digestgate_source"] = source
    return predicate
