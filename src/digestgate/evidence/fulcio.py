"""Reading Sigstore-signed statements with their certificate's facts (pure, docs/sigstore.md).

A key-signed statement says itself where it came from. A statement from a Sigstore bundle
is signed by a short-lived certificate whose Fulcio extensions (source repository, ref,
revision, trigger, run) were written by the certificate authority from the CI's OIDC
token: the gate takes those facts from the certificate. A statement that claims a
different source, ref, revision or trigger than its certificate is malformed (it never
counts); one that says nothing about them is read with the certificate's values.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Final

from digestgate.evidence.model import (
    CertificateFacts,
    EvidenceFormatError,
    LaneResultInfo,
    ProvenanceInfo,
    Statement,
    Subject,
    get_path,
    read_test_result,
)

#: ``https://github.com/ORG/REPO/actions/runs/RUN/attempts/N`` (also Gitea and Forgejo).
_RUN_URI: Final = re.compile(r".*/actions/runs/([0-9]+)(?:/attempts/[0-9]+)?/?")


def run_id_of(facts: CertificateFacts) -> str:
    """The CI run id from the certificate's run invocation URI (empty when it has none)."""
    if facts.run_uri is None:
        return ""
    match = _RUN_URI.fullmatch(facts.run_uri)
    return match.group(1) if match else facts.run_uri


def _require(value: str | None, what: str) -> str:
    if not value:
        raise EvidenceFormatError(f"its signing certificate has no {what} extension")
    return value


def _agree(claimed: Any, certified: str, what: str) -> None:
    if claimed is not None and claimed != certified:
        shown = str(claimed)[:100]
        raise EvidenceFormatError(
            f"the statement says {what} {shown!r} but its signing certificate says "
            f"{certified[:100]!r}"
        )


def certified_provenance(statement: Statement, facts: CertificateFacts) -> ProvenanceInfo:
    """Provenance facts for a Sigstore-signed SLSA provenance statement.

    Source, ref, revision, trigger, run and builder (the signing workflow, the
    certificate's identity) come from the certificate; the finish time is the
    certificate's issue time, signed by the certificate authority.
    """
    p = statement.predicate
    repository = _require(facts.source_repository, "source repository")
    ref = _require(facts.source_ref, "source repository ref")
    revision = _require(facts.source_revision, "source repository digest")
    event = _require(facts.trigger, "build trigger")
    _agree(
        get_path(p, "buildDefinition.externalParameters.workflow.repository"), repository, "source"
    )
    _agree(get_path(p, "buildDefinition.externalParameters.workflow.ref"), ref, "ref")
    for key in ("buildDefinition.internalParameters.github.event_name",
                "buildDefinition.internalParameters.event_name"):  # fmt: skip
        _agree(get_path(p, key), event, "trigger")
    deps = get_path(p, "buildDefinition.resolvedDependencies")
    for dep in deps if isinstance(deps, list) else ():
        _agree(get_path(dep, "digest.gitCommit"), revision, "revision")
    path = get_path(p, "buildDefinition.externalParameters.workflow.path")
    return ProvenanceInfo(
        repository=repository,
        ref=ref,
        revision=revision,
        event=event,
        run_id=run_id_of(facts),
        builder_id=facts.identity,
        workflow_path=path if isinstance(path, str) and path else None,
        finished_on=facts.issued,
        started_on=None,
    )


def certified_lane(statement: Statement, facts: CertificateFacts) -> LaneResultInfo:
    """A Sigstore-signed test result: revision, run, ref and trigger from the certificate,
    and a finish time no later than the certificate's issue (a lane finishes before its
    result is signed: a statement claiming a later time cannot keep a result fresh past
    ``maxAge``). The gate holds ref and trigger to the policy's ``source`` as for
    provenance: a test workflow a pull request triggered never counts."""
    info = read_test_result(statement)
    revision = _require(facts.source_revision, "source repository digest")
    _agree(info.revision, revision, "revision")
    run_id = run_id_of(facts)
    _agree(info.run_id, run_id, "run")
    finished = min(info.finished_on, facts.issued)
    return replace(
        info,
        revision=revision,
        run_id=run_id,
        finished_on=finished,
        event=_require(facts.trigger, "build trigger"),
        ref=_require(facts.source_ref, "source repository ref"),
    )


def map_subjects(statement: Statement, artifact_for: Callable[[str], str | None]) -> Statement:
    """The statement with each subject named by the release artifact it stands for.

    GitHub names an image subject by its repository (``ghcr.io/org/backend``); the gate
    matches subjects by artifact name (``backend``). ``artifact_for`` maps one to the
    other (see :func:`digestgate.policy.sigstore.subject_artifact`); a name it cannot map
    is kept, and then binds nothing.
    """
    subjects = tuple(Subject(artifact_for(s.name) or s.name, s.digest) for s in statement.subjects)
    return replace(statement, subjects=subjects)
