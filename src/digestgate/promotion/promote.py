"""``promote``: copy a gated release by digest to a target, carry its evidence, then tag it.

The order is the safety argument (design section 3):

1. :func:`promote` runs the gate itself (:func:`~digestgate.gating.gate.gate`, online:
   every image is fetched by digest and hashed) and signs its VSAs; a release that does not
   pass stops everything before any store is opened for writing. There is no way to hand
   ``promote`` a decision: the gate cannot be skipped in code either.
2. Every requested tag is read at the target; a tag matching ``promotion.immutableTags`` that
   already names another digest blocks with ``promotion.tag-immutable``. Nothing is written.
3. Every artifact is copied by digest to ``TARGET/NAME`` (artifacts concurrently, blobs
   within each by :func:`~digestgate.promotion.copy.copy_image`) and its target digest is read back
   and hashed. A failure keeps its error class (exit 3), says what reached the target, and
   leaves every tag untouched; running again skips what is present and converges.
4. The verified evidence the gate relied on and the gate's VSA are attached to each target
   digest (:class:`~digestgate.evidence.store.attached.AttachedStore`, idempotent), with a
   signed promotion record (VSA ``digestgate_kind: promotion``) naming them, in one batch
   per artifact as soon as its copy is verified; other tools' referrers whose type
   ``promotion.referrers`` names are copied byte-exact and checked to be listed
   (:mod:`~digestgate.promotion.referrers`).
5. Only then are tags applied, one at a time: the previous digest is recorded (in the
   :class:`~digestgate.promotion.tagplan.TagPlan` on disk, before the tag moves, when one is given),
   immutability is checked again, the tag is set and re-read. A registry without conditional
   writes leaves a window between the read and the write; a tag that changed under us is
   reported. A re-run after a tagging failure takes the previous digest of a tag the failed
   run already moved from the plan.

This module holds the orchestration (checks, plan, the order of the steps, the
``promoted.json`` record); :mod:`~digestgate.promotion.copying` copies,
:mod:`~digestgate.promotion.evidence` carries evidence and signs the promotion record, and
:mod:`~digestgate.promotion.tags` plans and applies tags.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, cast

from digestgate.concurrency import run_all
from digestgate.digest import Digest
from digestgate.errors import BlockedError, InternalError, UsageError
from digestgate.evidence.store.base import EvidenceStore
from digestgate.evidence.store.dirstore import DirStore
from digestgate.gating.gate import GateResult
from digestgate.gating.gate import gate as run_the_gate
from digestgate.oci.manifest import Descriptor
from digestgate.oci.open import Stores
from digestgate.oci.registry.settling import deferred_checks
from digestgate.oci.store import ImageStore
from digestgate.policy.model import Policy
from digestgate.promotion.copy import ProgressSink, plan_copy
from digestgate.promotion.copying import copy_all
from digestgate.promotion.evidence import attach_evidence
from digestgate.promotion.model import (
    ArtifactPlan,
    ArtifactState,
    GateOutcome,
    Info,
    PromotionResult,
    TagChange,
    is_sealed,
    sealed_outcome,
)
from digestgate.promotion.referrers import OWN_TYPES, carry_referrers
from digestgate.promotion.tagplan import TagPlan
from digestgate.promotion.tags import (
    TAG_IMMUTABLE,
    apply_tags,
    is_immutable,
    validate_promotion_tag,
)
from digestgate.reference import (
    LayoutReference,
    Location,
    parse_layout_reference,
    parse_registry_reference,
)
from digestgate.release import PromotedTag, Promotion, PromotionArtifact, Release

if TYPE_CHECKING:
    from securesystemslib.signer import Signer

__all__ = [
    "TAG_IMMUTABLE",
    "ArtifactPlan",
    "Info",
    "PromotionResult",
    "TagChange",
    "is_immutable",
    "promote",
    "target_location",
]

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


def check_target(target: str, names: Sequence[str] = ()) -> None:
    """Refuse (exit 2, before any work) a target that cannot hold the promotion: a bad
    ``--to``, or an ``oci:`` directory (or ``DIR/NAME``) that exists and is not a directory."""
    target_location(target, "check")
    if not target.startswith("oci:"):
        return
    directory = Path(parse_layout_reference(target).path)
    for path in (directory, *(directory / name for name in names)):
        if path.exists() and not path.is_dir():
            raise UsageError(
                f"--to {target[:120]}: {str(path)[:200]} exists and is not a directory",
                hint="an oci: target is a directory holding one layout per artifact",
            )


# --- the verb ----------------------------------------------------------------------------


def promote(
    *,
    release: Release | Promotion,
    policy: Policy,
    evidence_stores: Sequence[EvidenceStore],
    target: str,
    tags: Sequence[str],
    stores: Stores,
    signer: Signer,
    now: datetime,
    dry_run: bool = False,
    concurrency: int = 4,
    progress: ProgressSink | None = None,
    info: Info = lambda _text: None,
    policy_uri: str = "policy.yaml",
    tag_plan: TagPlan | None = None,
    on_gate: Callable[[GateResult], None] | None = None,
) -> PromotionResult:
    """Gate ``release`` under ``policy``, then promote it to ``target``; see the module doc.

    The gate always runs here, online, and signs its VSAs with ``signer`` (into the first
    evidence store, unless ``dry_run``); ``on_gate`` sees its result before anything is
    copied (to render or report it). A release that does not pass raises
    :class:`~digestgate.errors.BlockedError` and nothing is written to the target.
    ``tag_plan`` (optional) keeps each tag's previous digest on disk before the tag moves,
    and supplies it for tags an earlier failed run already moved.
    """
    if concurrency < 1:
        raise UsageError("--concurrency must be at least 1", hint="use 1 or more")
    for tag in tags:
        validate_promotion_tag(tag)
    check_target(target, sorted(release.artifacts))  # a bad target: exit 2 before any work
    if not evidence_stores:
        raise UsageError("promote needs at least one evidence store", hint="pass --evidence")
    gate = run_the_gate(
        policy=policy,
        release=release,
        evidence_stores=evidence_stores,
        now=now,
        images=stores,
        vsa_signer=signer,
        vsa_store=None if dry_run else evidence_stores[0],
        policy_uri=policy_uri,
        enforcement="enforce",  # enforcement: warn never lets a release through promote
    )
    if on_gate is not None:
        on_gate(gate)
    if not gate.passed:
        raise BlockedError(
            "the gate blocked this release; nothing was promoted",
            hint="fix the findings in the verdict above, then run promote again",
        )
    evidence_dir = next((s for s in evidence_stores if isinstance(s, DirStore)), None)
    result = _promote_gated(
        release,
        sealed_outcome(gate),
        target=target,
        tags=tags,
        stores=stores,
        signer=signer,
        evidence_dir=evidence_dir,
        now=now,
        dry_run=dry_run,
        concurrency=concurrency,
        progress=progress,
        info=info,
        policy_uri=policy_uri,
        tag_plan=tag_plan,
    )
    result.gate = gate
    return result


def _promote_gated(
    release: Release | Promotion,
    outcome: GateOutcome,
    *,
    target: str,
    tags: Sequence[str],
    stores: Stores,
    signer: Signer,
    evidence_dir: EvidenceStore | None,
    now: datetime,
    dry_run: bool,
    concurrency: int,
    progress: ProgressSink | None,
    info: Info,
    policy_uri: str,
    tag_plan: TagPlan | None,
) -> PromotionResult:
    """The promotion steps after a passing gate (module doc, steps 2-5)."""
    if not outcome.passed or not is_sealed(outcome):
        raise InternalError("promotion reached without a passing gate")
    if not release.artifacts:
        raise BlockedError("the release has no artifacts; nothing to promote")
    artifacts = _artifacts(release, outcome, target, stores)
    changes = _tag_changes(artifacts, tags, stores, outcome.immutable_tags, concurrency)
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
    result = PromotionResult(dry_run=False)

    def attach(artifact: ArtifactState) -> None:
        attach_evidence(artifact, outcome, stores, signer, evidence_dir, now, policy_uri)
        artifact.referrers = carry_referrers(
            artifact.source,
            stores.open(artifact.target_location),
            artifact.descriptor,
            outcome.referrer_types,
        )

    # Each artifact's referrers-index check waits its settle pause at the end, once for all,
    # while the other artifacts copy (every check still comes after its own pause).
    with deferred_checks(concurrency):
        copy_all(artifacts, stores, concurrency, progress, result, attach)
    for artifact in artifacts:
        report = result.reports[artifact.name]
        info(f"{artifact.name}: copied to {artifact.target_location} ({report.summary()})")
    for artifact in artifacts:
        result.attached[artifact.name] = artifact.attached
        info(f"{artifact.name}: evidence and promotion record attached")
        if artifact.referrers is not None:
            result.referrers[artifact.name] = artifact.referrers
            carried = len(artifact.referrers.carried)
            left = sum(e.artifact_type not in OWN_TYPES for e in artifact.referrers.left)
            info(
                f"{artifact.name}: {carried} referrer(s) of other tools carried, {left} left "
                "in staging (see promoted.json)"
            )
    result.tags = apply_tags(
        artifacts, changes, outcome.immutable_tags, info, tag_plan, concurrency=concurrency
    )
    result.promotion = _record(release, outcome, artifacts, result.tags, now)
    return result


def _artifacts(
    release: Release | Promotion, outcome: GateOutcome, target: str, stores: Stores
) -> list[ArtifactState]:
    """Each artifact's source (resolved by digest and hashed) and its target location."""
    found: list[ArtifactState] = []
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
        descriptor = source.resolve(location.digest)  # hashed: wrong bytes raise
        found.append(
            ArtifactState(
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
    artifacts: Sequence[ArtifactState],
    tags: Sequence[str],
    stores: Stores,
    immutable: Sequence[str],
    concurrency: int,
) -> tuple[TagChange, ...]:
    """Read every tag at the target; refuse (writing nothing) to move an immutable one."""
    pairs = [(a, tag) for a in artifacts for tag in dict.fromkeys(tags)]

    def read(artifact: ArtifactState, tag: str) -> TagChange:
        now = _peek(stores, artifact.target_location).get_tag(tag)
        return TagChange(
            artifact.name,
            artifact.target_location,
            tag,
            now.digest if now is not None else None,
            artifact.descriptor.digest,
        )

    changes = run_all([partial(read, a, tag) for a, tag in pairs], workers=concurrency)
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


def _record(
    release: Release | Promotion,
    outcome: GateOutcome,
    artifacts: Sequence[ArtifactState],
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
            release.artifacts[artifact.name].platforms,
            artifact.referrers.to_json() if artifact.referrers is not None else None,
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
