"""The gate verb: read evidence, verify signatures, confirm the images, evaluate.

``gate`` and ``promote`` share this: signatures are checked before any payload is read
(an envelope no trusted key verifies is reported, never parsed), every store is read once,
and unless offline each artifact is fetched by digest where the release says it is and its
bytes hashed. A store or registry that cannot answer stops with exit 3 (could not decide),
never a pass and never a silent block.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from digestgate.errors import IntegrityError, NotFoundError
from digestgate.evidence.model import EvidenceProblem, VerifiedEvidence
from digestgate.evidence.store.base import EvidenceStore, SubjectLocation
from digestgate.evidence.store.open import read_all
from digestgate.gate.decision import Decision, RegistryCheck, ReleaseView
from digestgate.gate.evaluate import artifact_digest, evaluate
from digestgate.oci.open import Stores
from digestgate.policy.model import Policy

#: Verifies one envelope's bytes (signatures first) into evidence or a problem.
EnvelopeVerifier = Callable[[bytes, str], VerifiedEvidence | EvidenceProblem]


@dataclass(frozen=True, slots=True)
class GateRun:
    """A decision and everything it was made from (for VSAs and reports)."""

    decision: Decision
    evidence: tuple[VerifiedEvidence, ...]
    problems: tuple[EvidenceProblem, ...]


def subject_locations(release: ReleaseView) -> list[SubjectLocation]:
    """The release's artifacts that are pinned by digest, as store subjects."""
    result = []
    for name, artifact in sorted(release.artifacts.items()):
        if artifact_digest(artifact) is not None and artifact.location is not None:
            result.append(SubjectLocation(name, artifact.location))
    return result


def collect_evidence(
    stores: Sequence[EvidenceStore], release: ReleaseView, verify: EnvelopeVerifier
) -> tuple[list[VerifiedEvidence], list[EvidenceProblem]]:
    """Read every store, verify every envelope; unreadable entries become problems."""
    envelopes, store_problems = read_all(stores, subject_locations(release))
    evidence: list[VerifiedEvidence] = []
    problems = [EvidenceProblem("malformed", p.origin, p.message) for p in store_problems]
    for envelope in envelopes:
        result = verify(envelope.raw, envelope.origin)
        if isinstance(result, VerifiedEvidence):
            evidence.append(result)
        else:
            problems.append(result)
    return evidence, problems


def confirm_artifacts(release: ReleaseView, stores: Stores) -> dict[str, RegistryCheck]:
    """Fetch each pinned artifact's manifest by digest and hash it where the release says.

    Absent -> ``not-found``; bytes that hash otherwise -> ``digest-mismatch``. Any other
    failure (network, auth, storage) propagates as an operational error (exit 3).
    """
    checks: dict[str, RegistryCheck] = {}
    for subject in subject_locations(release):
        try:
            store = stores.open(subject.location.with_digest(subject.digest))
            store.get_manifest(subject.digest)
        except NotFoundError as exc:
            checks[subject.name] = RegistryCheck("not-found", exc.message)
        except IntegrityError as exc:
            checks[subject.name] = RegistryCheck("digest-mismatch", exc.message)
        else:
            checks[subject.name] = RegistryCheck("ok")
    return checks


def run_gate(
    policy: Policy,
    release: ReleaseView,
    evidence_stores: Sequence[EvidenceStore],
    verify: EnvelopeVerifier,
    *,
    now: datetime,
    images: Stores | None,
) -> GateRun:
    """Decide ``release`` under ``policy``; ``images=None`` skips the registry check."""
    evidence, problems = collect_evidence(evidence_stores, release, verify)
    checks = None if images is None else confirm_artifacts(release, images)
    decision = evaluate(policy, release, evidence, problems, now, checks)
    return GateRun(decision, tuple(evidence), tuple(problems))
