"""``attest``: sign provenance or a lane result for a release's digests (orchestration only).

Provenance: one SLSA Provenance v1 statement per artifact, describing the build of that
digest from the CI context (GitHub, Gitea, Forgejo variables) with explicit values taking
precedence; for an image index it also names each recorded child (``backend@linux/arm64``),
the platforms the gate holds lanes to offline. A lane result: ONE in-toto test-result
statement whose subjects are every artifact the lane ran against, so the gate can prove
they were validated together. For an image index, ``--platform`` adds each child the lane
ran (``backend@linux/arm64`` and the child's digest, from the release's recorded platforms)
beside the index: a result naming only the index counts for no platform
(:mod:`digestgate.rules.platforms`).

Values come from, in order: command-line flags, the CI environment, and the release's own
``source`` (recorded by ``capture``). A value that contradicts the release's source is
refused here, before anything is signed: it would only make the gate block later.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal

from digestgate.ci import CiContext, detect_ci, with_overrides
from digestgate.errors import ConfigError, InputError, UsageError
from digestgate.evidence.model import PAYLOAD_TYPE, PROVENANCE, TEST_RESULT, Subject, TestCounts
from digestgate.evidence.store.base import EvidenceStore, SubjectLocation
from digestgate.release import Promotion, Release, load_release

LANE_RE: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MAX_JUNIT_FILES: Final = 256

LaneOutcome = Literal["PASSED", "WARNED", "FAILED"]


@dataclass(frozen=True)
class SourceFlags:
    """Explicit values for the build context (``None``: take it from CI or the release)."""

    repository_url: str | None = None
    revision: str | None = None
    ref: str | None = None
    run_id: str | None = None
    event_name: str | None = None
    workflow_path: str | None = None
    builder_id: str | None = None
    run_url: str | None = None


@dataclass(frozen=True)
class Attestation:
    """One signed envelope and where it was written."""

    predicate: str
    subjects: tuple[str, ...]
    envelope_digest: str
    written: tuple[str, ...]


def load_release_for_attest(path: Path) -> Release:
    """The release to attest; every artifact must be pinned by digest."""
    release = load_release(path)
    if isinstance(release, Promotion):
        raise ConfigError(
            f"{path} is a promotion record, not a release",
            hint="attest the release.json written by `digestgate capture`",
        )
    if not release.artifacts:
        raise ConfigError(f"{path} has no artifacts", hint="run `digestgate capture` first")
    for artifact in release.artifacts.values():
        if artifact.reference_problem is not None:
            raise ConfigError(
                f"{path}: {artifact.reference_message}",
                hint="record the artifact by digest with `digestgate capture`",
            )
    return release


def select_subjects(release: Release, names: Sequence[str]) -> list[SubjectLocation]:
    """The named artifacts (all when ``names`` is empty) as subjects, in name order."""
    wanted = sorted(set(names)) if names else sorted(release.artifacts)
    unknown = [n for n in wanted if n not in release.artifacts]
    if unknown:
        raise UsageError(
            f"no artifact named {', '.join(repr(n) for n in unknown)} in the release",
            hint=f"the release holds: {', '.join(sorted(release.artifacts))}",
        )
    subjects = []
    for name in wanted:
        location = release.artifacts[name].location
        assert location is not None  # checked by load_release_for_attest
        subjects.append(SubjectLocation(name, location))
    return subjects


def build_context(release: Release, flags: SourceFlags, environ: Mapping[str, str]) -> CiContext:
    """The CI context: flags over the environment over the release's source, cross-checked."""
    detected = detect_ci(environ)
    src = release.source
    ctx = with_overrides(
        detected,
        repository_url=flags.repository_url
        or (None if detected.repository_url else src.repository),
        revision=flags.revision or (None if detected.revision else src.revision),
        ref=flags.ref or (None if detected.ref else src.ref),
        run_id=flags.run_id or (None if detected.run_id else src.run_id),
        event_name=flags.event_name,
        workflow_path=flags.workflow_path,
        run_url=flags.run_url,
        builder_id=flags.builder_id,
    )
    if flags.builder_id:
        ctx = replace(ctx, builder_id=flags.builder_id)
    for what, have, want, flag in (
        ("repository", ctx.repository_url, src.repository, "--source-repo"),
        ("revision", ctx.revision, src.revision, "--revision"),
        ("ref", ctx.ref, src.ref, "--ref"),
        ("run id", ctx.run_id, src.run_id, "--run-id"),
    ):
        if have is not None and have.rstrip("/") != want.rstrip("/"):
            raise UsageError(
                f"the {what} here is {have!r} but the release was captured from {want!r}",
                hint=f"attest in the run that captured the release, or pass {flag} to match",
            )
    return ctx


def _sign_and_write(
    statement: bytes,
    predicate: str,
    subjects: Sequence[SubjectLocation],
    signer: Any,
    stores: Sequence[EvidenceStore],
) -> Attestation:
    from digestgate.digest import Digest
    from digestgate.evidence.dsse import sign_envelope

    envelope = sign_envelope(statement, PAYLOAD_TYPE, [signer])
    written: list[str] = []
    for store in stores:
        written.extend(store.write(envelope, predicate=predicate, subjects=subjects))
    return Attestation(
        predicate,
        tuple(s.name for s in subjects),
        str(Digest.of(envelope)),
        tuple(written),
    )


def attest_provenance(
    *,
    release: Release,
    subjects: Sequence[SubjectLocation],
    context: CiContext,
    signer: Any,
    stores: Sequence[EvidenceStore],
    started_on: datetime | None,
    now: datetime,
) -> list[Attestation]:
    """Sign one provenance statement per artifact and write it to every store.

    For an image index, every child ``capture`` recorded is a subject beside the index
    (``backend@linux/arm64`` with the child's digest): the gate, offline, takes the platforms
    from these signed subjects, never from the unsigned release file.
    """
    from digestgate.attesting.platforms import recorded_children
    from digestgate.evidence.statements import provenance_predicate, statement_bytes

    predicate = provenance_predicate(context, started_on=started_on, finished_on=now)
    results = []
    for subject in subjects:
        children = recorded_children(release, subject.name)
        statement = statement_bytes(
            [Subject(subject.name, subject.digest), *children], PROVENANCE, predicate
        )
        written = _sign_and_write(statement, "provenance", [subject], signer, stores)
        results.append(replace(written, subjects=(*written.subjects, *(c.name for c in children))))
    return results


@dataclass(frozen=True)
class LaneReport:
    """The lane's outcome and totals (counts only when read from JUnit)."""

    result: LaneOutcome
    counts: TestCounts | None
    failed_tests: tuple[str, ...]


def read_lane_outcome(junit: Sequence[Path], result: str | None) -> LaneReport:
    """The outcome from JUnit files (PASSED only when tests ran and none failed) or a flag."""
    if bool(junit) == bool(result):
        raise UsageError(
            "give either --junit FILE (one or more) or --result PASSED|WARNED|FAILED",
            hint="--junit is preferred: the result is then computed from the report",
        )
    if result is not None:
        if result not in ("PASSED", "WARNED", "FAILED"):
            raise UsageError(f"invalid --result {result!r}", hint="use PASSED, WARNED or FAILED")
        outcome: LaneOutcome = (
            "PASSED" if result == "PASSED" else ("WARNED" if result == "WARNED" else "FAILED")
        )
        return LaneReport(outcome, None, ())
    from digestgate.attesting.junit import MAX_REPORT_SIZE, lane_result, parse_junit
    from digestgate.fileread import read_capped

    if len(junit) > MAX_JUNIT_FILES:
        raise UsageError(f"more than {MAX_JUNIT_FILES} JUnit files", hint="merge the reports")
    summaries = []
    for path in junit:
        try:
            data = read_capped(path, MAX_REPORT_SIZE, what="JUnit report")
        except OSError as exc:
            raise InputError(
                f"cannot read JUnit report {path}: {exc.strerror or exc}",
                hint="check the path the test runner wrote its report to",
            ) from exc
        summaries.append(parse_junit(data, name=str(path)))
    counts = TestCounts(
        tests=sum(s.tests for s in summaries),
        failures=sum(s.failures for s in summaries),
        errors=sum(s.errors for s in summaries),
        skipped=sum(s.skipped for s in summaries),
    )
    failed = tuple(name for s in summaries for name in s.failed_names)
    return LaneReport(lane_result(summaries), counts, failed)


def attest_test_result(
    *,
    release: Release,
    subjects: Sequence[SubjectLocation],
    context: CiContext,
    lane: str,
    report: LaneReport,
    url: str | None,
    signer: Any,
    stores: Sequence[EvidenceStore],
    now: datetime,
    platforms: Sequence[str] = (),
) -> Attestation:
    """Sign ONE lane result whose subjects are all ``subjects``; write it to every store.

    ``platforms`` (``OS/ARCH[/VARIANT]`` or ``all``) names the children of each index subject
    the lane ran; they become subjects ``NAME@PLATFORM`` beside the index.
    """
    from digestgate.attesting.platforms import platform_subjects
    from digestgate.evidence.statements import statement_bytes, test_result_predicate

    if not LANE_RE.fullmatch(lane):
        raise UsageError(
            f"invalid lane name {lane[:80]!r}",
            hint="use 1-64 of lowercase letters, digits, '.', '_' or '-' (e.g. integration)",
        )
    configuration = []
    if context.repository_url and context.workflow_path:
        ref = context.ref or release.source.ref
        configuration.append({"uri": f"{context.repository_url}/{context.workflow_path}@{ref}"})
    predicate = test_result_predicate(
        lane=lane,
        result=report.result,
        revision=release.source.revision,
        run_id=context.run_id or release.source.run_id,
        finished_on=now,
        url=url or context.run_url,
        counts=report.counts,
        failed_tests=report.failed_tests,
        configuration=configuration,
    )
    children = platform_subjects(release, subjects, platforms)
    statement = statement_bytes(
        [*(Subject(s.name, s.digest) for s in subjects), *children], TEST_RESULT, predicate
    )
    written = _sign_and_write(statement, "test-result", subjects, signer, stores)
    return replace(written, subjects=(*written.subjects, *(c.name for c in children)))
