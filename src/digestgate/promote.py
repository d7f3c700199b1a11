"""``promote``: copy a gated release by digest to a target, carry its evidence, then tag it.

The order is the safety argument (design section 3):

1. A gate outcome that did not pass stops everything before any store is opened for writing.
2. Every requested tag is read at the target; a tag matching ``promotion.immutableTags`` that
   already names another digest blocks with ``promotion.tag-immutable``. Nothing is written.
3. Every artifact is copied by digest to ``TARGET/NAME`` (artifacts concurrently, blobs
   within each by :func:`~digestgate.copy.copy_image`) and its target digest is read back
   and hashed. A failure keeps its error class (exit 3), says what reached the target, and
   leaves every tag untouched; running again skips what is present and converges.
4. The verified evidence the gate relied on and the gate's VSA are attached to each target
   digest (:class:`~digestgate.evidence.store.attached.AttachedStore`, idempotent), with a
   signed promotion record (VSA ``digestgate_kind: promotion``) naming them, in one batch
   per artifact as soon as its copy is verified.
5. Only then are tags applied, one at a time: the previous digest is recorded (in the
   :class:`~digestgate.tagplan.TagPlan` on disk, before the tag moves, when one is given),
   immutability is checked again, the tag is set and re-read. A registry without conditional
   writes leaves a window between the read and the write; a tag that changed under us is
   reported. A re-run after a tagging failure takes the previous digest of a tag the failed
   run already moved from the plan.
"""

from __future__ import annotations

import copy as _copy
import math
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final, cast

from digestgate.copy import CopyPlan, CopyReport, ProgressSink, copy_image, plan_copy
from digestgate.digest import Digest
from digestgate.errors import (
    BlockedError,
    DigestgateError,
    IntegrityError,
    InternalError,
    NotFoundError,
    UsageError,
)
from digestgate.evidence.model import PAYLOAD_TYPE, VSA, Subject, VerifiedEvidence
from digestgate.evidence.store.base import EvidenceStore, SubjectLocation
from digestgate.oci.manifest import Descriptor
from digestgate.oci.open import Stores
from digestgate.oci.store import ImageStore
from digestgate.reference import (
    LayoutReference,
    Location,
    parse_layout_reference,
    parse_registry_reference,
    validate_tag,
)
from digestgate.release import PromotedTag, Promotion, PromotionArtifact, Release
from digestgate.tagplan import TagPlan

if TYPE_CHECKING:
    from securesystemslib.signer import Signer

#: Finding id of a refused move of an immutable tag (design section 4).
TAG_IMMUTABLE: Final = "promotion.tag-immutable"

Info = Callable[[str], None]


@dataclass(frozen=True)
class GateOutcome:
    """What the gate decided, and what it relied on: the only way into a promotion."""

    passed: bool
    policy_digest: Digest
    immutable_tags: tuple[str, ...]  # policy promotion.immutableTags globs
    # per artifact name: the verified evidence the gate relied on (provenance, lane results)
    evidence: Mapping[str, Sequence[VerifiedEvidence]]
    vsas: Mapping[str, bytes]  # per artifact name: the gate's signed VSA envelope for that digest
    summary: str  # the rendered verdict (table), for messages


@dataclass(frozen=True, slots=True)
class TagChange:
    """One tag at the target: where it points now (None: absent) and where it will point."""

    artifact: str
    location: Location
    tag: str
    current: Digest | None
    wanted: Digest

    @property
    def action(self) -> str:
        """``create``, ``move`` or ``keep`` (already right: a no-op)."""
        if self.current is None:
            return "create"
        return "keep" if self.current == self.wanted else "move"


@dataclass(frozen=True, slots=True)
class ArtifactPlan:
    """What promoting one artifact would do (``--dry-run``)."""

    name: str
    source: Location
    target: Location
    copy: CopyPlan
    tags: tuple[TagChange, ...]


@dataclass
class PromotionResult:
    """The outcome of :func:`promote`: the record, or the plan of a dry run."""

    dry_run: bool
    plans: tuple[ArtifactPlan, ...] = ()
    promotion: Promotion | None = None
    reports: dict[str, CopyReport] = field(default_factory=dict)
    attached: dict[str, list[str]] = field(default_factory=dict)
    """Per artifact: where carried evidence and the promotion record were attached."""
    tags: tuple[TagChange, ...] = ()
    """Tags as applied (``current`` is the digest each pointed to before)."""


# --- locations ---------------------------------------------------------------------------


def target_location(target: str, name: str) -> Location:
    """``TARGET/NAME``: a registry namespace ``host/ns`` or an ``oci:DIR`` parent directory."""
    hint = "use --to HOST[:PORT]/NAMESPACE or --to oci:DIR (no tag, no digest)"
    if target.startswith("oci:"):
        parent = parse_layout_reference(target)
        if parent.tag is not None or parent.digest is not None:
            raise UsageError(f"--to {target[:120]!r} names a tag or digest", hint=hint)
        return LayoutReference(str(Path(parent.path) / name))
    if "@" in target or target.endswith("/"):
        raise UsageError(f"--to {target[:120]!r} is not a registry namespace", hint=hint)
    location = parse_registry_reference(f"{target}/{name}")
    if location.tag is not None or location.digest is not None:
        raise UsageError(f"--to {target[:120]!r} is not a registry namespace", hint=hint)
    return location


def _matches(pattern: str, tag: str) -> bool:
    # Tags contain no '/', so the policy's '*' (one segment) is any run here (design 4).
    regex = "".join(
        ".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.replace("**", "*")
    )
    return re.fullmatch(regex, tag, re.DOTALL) is not None


def is_immutable(tag: str, globs: Sequence[str]) -> bool:
    """True when ``tag`` matches one of the policy's ``promotion.immutableTags`` globs."""
    return any(_matches(pattern, tag) for pattern in globs)


# --- the verb ----------------------------------------------------------------------------


@dataclass
class _Artifact:
    name: str
    source_location: Location
    target_location: Location
    source: ImageStore
    descriptor: Descriptor
    target: ImageStore | None = None
    inputs: list[tuple[str, Digest]] = field(default_factory=list)
    """Carried envelopes: where each was attached at the target, and its digest."""
    attached: list[str] = field(default_factory=list)


def promote(
    release: Release | Promotion,
    outcome: GateOutcome,
    *,
    target: str,
    tags: Sequence[str],
    stores: Stores,
    signer: Signer | None,
    evidence_dir: EvidenceStore | None,
    now: datetime,
    dry_run: bool = False,
    concurrency: int = 4,
    progress: ProgressSink | None = None,
    info: Info = lambda _text: None,
    policy_uri: str = "policy.yaml",
    tag_plan: TagPlan | None = None,
) -> PromotionResult:
    """Promote ``release`` to ``target`` under the gate's ``outcome``; see the module doc.

    ``tag_plan`` (optional) keeps each tag's previous digest on disk before the tag moves,
    and supplies it for tags an earlier failed run already moved.
    """
    if concurrency < 1:
        raise UsageError("--concurrency must be at least 1", hint="use 1 or more")
    for tag in tags:
        validate_tag(tag)
    if not outcome.passed:
        raise BlockedError(
            "the gate blocked this release; nothing was promoted",
            hint="fix the findings in the verdict above, then run promote again",
        )
    if not release.artifacts:
        raise BlockedError("the release has no artifacts; nothing to promote")
    if signer is None and not dry_run:
        raise UsageError("promote needs --vsa-key to sign promotion records")
    artifacts = _artifacts(release, outcome, target, stores)
    changes = _tag_changes(artifacts, tags, stores, outcome.immutable_tags)
    if dry_run:
        plans = tuple(
            ArtifactPlan(
                a.name,
                a.source_location,
                a.target_location,
                plan_copy(a.source, _peek(stores, a.target_location), a.descriptor),
                tuple(c for c in changes if c.artifact == a.name),
            )
            for a in artifacts
        )
        return PromotionResult(dry_run=True, plans=plans, tags=changes)
    assert signer is not None
    result = PromotionResult(dry_run=False)

    def attach(artifact: _Artifact) -> None:
        _attach_evidence(artifact, outcome, stores, signer, evidence_dir, now, policy_uri)

    _copy_all(artifacts, stores, concurrency, progress, result, attach)
    for artifact in artifacts:
        report = result.reports[artifact.name]
        info(f"{artifact.name}: copied to {artifact.target_location} ({report.summary()})")
    for artifact in artifacts:
        result.attached[artifact.name] = artifact.attached
        info(f"{artifact.name}: evidence and promotion record attached")
    result.tags = _apply_tags(artifacts, changes, outcome.immutable_tags, info, tag_plan)
    result.promotion = _record(release, outcome, artifacts, result.tags, now)
    return result


def _artifacts(
    release: Release | Promotion, outcome: GateOutcome, target: str, stores: Stores
) -> list[_Artifact]:
    """Each artifact's source (resolved by digest and hashed) and its target location."""
    found: list[_Artifact] = []
    for name, artifact in sorted(release.artifacts.items()):
        location = artifact.location
        if location is None or location.digest is None:
            raise BlockedError(
                f"{name}: {artifact.image_text[:200]!r} is not pinned by digest "
                "(reference.not-digest)",
                hint="capture the artifact by digest",
            )
        if name not in outcome.vsas:
            raise InternalError(f"the gate outcome has no VSA for {name}")
        source = stores.open(location)
        descriptor = source.resolve(location.digest)
        if descriptor.digest != location.digest:
            raise IntegrityError(
                f"{location} resolved to {descriptor.digest}",
                hint="the source serves different bytes; do not promote them",
            )
        found.append(
            _Artifact(
                name,
                location,
                target_location(target, name).with_digest(location.digest),
                source,
                descriptor,
            )
        )
    return found


def _peek(stores: Stores, location: Location) -> ImageStore:
    """The target store for reading only: a layout not written yet reads as empty.

    "Not written yet" includes a directory left without its ``oci-layout`` file by a run
    that failed early (a full disk, say); opening it for writing completes it.
    """
    if isinstance(location, LayoutReference) and not (Path(location.path) / "oci-layout").exists():
        return cast(ImageStore, _Empty(location))
    return stores.open(location)


def _tag_changes(
    artifacts: Sequence[_Artifact], tags: Sequence[str], stores: Stores, immutable: Sequence[str]
) -> tuple[TagChange, ...]:
    """Read every tag at the target; refuse (writing nothing) to move an immutable one."""
    changes: list[TagChange] = []
    for artifact in artifacts:
        if not tags:
            continue
        store = _peek(stores, artifact.target_location)
        for tag in dict.fromkeys(tags):
            now = store.get_tag(tag)
            changes.append(
                TagChange(
                    artifact.name,
                    artifact.target_location,
                    tag,
                    now.digest if now is not None else None,
                    artifact.descriptor.digest,
                )
            )
    refused = [c for c in changes if c.action == "move" and is_immutable(c.tag, immutable)]
    if refused:
        first = refused[0]
        raise BlockedError(
            f"{TAG_IMMUTABLE}: tag {first.tag} of {first.location.name} already points to "
            f"{first.current} and is immutable"
            + (f" (and {len(refused) - 1} more)" if len(refused) > 1 else "")
            + "; nothing was promoted",
            hint="promote under a new tag; the policy's promotion.immutableTags forbids moving it",
        )
    return tuple(changes)


# --- copying -----------------------------------------------------------------------------


class _SharedProgress:
    """Adds the byte totals of concurrent copies into one progress display."""

    def __init__(self, inner: ProgressSink) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self._total = 0
        self._done = 0

    def start(self, total_bytes: int) -> None:
        with self._lock:
            self._total += total_bytes
            self._inner.start(self._total)
            self._inner.advance(self._done)

    def advance(self, n: int) -> None:
        with self._lock:
            self._done += n
            self._inner.advance(n)

    def done(self) -> None:
        """Per-copy end: the display ends once, after every artifact."""


def _copy_all(
    artifacts: Sequence[_Artifact],
    stores: Stores,
    concurrency: int,
    progress: ProgressSink | None,
    result: PromotionResult,
    attach: Callable[[_Artifact], None],
) -> None:
    """Copy, verify and ``attach`` evidence to every artifact, concurrently.

    Evidence and the promotion record are attached as soon as an artifact's copy is
    verified, overlapping the other copies: they name the digest, not a tag, so they are
    true whatever happens next (tags move only after every artifact is done).
    """
    workers = min(concurrency, len(artifacts))
    per_artifact = max(1, math.ceil(concurrency / workers))
    shared = _SharedProgress(progress) if progress is not None else None
    for artifact in artifacts:
        result.reports[artifact.name] = CopyReport()

    def one(artifact: _Artifact) -> None:
        target = stores.open(artifact.target_location, create=True)
        artifact.target = target
        copy_image(
            artifact.source,
            target,
            artifact.descriptor,
            concurrency=per_artifact,
            progress=shared,
            report=result.reports[artifact.name],
        )
        _verify_copy(target, artifact.descriptor)
        attach(artifact)

    def copied() -> str:
        return "copied so far: " + "; ".join(
            f"{n}: {r.summary()}" for n, r in result.reports.items()
        )

    try:
        _each(artifacts, concurrency, one, "copying", copied)
    finally:
        if progress is not None:
            progress.done()


def _each(
    artifacts: Sequence[_Artifact],
    concurrency: int,
    task: Callable[[_Artifact], None],
    doing: str,
    so_far: Callable[[], str],
) -> None:
    """Run ``task`` for every artifact (bounded); re-raise the first failure, annotated.

    The error keeps its class (so its exit code); its message names the artifact, what
    reached the target, and that no tag moved.
    """
    errors: list[tuple[str, BaseException]] = []
    workers = min(concurrency, len(artifacts))
    with ThreadPoolExecutor(workers, thread_name_prefix="digestgate-promote") as pool:
        futures = {pool.submit(task, a): a.name for a in artifacts}
        for future, name in futures.items():
            error = future.exception()
            if error is not None:
                errors.append((name, error))
    if not errors:
        return
    name, error = errors[0]
    if not isinstance(error, DigestgateError):
        raise error
    annotated = _copy.copy(error)
    detail = so_far()
    annotated.message = (
        f"promotion stopped {doing} {name}: {error.message} "
        + (f"({detail}); " if detail else "; ")
        + "no tag was changed"
    )
    annotated.hint = (
        error.hint + "; then " if error.hint else ""
    ) + "run the same promote again: content already copied is skipped"
    raise annotated from error


def _verify_copy(target: ImageStore, descriptor: Descriptor) -> None:
    """Fetch the target manifest by digest (hashing it) and compare with the source."""
    try:
        got = target.resolve(descriptor.digest)
    except NotFoundError as exc:
        raise IntegrityError(
            f"{target.location} does not hold {descriptor.digest} after copying it",
            hint="the target dropped the manifest; check the registry",
        ) from exc
    if got.digest != descriptor.digest or got.size != descriptor.size:
        raise IntegrityError(
            f"{target.location} serves {got.digest} ({got.size} bytes) for {descriptor.digest}",
            hint="the target changed the manifest; it cannot hold this image",
        )


# --- evidence ----------------------------------------------------------------------------


def _attach_evidence(
    artifact: _Artifact,
    outcome: GateOutcome,
    stores: Stores,
    signer: Signer,
    evidence_dir: EvidenceStore | None,
    now: datetime,
    policy_uri: str,
) -> None:
    """Attach the evidence the gate relied on, its VSA and a signed promotion record.

    All of them go to the target digest in one batch: the promotion record names where the
    carried envelopes are, and their referrer digests are known before anything is written,
    so a registry without the Referrers API updates its fallback index once per artifact.
    """
    from digestgate.evidence.store.attached import AttachedStore

    digest = artifact.descriptor.digest
    subject = SubjectLocation(artifact.name, artifact.target_location)
    batch = AttachedStore(stores, clock=lambda: now).batch(subject)
    seen: set[Digest] = set()
    for evidence in outcome.evidence.get(artifact.name, ()):
        # Only statements about this very digest travel with it (a joint lane result about
        # backend and frontend is carried to both targets).
        if digest not in evidence.statement.digests or evidence.envelope_digest in seen:
            continue
        seen.add(evidence.envelope_digest)
        place = batch.add(evidence.envelope, predicate=evidence.statement.predicate_type)
        artifact.attached.append(place)
        artifact.inputs.append((place, evidence.envelope_digest))
    gate_vsa = outcome.vsas[artifact.name]
    place = batch.add(gate_vsa, predicate="vsa")
    artifact.attached.append(place)
    artifact.inputs.append((place, Digest.of(gate_vsa)))
    record = _promotion_record(artifact, outcome, subject, signer, now, policy_uri)
    artifact.attached.append(batch.add(record, predicate="vsa"))
    batch.commit()
    if evidence_dir is not None:
        artifact.attached.extend(evidence_dir.write(record, predicate="vsa", subjects=[subject]))


def _promotion_record(
    artifact: _Artifact,
    outcome: GateOutcome,
    subject: SubjectLocation,
    signer: Signer,
    now: datetime,
    policy_uri: str,
) -> bytes:
    """The signed promotion record: a VSA naming target, source and carried evidence."""
    from digestgate.evidence.dsse import sign_envelope
    from digestgate.evidence.statements import statement_bytes, vsa_predicate

    predicate = vsa_predicate(
        result="PASSED",
        policy_digest=outcome.policy_digest,
        policy_uri=policy_uri,
        resource_uri=str(artifact.target_location),
        input_attestations=artifact.inputs,
        time_verified=now,
        kind="promotion",
        source=str(artifact.source_location),
        findings=(),
    )
    payload = statement_bytes([Subject(artifact.name, subject.digest)], VSA, predicate)
    return sign_envelope(payload, PAYLOAD_TYPE, [signer])


# --- tags --------------------------------------------------------------------------------


def _apply_tags(
    artifacts: Sequence[_Artifact],
    planned: Sequence[TagChange],
    immutable: Sequence[str],
    info: Info,
    plan: TagPlan | None,
) -> tuple[TagChange, ...]:
    """Set every tag (re-reading before and after); a failure lists what already moved."""
    by_name = {a.name: a for a in artifacts}
    applied: list[TagChange] = []
    for change in planned:
        artifact = by_name[change.artifact]
        store = artifact.target
        assert store is not None
        try:
            applied.append(_apply_tag(store, artifact, change.tag, immutable, plan))
        except DigestgateError as exc:
            raise _tagging_failed(exc, change, applied) from exc
        info(f"{artifact.name}: tag {change.tag} -> {artifact.descriptor.digest.short}")
    return tuple(applied)


def _apply_tag(
    store: ImageStore,
    artifact: _Artifact,
    tag: str,
    immutable: Sequence[str],
    plan: TagPlan | None,
) -> TagChange:
    """Set one tag; the change returned names the digest the tag held before the promotion."""
    wanted = artifact.descriptor
    before = store.get_tag(tag)
    repository = artifact.target_location.name
    change = TagChange(
        artifact.name,
        artifact.target_location,
        tag,
        before.digest if before is not None else None,
        wanted.digest,
    )
    if change.action == "keep":
        if plan is None:
            return change
        # Already there: maybe moved by an earlier run whose tagging failed.
        return replace(change, current=plan.previous(repository, tag, wanted.digest, wanted.digest))
    if change.action == "move" and is_immutable(tag, immutable):
        raise BlockedError(
            f"{TAG_IMMUTABLE}: tag {tag} of {artifact.target_location.name} appeared at "
            f"{change.current} during the promotion and is immutable",
            hint="someone else wrote the tag meanwhile; promote under a new tag",
        )
    if plan is not None:
        plan.record(repository, tag, wanted.digest, change.current)
    store.set_tag(tag, wanted)
    after = store.get_tag(tag)
    if after is None or after.digest != wanted.digest:
        raise IntegrityError(
            f"tag {tag} of {artifact.target_location.name} changed under us: it points to "
            f"{after.digest if after else 'nothing'} right after being set to {wanted.digest}",
            hint="another writer moved the tag at the same time; check who, then run again",
        )
    return change


def _tagging_failed(
    exc: DigestgateError, failed: TagChange, applied: Sequence[TagChange]
) -> DigestgateError:
    moved = [c for c in applied if c.action != "keep"]
    listing = ", ".join(
        f"{c.location.name}:{c.tag} (was {c.current.short if c.current else 'absent'})"
        for c in moved
    )
    annotated = _copy.copy(exc)
    annotated.message = (
        f"tagging stopped at {failed.location.name}:{failed.tag}: {exc.message}; "
        + (f"tags already moved: {listing}" if moved else "no tag was moved")
    )
    annotated.hint = (exc.hint + "; " if exc.hint else "") + (
        "every image is copied: run the same promote again to apply the remaining tags"
    )
    return annotated


def _record(
    release: Release | Promotion,
    outcome: GateOutcome,
    artifacts: Sequence[_Artifact],
    applied: Sequence[TagChange],
    now: datetime,
) -> Promotion:
    promoted: dict[str, PromotionArtifact] = {}
    for artifact in artifacts:
        location = artifact.target_location
        tags = tuple(PromotedTag(c.tag, c.current) for c in applied if c.artifact == artifact.name)
        promoted[artifact.name] = PromotionArtifact(
            artifact.name,
            str(location),
            location,
            None,
            None,
            artifact.source_location,
            tags,
        )
    return Promotion(release.source, outcome.policy_digest, now, promoted)


class _Empty:
    """A target layout that does not exist yet, seen by a dry run: it holds nothing."""

    def __init__(self, location: Location) -> None:
        self._location = location

    @property
    def location(self) -> Location:
        return self._location

    def has_manifest(self, digest: Digest) -> bool:
        return False

    def has_blob(self, digest: Digest) -> bool:
        return False

    def get_tag(self, tag: str) -> Descriptor | None:
        return None

    def __getattr__(self, name: str) -> object:
        raise InternalError(f"a target that does not exist yet was asked to {name}")
