"""Finding ids (a stable contract: design section 4), their default hints and blocking flag.

``evidence.*`` findings other than ``evidence.name-mismatch`` never block by themselves: the
evidence they describe simply does not count, so the requirement it was meant to satisfy
fails on its own if nothing else satisfies it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

REFERENCE_NOT_DIGEST: Final = "reference.not-digest"
REFERENCE_INVALID: Final = "reference.invalid"
RELEASE_MISSING_ARTIFACT: Final = "release.missing-artifact"
RELEASE_UNEXPECTED_ARTIFACT: Final = "release.unexpected-artifact"
RELEASE_MIXED_REVISIONS: Final = "release.mixed-revisions"
RELEASE_MIXED_RUNS: Final = "release.mixed-runs"
ARTIFACT_WRONG_REPOSITORY: Final = "artifact.wrong-repository"
ARTIFACT_NOT_FOUND: Final = "artifact.not-found"
#: Kept in the contract; not produced since a store serving other bytes for a digest is
#: exit 3 (the gate cannot decide on a broken store), never a signed FAILED decision.
ARTIFACT_DIGEST_MISMATCH: Final = "artifact.digest-mismatch"
ARTIFACT_DENIED: Final = "artifact.denied"
ARTIFACT_PLATFORM_MISMATCH: Final = "artifact.platform-mismatch"
EVIDENCE_MALFORMED: Final = "evidence.malformed"
EVIDENCE_UNVERIFIED: Final = "evidence.unverified"
EVIDENCE_FUTURE_TIME: Final = "evidence.future-time"
EVIDENCE_NAME_MISMATCH: Final = "evidence.name-mismatch"
PROVENANCE_MISSING: Final = "provenance.missing"
PROVENANCE_UNTRUSTED_SIGNER: Final = "provenance.untrusted-signer"
PROVENANCE_SOURCE_MISMATCH: Final = "provenance.source-mismatch"
PROVENANCE_BUILDER_MISMATCH: Final = "provenance.builder-mismatch"
PROVENANCE_STALE: Final = "provenance.stale"
LANE_MISSING: Final = "lane.missing"
LANE_FAILED: Final = "lane.failed"
LANE_UNTRUSTED_SIGNER: Final = "lane.untrusted-signer"
LANE_NOT_TOGETHER: Final = "lane.not-together"
LANE_STALE: Final = "lane.stale"
LANE_REVISION_MISMATCH: Final = "lane.revision-mismatch"
LANE_SOURCE_MISMATCH: Final = "lane.source-mismatch"
LANE_PLATFORM_MISSING: Final = "lane.platform-missing"
PROMOTION_TAG_IMMUTABLE: Final = "promotion.tag-immutable"
VSA_MISSING: Final = "vsa.missing"
VSA_POLICY_MISMATCH: Final = "vsa.policy-mismatch"
VSA_STALE: Final = "vsa.stale"
VSA_WARN_ONLY: Final = "vsa.warn-only"
STAGE_MISSING: Final = "stage.missing"
STAGE_UNTRUSTED_SIGNER: Final = "stage.untrusted-signer"
STAGE_SOAK_TOO_SHORT: Final = "stage.soak-too-short"

#: id -> default hint: what to run or fix.
HINTS: Final[dict[str, str]] = {
    REFERENCE_NOT_DIGEST: "capture by digest: digestgate capture NAME IMAGE@sha256:<hex>",
    REFERENCE_INVALID: "re-run digestgate capture; a digest is sha256: and 64 lowercase hex",
    RELEASE_MISSING_ARTIFACT: "capture every artifact the policy lists into release.json",
    RELEASE_UNEXPECTED_ARTIFACT: "remove it from release.json or add it to the policy's artifacts",
    RELEASE_MIXED_REVISIONS: "build every artifact of a release from one source revision",
    RELEASE_MIXED_RUNS: "build every artifact of a release in one workflow run",
    ARTIFACT_WRONG_REPOSITORY: "push the image to a repository the policy allows",
    ARTIFACT_NOT_FOUND: "push the image again, or fix the location in release.json",
    ARTIFACT_DIGEST_MISMATCH: "the registry served other bytes; do not promote from it",
    ARTIFACT_DENIED: "this digest is on the policy's deny list; build and validate a new one",
    ARTIFACT_PLATFORM_MISMATCH: "re-capture the index; list only platforms it offers in lanes",
    EVIDENCE_MALFORMED: "remove the unreadable file from the evidence store",
    EVIDENCE_UNVERIFIED: "sign evidence with a key listed under the policy's keys",
    EVIDENCE_FUTURE_TIME: "check the signer's clock; evidence dated in the future never counts",
    EVIDENCE_NAME_MISMATCH: "evidence names this digest as another artifact; re-attest",
    PROVENANCE_MISSING: "run digestgate attest provenance for this release",
    PROVENANCE_UNTRUSTED_SIGNER: "sign provenance with a key listed under provenance.signers",
    PROVENANCE_SOURCE_MISMATCH: "build from the policy's source repository, refs and events",
    PROVENANCE_BUILDER_MISMATCH: "build with the workflow the policy names as provenance.builder",
    PROVENANCE_STALE: "rebuild and re-attest: the provenance is older than maxAge",
    LANE_MISSING: "run the lane and digestgate attest test-result for these digests",
    LANE_FAILED: "fix the failing tests and re-run the lane",
    LANE_UNTRUSTED_SIGNER: "sign lane results with a key listed under the lane's signers",
    LANE_NOT_TOGETHER: "run the lane once against all of the release's artifacts together",
    LANE_STALE: "re-run the lane: its result is older than maxAge",
    LANE_REVISION_MISMATCH: "run the lane on this release's revision and run",
    LANE_SOURCE_MISMATCH: "run the lane from a ref and event the policy's source section allows",
    LANE_PLATFORM_MISSING: "run the lane on that platform: attest test-result --platform OS/ARCH",
    PROMOTION_TAG_IMMUTABLE: "use a new tag; immutable tags are never moved",
    VSA_MISSING: "run digestgate gate --vsa-key ... for this digest with a gate key",
    VSA_POLICY_MISMATCH: "re-run the gate under the policy this deployment pins",
    VSA_STALE: "re-run the gate: its decision is older than gate.maxAge",
    VSA_WARN_ONLY: "a warn-only gate decides nothing; gate under enforcement: enforce",
    STAGE_MISSING: "promote exactly this release to the required stage first",
    STAGE_UNTRUSTED_SIGNER: "promote to the required stage with a key listed under gate.signers",
    STAGE_SOAK_TOO_SHORT: "wait until the release has soaked in the required stage, then re-run",
}

ALL_IDS: Final = frozenset(HINTS)

#: evidence findings that only say some evidence did not count.
NON_BLOCKING: Final = frozenset({EVIDENCE_MALFORMED, EVIDENCE_UNVERIFIED, EVIDENCE_FUTURE_TIME})


def is_blocking(finding_id: str) -> bool:
    """True when a finding with this id denies the release by itself."""
    return finding_id not in NON_BLOCKING


@dataclass(frozen=True, slots=True, order=True)
class Finding:
    """One reason, with a stable id, a message naming the evidence, and what to do next.

    ``artifact`` is the artifact name (None for release-wide findings); ``requirement`` is
    the table row it belongs to (``artifact``, ``provenance``, ``lane:NAME``, ``release``,
    ``evidence``, ``vsa``).
    """

    id: str
    message: str
    hint: str
    artifact: str | None = None
    requirement: str = "release"

    @property
    def blocking(self) -> bool:
        """True when this finding denies by itself."""
        return is_blocking(self.id)


def finding(
    finding_id: str,
    message: str,
    *,
    artifact: str | None = None,
    requirement: str = "release",
    hint: str | None = None,
) -> Finding:
    """A finding with the id's default hint (unknown ids are a bug)."""
    if finding_id not in HINTS:
        raise ValueError(f"unknown finding id {finding_id}")
    return Finding(finding_id, message, hint or HINTS[finding_id], artifact, requirement)


def printable(text: str) -> str:
    """``text`` with control characters escaped (terminal- and log-safe)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)


def shown(value: object, limit: int = 80) -> str:
    """A value from evidence made safe to print: control characters escaped, length capped."""
    text = str(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return printable(text)
