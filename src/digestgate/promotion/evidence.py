"""Evidence carried to a promoted digest, and the signed promotion record that names it.

Step 4 of :mod:`digestgate.promotion.promote`: the verified evidence the gate relied on, the
gate's VSA and a promotion record (VSA ``digestgate_kind: promotion``) are attached to the
target digest in one batch per artifact, as soon as its copy is verified.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from digestgate.digest import Digest
from digestgate.evidence.model import PAYLOAD_TYPE, VSA, Subject
from digestgate.evidence.store.base import EvidenceStore, SubjectLocation
from digestgate.oci.open import Stores
from digestgate.promotion.model import ArtifactState, GateOutcome
from digestgate.rules.stages import record_fields

if TYPE_CHECKING:
    from securesystemslib.signer import Signer


def attach_evidence(
    artifact: ArtifactState,
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
    for child in outcome.platforms.get(artifact.name, ()):
        # A node pulls the child for its platform; `verify` of that digest reads the VSA
        # attached to it (the VSA names the child as a subject).
        child_subject = SubjectLocation(
            artifact.name, artifact.target_location.with_digest(child.digest)
        )
        child_batch = AttachedStore(stores, clock=lambda: now).batch(child_subject)
        artifact.attached.append(child_batch.add(gate_vsa, predicate="vsa"))
        child_batch.commit()
    if evidence_dir is not None:
        artifact.attached.extend(evidence_dir.write(record, predicate="vsa", subjects=[subject]))


def _promotion_record(
    artifact: ArtifactState,
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
    if outcome.stage is not None:
        # The stage and the whole release are signed: a record for another stage, or for
        # other digests, never satisfies a later stage's requires (docs/promotion.md).
        predicate.update(record_fields(outcome.stage, outcome.release))
    payload = statement_bytes([Subject(artifact.name, subject.digest)], VSA, predicate)
    return sign_envelope(payload, PAYLOAD_TYPE, [signer])
