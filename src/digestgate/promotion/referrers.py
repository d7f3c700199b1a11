"""Referrers written by other tools (signatures, SBOMs, attestations), carried by promotion.

For each promoted image, the index and each of its children, every referrer in the source
repository is read (Referrers API or the ``sha256-<hex>`` fallback index), its manifest
fetched and hashed, and its artifact type taken from the manifest itself (``artifactType``,
else the config media type; a listing's claim is not trusted, specs 13). A referrer is
carried when its type matches ``promotion.referrers``: its blobs are copied (mounted where
the registry allows) and its manifest is put with the exact bytes, so it keeps its digest;
then the target's referrer listing is read back and every carried referrer must be in it
(else exit 3). Everything else is left, with the reason: types the policy does not name
(junk pushed to staging stays there), manifests that do not name the subject, nested
indexes, and digestgate's own evidence, which travels only as the verified envelopes the
gate relied on (:mod:`digestgate.promotion.evidence`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from digestgate.digest import Digest
from digestgate.errors import IntegrityError
from digestgate.evidence.store.attached import READ_LAYER_TYPES
from digestgate.oci.manifest import Descriptor, ImageIndex, ImageManifest, Manifest
from digestgate.oci.store import ImageStore, put_referrers
from digestgate.policy.model import Glob
from digestgate.promotion.copy import CopyReport, copy_blobs

#: The types digestgate reads as evidence (its own envelopes and Sigstore bundles): carried
#: only as the verified evidence the gate relied on, never as whatever staging holds, or
#: anyone who can push to staging could plant evidence-shaped junk in production.
OWN_TYPES: Final = frozenset(READ_LAYER_TYPES)


@dataclass(frozen=True, slots=True, order=True)
class ReferrerEntry:
    """One referrer: its subject, its manifest digest, its artifact type, why it was left."""

    subject: Digest
    digest: Digest
    artifact_type: str
    reason: str = ""

    def to_json(self) -> dict[str, str]:
        """JSON form (``reason`` only for a referrer that was left)."""
        out = {
            "subject": str(self.subject),
            "digest": str(self.digest),
            "artifactType": self.artifact_type,
        }
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass
class ReferrerReport:
    """What one artifact's promotion carried and what it left at the source."""

    carried: list[ReferrerEntry] = field(default_factory=list)
    left: list[ReferrerEntry] = field(default_factory=list)

    def to_json(self) -> dict[str, list[dict[str, str]]]:
        """JSON form, sorted."""
        return {
            "carried": [e.to_json() for e in sorted(self.carried)],
            "left": [e.to_json() for e in sorted(self.left)],
        }


def artifact_type(manifest: Manifest) -> str:
    """The manifest's own artifact type: ``artifactType``, else its config media type."""
    if manifest.artifact_type:
        return manifest.artifact_type
    if isinstance(manifest, ImageManifest):
        return manifest.config.media_type
    return ""


def subjects_of(source: ImageStore, root: Descriptor) -> list[Descriptor]:
    """The image and, for an index, every manifest it lists (children and BuildKit's
    attestation manifests): each may have referrers of its own."""
    found = [root]
    if root.is_index:
        index = source.get_manifest(root.digest)
        if isinstance(index, ImageIndex):
            found.extend(Descriptor(e.media_type, e.digest, e.size) for e in index.manifests)
    return found


def _why_left(manifest: Manifest, subject: Digest, allowed: Sequence[Glob]) -> str:
    kind = artifact_type(manifest)
    if manifest.subject is None or manifest.subject.digest != subject:
        return "listed as a referrer but its manifest does not name this subject"
    if kind in OWN_TYPES:
        return "evidence digestgate reads: only what the gate verified and relied on travels"
    if not any(pattern.matches(kind) for pattern in allowed):
        return "artifact type not named by promotion.referrers"
    if not isinstance(manifest, ImageManifest):
        return "a referrer that is an index is not carried"
    return ""


def carry_referrers(
    source: ImageStore, target: ImageStore, root: Descriptor, allowed: Sequence[Glob]
) -> ReferrerReport:
    """Carry the allowed referrers of ``root`` and its children; verify they are listed."""
    report = ReferrerReport()
    for subject in subjects_of(source, root):
        carried: list[ReferrerEntry] = []
        manifests: list[tuple[bytes, str]] = []
        for entry in source.referrers(subject.digest):
            manifest = source.get_manifest(entry.digest)  # hashed against the listed digest
            kind = artifact_type(manifest)
            reason = _why_left(manifest, subject.digest, allowed)
            if reason or not isinstance(manifest, ImageManifest):  # _why_left names an index
                report.left.append(ReferrerEntry(subject.digest, manifest.digest, kind, reason))
                continue
            # The image copy's blob engine: mounts, retries, resumes, hashes every byte.
            copy_blobs(source, target, list(manifest.blobs), 1, CopyReport(), None)
            manifests.append((manifest.raw, manifest.media_type))
            carried.append(ReferrerEntry(subject.digest, manifest.digest, kind))
        if carried:
            # One index update per subject on a registry without the Referrers API.
            put_referrers(target, subject, manifests)
            _verify_listed(target, subject.digest, carried)
        report.carried.extend(carried)
    return report


def _verify_listed(target: ImageStore, subject: Digest, carried: Sequence[ReferrerEntry]) -> None:
    """Every carried referrer is listed at the target and hashes to its digest."""
    listed = {d.digest for d in target.referrers(subject)}
    for entry in carried:
        if entry.digest not in listed:
            raise IntegrityError(
                f"referrer {entry.digest.short} of {subject.short} was written to "
                f"{target.location} but is not listed there",
                hint="the target registry did not keep the referrer listing; run promote again",
            )
        target.get_manifest(entry.digest)  # the stored bytes hash to the digest
