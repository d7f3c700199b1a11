"""``verify``: the deploy-side check that an image digest carries a PASSED gate decision.

The image is named by the deployment (a trusted caller) and must still come from a
repository the policy names for one of its artifacts: evidence is read only there, and a
repository outside the policy receives no request (design section 8). The rule itself is
pure (:func:`~digestgate.rules.verify.verify_digest`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from digestgate.digest import Digest
from digestgate.errors import ConfigError, UsageError
from digestgate.evidence.store.base import EvidenceStore, SubjectLocation
from digestgate.gating.gate import collect_evidence, evidence_verifier
from digestgate.policy.model import Policy
from digestgate.reference import Location, parse_location
from digestgate.rules import findings as ids
from digestgate.rules.findings import finding, shown
from digestgate.rules.verify import VerifyDecision, gate_rule, verify_digest


def pinned_location(image: str) -> Location:
    """``image`` parsed, refusing a reference without a digest (a tag can move)."""
    location = parse_location(image)
    if location.digest is None:
        raise UsageError(
            f"{image[:200]} is not pinned by digest",
            hint="verify IMAGE@sha256:<digest>; `digestgate resolve` prints it (a tag can move)",
        )
    return location


def accepted_digests(policy: Policy, pins: Iterable[str]) -> frozenset[Digest]:
    """The policy digests whose decisions count: the pins, which must include this policy.

    Without pins, only this policy's own digest. A policy file whose digest is not pinned
    was changed (its text, or a key beside it): that is a configuration error (exit 2).
    """
    pinned = frozenset(Digest.parse(pin.strip()) for pin in pins)
    if not pinned:
        return frozenset({policy.digest})
    if policy.digest not in pinned:
        raise ConfigError(
            f"{policy.source_name}: its digest {policy.digest} is not one of the pinned "
            "--policy-digest values: the policy or one of its keys changed",
            hint="compare `digestgate policy digest --policy FILE` with what the deployment "
            "pins; pin the new digest only after reviewing the change",
        )
    return pinned


def artifact_for(policy: Policy, location: Location) -> str | None:
    """The policy artifact whose ``repository`` pattern matches ``location`` (first by name)."""
    for name in sorted(policy.artifacts):
        if policy.artifacts[name].repository.matches(location.name):
            return name
    return None


def verify(
    *,
    image: Location,
    policy: Policy,
    evidence_stores: Sequence[EvidenceStore],
    now: datetime,
    accepted: frozenset[Digest] | None = None,
    deny: frozenset[Digest] = frozenset(),
) -> VerifyDecision:
    """Check ``image`` (pinned by digest) for a fresh PASSED gate VSA under ``policy``."""
    gate_rule(policy)
    digest = image.digest
    if digest is None:
        raise UsageError(f"{image} is not pinned by digest")
    name = artifact_for(policy, image)
    if name is None:
        message = (
            f"{shown(image.name, 200)} is not a repository the policy names for any "
            "artifact; its evidence was not read"
        )
        wrong = finding(ids.ARTIFACT_WRONG_REPOSITORY, message, requirement="vsa")
        return VerifyDecision(digest, False, (wrong,), None)
    evidence, problems, _ = collect_evidence(
        evidence_stores, [SubjectLocation(name, image)], evidence_verifier(policy)
    )
    return verify_digest(policy, digest, evidence, problems, now, accepted=accepted, deny=deny)
