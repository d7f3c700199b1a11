"""The gate verb: read evidence, verify signatures, confirm the images, evaluate.

``gate`` and ``promote`` share this: signatures are checked before any payload is read
(an envelope no trusted key verifies is reported, never parsed), every store is read once,
and unless offline each artifact is fetched by digest where the release says it is and its
bytes hashed. A store or registry that cannot answer stops with exit 3 (could not decide),
never a pass and never a silent block.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from digestgate.errors import ConfigError, IntegrityError, NotFoundError, UsageError
from digestgate.evidence.model import (
    PAYLOAD_TYPE,
    VSA,
    EvidenceProblem,
    Subject,
    VerifiedEvidence,
)
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
    subjects: tuple[SubjectLocation, ...]
    """The artifacts the gate contacted: pinned, and where the policy allows them."""


def subject_locations(policy: Policy, release: ReleaseView) -> list[SubjectLocation]:
    """The release's pinned artifacts that the policy allows where they are.

    Only these are ever contacted (evidence read, digest confirmed, VSA attached). The
    release file is not signed: a repository the policy does not allow must not receive a
    request, let alone registry credentials. Evaluation blocks the others
    (``artifact.wrong-repository``, ``release.unexpected-artifact``).
    """
    result = []
    for name, artifact in sorted(release.artifacts.items()):
        rule = policy.artifacts.get(name)
        if rule is None or artifact_digest(artifact) is None or artifact.location is None:
            continue
        if rule.repository.matches(artifact.location.name):
            result.append(SubjectLocation(name, artifact.location))
    return result


def collect_evidence(
    stores: Sequence[EvidenceStore],
    subjects: Sequence[SubjectLocation],
    verify: EnvelopeVerifier,
) -> tuple[list[VerifiedEvidence], list[EvidenceProblem]]:
    """Read every store, verify every envelope; unreadable entries become problems."""
    envelopes, store_problems = read_all(stores, subjects)
    evidence: list[VerifiedEvidence] = []
    problems = [EvidenceProblem("malformed", p.origin, p.message) for p in store_problems]
    for envelope in envelopes:
        result = verify(envelope.raw, envelope.origin)
        if isinstance(result, VerifiedEvidence):
            evidence.append(result)
        else:
            problems.append(result)
    return evidence, problems


def confirm_artifacts(
    subjects: Sequence[SubjectLocation], stores: Stores
) -> dict[str, RegistryCheck]:
    """Fetch each pinned artifact's manifest by digest and hash it where the release says.

    Absent -> ``not-found``; bytes that hash otherwise -> ``digest-mismatch``. Any other
    failure (network, auth, storage) propagates as an operational error (exit 3).
    """
    checks: dict[str, RegistryCheck] = {}
    for subject in subjects:
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
    subjects = subject_locations(policy, release)
    evidence, problems = collect_evidence(evidence_stores, subjects, verify)
    checks = None if images is None else confirm_artifacts(subjects, images)
    decision = evaluate(policy, release, evidence, problems, now, checks)
    return GateRun(decision, tuple(evidence), tuple(problems), tuple(subjects))


def load_trusted_keys(policy: Policy) -> tuple[Policy, dict[str, Any]]:
    """Load every policy key (exit 2 when one cannot be loaded).

    Returns the policy with ``key_ids`` filled in, so thresholds count distinct key
    material, and the keys by local name for envelope verification.
    """
    from digestgate.evidence.keys import load_public_key

    trusted: dict[str, Any] = {}
    for name, path in sorted(policy.keys.items()):
        try:
            trusted[name] = load_public_key(path)
        except ConfigError as exc:
            raise ConfigError(
                f"{policy.source_name}: key {name!r}: {exc.message}", hint=exc.hint
            ) from exc
    key_ids = {name: str(key.keyid) for name, key in trusted.items()}
    return replace(policy, key_ids=key_ids), trusted


def check_vsa_signer(policy: Policy, signer: Any) -> None:
    """Refuse a VSA key that ``verify`` would not trust under this policy (exit 2).

    ``policy`` must come from :func:`load_trusted_keys` (key ids filled in). A policy without
    a ``gate`` section names no VSA signers, so any key is accepted there.
    """
    if policy.gate is None:
        return
    allowed = {policy.key_ids.get(name) for name in policy.gate.signers}
    keyid = getattr(getattr(signer, "public_key", None), "keyid", None)
    if keyid not in allowed:
        raise UsageError(
            "the VSA key is not one of the policy's gate.signers: `verify` would reject "
            "every VSA it signs",
            hint=f"sign with the key listed as {', '.join(policy.gate.signers)} in the policy, "
            "or add its public key there",
        )


def envelope_verifier(trusted: Mapping[str, Any]) -> EnvelopeVerifier:
    """Verify envelopes against every trusted policy key (signatures before payloads)."""
    from digestgate.evidence.dsse import verify_envelope

    def verify(raw: bytes, origin: str) -> VerifiedEvidence | EvidenceProblem:
        result: VerifiedEvidence | EvidenceProblem = verify_envelope(raw, trusted, origin=origin)
        return result

    return verify


def sign_vsas(
    run: GateRun,
    *,
    policy_uri: str,
    signer: Any,
    store: EvidenceStore,
    now: datetime,
) -> list[str]:
    """Sign one VSA per pinned artifact into ``store``; return where they were written.

    An artifact's VSA says PASSED only when the whole release passed: a release that is
    blocked for any reason must not leave a deployable PASSED record behind.
    """
    from digestgate.evidence.dsse import sign_envelope
    from digestgate.evidence.statements import (
        statement_bytes,
        vsa_predicate,
    )

    decision = run.decision
    release_ids = [f.id for f in decision.findings if f.blocking]
    written: list[str] = []
    for subject in run.subjects:
        artifact = decision.artifacts.get(subject.name)
        if artifact is None:
            continue
        passed = decision.passed and artifact.passed
        predicate = vsa_predicate(
            result="PASSED" if passed else "FAILED",
            policy_digest=decision.policy_digest,
            policy_uri=policy_uri,
            resource_uri=str(subject.location),
            input_attestations=[(e.origin, e.digest) for e in artifact.evidence],
            time_verified=now,
            kind="gate",
            source=None,
            findings=[*release_ids, *(f.id for f in artifact.findings if f.blocking)],
        )
        payload = statement_bytes([Subject(subject.name, subject.digest)], VSA, predicate)
        envelope = sign_envelope(payload, PAYLOAD_TYPE, [signer])
        written.extend(store.write(envelope, predicate="vsa", subjects=[subject]))
    return written
