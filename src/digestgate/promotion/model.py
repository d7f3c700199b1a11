"""The promotion's shared values: what the gate handed over, each artifact's progress, and
the result.

The seal lives here: :func:`sealed_outcome` is the only way to build a
:class:`GateOutcome`, and only :func:`~digestgate.promotion.promote.promote` calls it, with
the result of the gate it ran itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from digestgate.digest import Digest
from digestgate.errors import InternalError
from digestgate.evidence.model import Subject, VerifiedEvidence
from digestgate.gating.gate import GateResult
from digestgate.oci.manifest import Descriptor
from digestgate.oci.store import ImageStore
from digestgate.platforms import PlatformImage
from digestgate.policy.model import Glob
from digestgate.promotion.copy import CopyPlan, CopyReport
from digestgate.promotion.referrers import ReferrerReport
from digestgate.reference import Location
from digestgate.release import Promotion

#: Progress lines for a person (the CLI prints them; the library passes a no-op).
Info = Callable[[str], None]


#: Only :func:`sealed_outcome` holds this: a :class:`GateOutcome` cannot be built anywhere else.
_SEAL: Final = object()


@dataclass(frozen=True)
class GateOutcome:
    """What the gate decided and relied on, as the promotion steps need it.

    Built only from a :class:`~digestgate.gating.gate.GateResult` the gate produced inside
    :func:`promote` (the seal refuses any other construction), so no caller can hand the
    promotion a decision of its own.
    """

    passed: bool
    policy_digest: Digest
    immutable_tags: tuple[str, ...]  # policy promotion.immutableTags globs
    # per artifact name: the verified evidence the gate relied on (provenance, lane results)
    evidence: Mapping[str, Sequence[VerifiedEvidence]]
    vsas: Mapping[str, bytes]  # per artifact name: the gate's signed VSA envelope for that digest
    # per artifact name: the index's children the VSA names (the validated platforms)
    platforms: Mapping[str, tuple[PlatformImage, ...]] = field(default_factory=dict)
    # policy promotion.referrers: artifact types of other tools' referrers to carry
    referrer_types: tuple[Glob, ...] = ()
    stage: str | None = None  # the policy's stage: promotion records name it (signed)
    release: frozenset[Subject] = frozenset()  # every artifact the gate decided, by digest
    seal: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.seal is not _SEAL:
            raise InternalError(
                "a gate outcome can only come from the gate itself",
                hint="call digestgate.promote(), which runs the gate",
            )


def is_sealed(outcome: GateOutcome) -> bool:
    """True for an outcome :func:`sealed_outcome` built."""
    return outcome.seal is _SEAL


def sealed_outcome(gate: GateResult) -> GateOutcome:
    """The promotion's view of a gate result (called by ``promote`` only, on its own gate)."""
    decision = gate.decision
    verified = {e.envelope_digest: e for e in gate.run.evidence}
    relied_on = {
        name: [verified[ref.digest] for ref in artifact.evidence if ref.digest in verified]
        for name, artifact in decision.artifacts.items()
    }
    return GateOutcome(
        passed=decision.passed,
        policy_digest=decision.policy_digest,
        immutable_tags=tuple(glob.pattern for glob in gate.policy.promotion.immutable_tags),
        evidence=relied_on,
        vsas=dict(gate.vsas),
        platforms={name: a.platforms for name, a in decision.artifacts.items() if a.platforms},
        referrer_types=gate.policy.promotion.referrers,
        stage=gate.policy.stage.name,
        release=frozenset(
            Subject(name, a.digest) for name, a in decision.artifacts.items() if a.digest
        ),
        seal=_SEAL,
    )


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
    """The outcome of :func:`promote`: the gate's result, then the record or the plan."""

    dry_run: bool
    gate: GateResult | None = None
    plans: tuple[ArtifactPlan, ...] = ()
    promotion: Promotion | None = None
    reports: dict[str, CopyReport] = field(default_factory=dict)
    attached: dict[str, list[str]] = field(default_factory=dict)
    """Per artifact: where carried evidence and the promotion record were attached."""
    referrers: dict[str, ReferrerReport] = field(default_factory=dict)
    """Per artifact: other tools' referrers carried to the target, and those left."""
    tags: tuple[TagChange, ...] = ()
    """Tags as applied (``current`` is the digest each pointed to before)."""


@dataclass
class ArtifactState:
    """One artifact on its way: source and target stores, and what was attached."""

    name: str
    source_location: Location
    target_location: Location
    source: ImageStore
    descriptor: Descriptor
    target: ImageStore | None = None
    inputs: list[tuple[str, Digest]] = field(default_factory=list)
    """Carried envelopes: where each was attached at the target, and its digest."""
    attached: list[str] = field(default_factory=list)
    referrers: ReferrerReport | None = None
    """Other tools' referrers carried with the image (set once its copy is verified)."""
