"""What the gate decides: inputs it reads from a release, and the decision it returns (pure).

The gate reads a release through the small read-only protocols below, so it accepts both a
``release.json`` and a ``promoted.json`` (whose locations are the promoted images).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from digestgate.digest import Digest
from digestgate.platforms import PlatformImage
from digestgate.reference import Location
from digestgate.rules.findings import Finding

Verdict = Literal["PASSED", "FAILED"]


class SourceView(Protocol):
    """The release's recorded source (unsigned; cross-checked against signed evidence)."""

    @property
    def repository(self) -> str | None: ...
    @property
    def revision(self) -> str | None: ...
    @property
    def ref(self) -> str | None: ...
    @property
    def run_id(self) -> str | None: ...


class ArtifactView(Protocol):
    """One artifact of a release: the image text as written and its parsed location.

    ``reference_problem`` is ``"not-digest"`` for a reference without a digest,
    ``"invalid"`` for one that does not parse (uppercase, short or non-hex digests), else
    None, in which case ``location`` carries the digest.
    """

    @property
    def image_text(self) -> str: ...
    @property
    def location(self) -> Location | None: ...
    @property
    def reference_problem(self) -> str | None: ...


class ReleaseView(Protocol):
    """A release or promotion: its source and its artifacts by name."""

    @property
    def source(self) -> SourceView: ...
    @property
    def artifacts(self) -> Mapping[str, ArtifactView]: ...


RegistryStatus = Literal["ok", "not-found"]


@dataclass(frozen=True, slots=True)
class RegistryCheck:
    """The outcome of confirming an artifact where the release says it is."""

    status: RegistryStatus
    detail: str = ""
    platforms: tuple[PlatformImage, ...] | None = None
    """An index's children by platform, read from the bytes fetched (None: not an index)."""
    platform_problem: str = ""
    """Why the fetched index cannot be decided per platform (e.g. a child without one)."""


@dataclass(frozen=True, slots=True, order=True)
class EvidenceRef:
    """An envelope the decision relied on: its digest, where it was read, its predicate."""

    digest: Digest
    origin: str
    predicate_type: str


@dataclass(frozen=True, slots=True)
class RequirementStatus:
    """One table row: a requirement of one artifact and why it passed or failed."""

    requirement: str
    passed: bool
    reason: str


@dataclass(frozen=True, slots=True)
class ArtifactDecision:
    """The verdict for one artifact, with its findings and the evidence that counted."""

    name: str
    image: str
    digest: Digest | None
    passed: bool
    findings: tuple[Finding, ...]
    evidence: tuple[EvidenceRef, ...]
    requirements: tuple[RequirementStatus, ...]
    platforms: tuple[PlatformImage, ...] = ()
    """An index's children that every lane requires: the VSA names them beside the index."""

    @property
    def verdict(self) -> Verdict:
        """``PASSED`` or ``FAILED``."""
        return "PASSED" if self.passed else "FAILED"


@dataclass(frozen=True, slots=True)
class Decision:
    """The gate's decision: overall verdict, per-artifact decisions, release findings."""

    passed: bool
    policy_digest: Digest
    time: datetime
    artifacts: Mapping[str, ArtifactDecision]
    findings: tuple[Finding, ...]

    @property
    def verdict(self) -> Verdict:
        """``PASSED`` or ``FAILED``."""
        return "PASSED" if self.passed else "FAILED"

    def all_findings(self) -> tuple[Finding, ...]:
        """Release-level findings, then every artifact's, in report order."""
        result = list(self.findings)
        for name in sorted(self.artifacts):
            result.extend(self.artifacts[name].findings)
        return tuple(result)

    @property
    def finding_ids(self) -> frozenset[str]:
        """Every finding id anywhere in the decision."""
        return frozenset(f.id for f in self.all_findings())
