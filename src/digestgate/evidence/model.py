"""Statements, verified evidence and typed views of digestgate's three predicates (pure).

This module is the contract between the signing layer (which turns envelopes into
:class:`VerifiedEvidence` after checking signatures) and the gate (which only ever sees
verified evidence). Every reader here takes a :class:`Statement` parsed from bytes whose
signature was already verified, and raises :class:`EvidenceFormatError` with a one-line
reason when a field is missing or ill-typed: malformed evidence never counts as passing.

Predicate layouts written by digestgate (see docs/evidence.md):

SLSA Provenance v1 (``https://slsa.dev/provenance/v1``)::

    buildDefinition.buildType            BUILD_TYPE
    buildDefinition.externalParameters   {"workflow": {"repository", "ref", "path"}}
    buildDefinition.internalParameters   {"ci", "event_name", "run_id", "run_attempt"}
    buildDefinition.resolvedDependencies [{"uri": "git+<repo>@<ref>",
                                           "digest": {"gitCommit": <revision>}}]
    runDetails.builder.id                <server>/<repo>/<workflow path>@<ref>
    runDetails.metadata                  {"invocationId", "startedOn", "finishedOn"}

Test result v0.1 (``https://in-toto.io/attestation/test-result/v0.1``), with extension fields
named ``digestgate_<field>`` (SLSA's extension-field convention)::

    result, configuration, url, passedTests, failedTests
    digestgate_lane, digestgate_revision, digestgate_runId, digestgate_finishedOn,
    digestgate_counts {"tests", "failures", "errors", "skipped"}

SLSA VSA v1 (``https://slsa.dev/verification_summary/v1``)::

    verifier.id = VERIFIER_ID, timeVerified, resourceUri, policy {"uri", "digest": {"sha256"}},
    inputAttestations, verificationResult, verifiedLevels,
    digestgate_kind ("gate" | "promotion"), digestgate_source (promotion: the source location)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from digestgate.digest import Digest
from digestgate.errors import InvalidReferenceError
from digestgate.jsonutil import JSONFormatError, loads_strict
from digestgate.timeutil import parse_timestamp

STATEMENT_TYPE: Final = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE: Final = "application/vnd.in-toto+json"

PROVENANCE: Final = "https://slsa.dev/provenance/v1"
TEST_RESULT: Final = "https://in-toto.io/attestation/test-result/v0.1"
VSA: Final = "https://slsa.dev/verification_summary/v1"

#: predicate type -> the short name used in media types and file names.
PREDICATE_NAMES: Final[Mapping[str, str]] = {
    PROVENANCE: "provenance",
    TEST_RESULT: "test-result",
    VSA: "vsa",
}

BUILD_TYPE: Final = "https://digestgate.dev/buildtypes/actions/v1"
VERIFIER_ID: Final = "https://digestgate.dev/verifier/v1"

LaneResult = Literal["PASSED", "WARNED", "FAILED"]
VsaResult = Literal["PASSED", "FAILED"]


class EvidenceFormatError(ValueError):
    """A verified statement whose content does not have the expected shape."""


@dataclass(frozen=True, slots=True)
class Subject:
    """A statement subject: artifact name and image digest."""

    name: str
    digest: Digest


@dataclass(frozen=True, slots=True)
class Statement:
    """An in-toto Statement v1 parsed from the exact payload bytes that were verified."""

    predicate_type: str
    subjects: tuple[Subject, ...]
    predicate: Mapping[str, Any]
    raw: bytes

    @property
    def digests(self) -> frozenset[Digest]:
        """Every subject digest."""
        return frozenset(s.digest for s in self.subjects)

    @classmethod
    def parse(cls, payload: bytes) -> Statement:
        """Parse verified payload bytes; raise :class:`EvidenceFormatError` when malformed.

        Subjects must carry a name and a sha256 digest (other algorithms are ignored per the
        in-toto DigestSet rules; a subject with no sha256 is refused, since the gate matches
        image digests by sha256 only).
        """
        try:
            doc = loads_strict(payload)
        except JSONFormatError as exc:
            raise EvidenceFormatError(f"statement is not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise EvidenceFormatError("statement is not a JSON object")
        if doc.get("_type") != STATEMENT_TYPE:
            raise EvidenceFormatError(f"statement _type is not {STATEMENT_TYPE}")
        predicate_type = doc.get("predicateType")
        if not isinstance(predicate_type, str) or not predicate_type:
            raise EvidenceFormatError("statement has no predicateType")
        raw_subjects = doc.get("subject")
        if not isinstance(raw_subjects, list) or not raw_subjects:
            raise EvidenceFormatError("statement has no subjects")
        subjects: list[Subject] = []
        for entry in raw_subjects:
            if not isinstance(entry, dict):
                raise EvidenceFormatError("a subject is not an object")
            name = entry.get("name")
            digest_set = entry.get("digest")
            if not isinstance(name, str) or not name:
                raise EvidenceFormatError("a subject has no name")
            if not isinstance(digest_set, dict) or not isinstance(digest_set.get("sha256"), str):
                raise EvidenceFormatError(f"subject {name[:64]!r} has no sha256 digest")
            try:
                digest = Digest("sha256", digest_set["sha256"])
            except InvalidReferenceError:
                raise EvidenceFormatError(f"subject {name[:64]!r} has an invalid digest") from None
            subjects.append(Subject(name, digest))
        predicate = doc.get("predicate")
        if predicate is None:
            predicate = {}
        if not isinstance(predicate, dict):
            raise EvidenceFormatError("predicate is not an object")
        return cls(predicate_type, tuple(subjects), predicate, payload)


@dataclass(frozen=True, slots=True)
class CertificateFacts:
    """What a verified Sigstore signing certificate says (Fulcio extensions, docs/sigstore.md).

    These values were signed by the certificate authority, not by the workflow: for
    evidence from a Sigstore bundle the gate takes the source, ref, revision, trigger and
    run from here, never from the statement. ``issued`` is the certificate's notBefore,
    at most its validity period (10 minutes on the public-good instance) before signing.
    """

    issuer: str
    identity: str
    source_repository: str | None
    source_ref: str | None
    source_revision: str | None
    trigger: str | None
    run_uri: str | None
    build_config: str | None
    issued: datetime


@dataclass(frozen=True, slots=True)
class VerifiedEvidence:
    """A statement whose envelope was verified by at least one trusted key.

    ``signers`` are the policy's local key names whose keys verified a signature (distinct
    keys: the same key signing twice counts once). ``envelope_digest`` is the sha256 of the
    envelope bytes as stored, used to de-duplicate copies and to name input attestations.
    """

    statement: Statement
    signers: frozenset[str]
    envelope_digest: Digest
    origin: str
    envelope: bytes
    certificate: CertificateFacts | None = None
    """Set when a Sigstore bundle carried the statement (``signers`` are then identities)."""


ProblemKind = Literal["malformed", "unverified"]


@dataclass(frozen=True, slots=True)
class EvidenceProblem:
    """An envelope that could not be used: unreadable, or verified by no trusted key."""

    kind: ProblemKind
    origin: str
    message: str


# --- typed views -------------------------------------------------------------------------


def get_path(obj: Any, path: str) -> Any:
    """The value at a dotted ``path`` of nested objects, or None where one is missing."""
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _text(obj: Mapping[str, Any], path: str, what: str) -> str:
    value = get_path(obj, path)
    if not isinstance(value, str) or not value:
        raise EvidenceFormatError(f"{what}: missing or non-string {path}")
    return value


def _optional_text(obj: Mapping[str, Any], path: str, what: str) -> str | None:
    value = get_path(obj, path)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise EvidenceFormatError(f"{what}: {path} is not a string")
    return value


def _time(obj: Mapping[str, Any], path: str, what: str) -> datetime:
    try:
        return parse_timestamp(_text(obj, path, what))
    except ValueError as exc:
        raise EvidenceFormatError(f"{what}: {path}: {exc}") from None


def _require_type(statement: Statement, predicate_type: str) -> None:
    if statement.predicate_type != predicate_type:
        raise EvidenceFormatError(f"predicateType is {statement.predicate_type}")


@dataclass(frozen=True, slots=True)
class ProvenanceInfo:
    """What the gate reads from a SLSA provenance statement."""

    repository: str
    ref: str
    revision: str
    event: str
    run_id: str
    builder_id: str
    workflow_path: str | None
    finished_on: datetime
    started_on: datetime | None


def read_provenance(statement: Statement) -> ProvenanceInfo:
    """Typed view of a provenance predicate written by ``digestgate attest provenance``."""
    _require_type(statement, PROVENANCE)
    p = statement.predicate
    what = "provenance"
    deps = get_path(p, "buildDefinition.resolvedDependencies")
    revision = None
    if isinstance(deps, list):
        for dep in deps:
            commit = get_path(dep, "digest.gitCommit") if isinstance(dep, dict) else None
            if isinstance(commit, str) and commit:
                revision = commit
                break
    if revision is None:
        raise EvidenceFormatError(f"{what}: no resolvedDependencies entry with a gitCommit")
    return ProvenanceInfo(
        repository=_text(p, "buildDefinition.externalParameters.workflow.repository", what),
        ref=_text(p, "buildDefinition.externalParameters.workflow.ref", what),
        revision=revision,
        event=_text(p, "buildDefinition.internalParameters.event_name", what),
        run_id=_text(p, "buildDefinition.internalParameters.run_id", what),
        builder_id=_text(p, "runDetails.builder.id", what),
        workflow_path=_optional_text(p, "buildDefinition.externalParameters.workflow.path", what),
        finished_on=_time(p, "runDetails.metadata.finishedOn", what),
        started_on=(
            _time(p, "runDetails.metadata.startedOn", what)
            if get_path(p, "runDetails.metadata.startedOn")
            else None
        ),
    )


@dataclass(frozen=True, slots=True)
class TestCounts:
    """JUnit totals recorded with a lane result."""

    tests: int
    failures: int
    errors: int
    skipped: int


@dataclass(frozen=True, slots=True)
class LaneResultInfo:
    """What the gate reads from a test-result statement."""

    lane: str
    result: LaneResult
    revision: str
    run_id: str
    finished_on: datetime
    url: str | None
    counts: TestCounts | None
    event: str | None = None
    """The workflow trigger, where a certificate states it (Sigstore lanes); None: unknown."""
    ref: str | None = None
    """The source ref, where a certificate states it (Sigstore lanes); None: unknown."""


def read_test_result(statement: Statement) -> LaneResultInfo:
    """Typed view of a test-result predicate written by ``digestgate attest test-result``."""
    _require_type(statement, TEST_RESULT)
    p = statement.predicate
    what = "test result"
    result = get_path(p, "result")
    if result not in ("PASSED", "WARNED", "FAILED"):
        raise EvidenceFormatError(f"{what}: result must be PASSED, WARNED or FAILED")
    counts = None
    raw_counts = get_path(p, "digestgate_counts")
    if raw_counts is not None:
        if not isinstance(raw_counts, dict):
            raise EvidenceFormatError(f"{what}: digestgate_counts is not an object")
        values = {}
        for key in ("tests", "failures", "errors", "skipped"):
            value = raw_counts.get(key, 0)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise EvidenceFormatError(f"{what}: digestgate_counts.{key} is not a count")
            values[key] = value
        counts = TestCounts(**values)
    return LaneResultInfo(
        lane=_text(p, "digestgate_lane", what),
        result=result,
        revision=_text(p, "digestgate_revision", what),
        run_id=_text(p, "digestgate_runId", what),
        finished_on=_time(p, "digestgate_finishedOn", what),
        url=_optional_text(p, "url", what),
        counts=counts,
    )


@dataclass(frozen=True, slots=True)
class VsaInfo:
    """What ``verify`` and promotion read from a VSA."""

    result: VsaResult
    policy_digest: Digest
    time_verified: datetime
    resource_uri: str
    verifier_id: str
    kind: str
    source: str | None
    trusted_keys: tuple[tuple[str, str, str | None], ...] | None = None
    """(name, key id, role) of every key the issuing policy trusted; None when not recorded."""


def _trusted_keys(
    p: Mapping[str, Any], what: str
) -> tuple[tuple[str, str, str | None], ...] | None:
    raw = get_path(p, "digestgate_trustedKeys")
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise EvidenceFormatError(f"{what}: digestgate_trustedKeys is not a list")
    entries = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise EvidenceFormatError(f"{what}: a digestgate_trustedKeys entry is not an object")
        name, keyid, role = entry.get("name"), entry.get("keyid"), entry.get("role")
        if not isinstance(name, str) or not isinstance(keyid, str):
            raise EvidenceFormatError(f"{what}: a trusted key has no name or keyid")
        if role is not None and not isinstance(role, str):
            raise EvidenceFormatError(f"{what}: a trusted key's role is not a string")
        entries.append((name, keyid, role))
    return tuple(entries)


def read_vsa(statement: Statement) -> VsaInfo:
    """Typed view of a VSA written by ``gate`` or ``promote``."""
    _require_type(statement, VSA)
    p = statement.predicate
    what = "VSA"
    result = get_path(p, "verificationResult")
    if result not in ("PASSED", "FAILED"):
        raise EvidenceFormatError(f"{what}: verificationResult must be PASSED or FAILED")
    policy_hex = _text(p, "policy.digest.sha256", what)
    try:
        policy_digest = Digest("sha256", policy_hex)
    except InvalidReferenceError:
        raise EvidenceFormatError(f"{what}: policy.digest.sha256 is not a sha256") from None
    return VsaInfo(
        result=result,
        policy_digest=policy_digest,
        time_verified=_time(p, "timeVerified", what),
        resource_uri=_text(p, "resourceUri", what),
        verifier_id=_text(p, "verifier.id", what),
        kind=_optional_text(p, "digestgate_kind", what) or "gate",
        source=_optional_text(p, "digestgate_source", what),
        trusted_keys=_trusted_keys(p, what),
    )
