"""The gate verb: read evidence, verify signatures, confirm the images, evaluate, sign VSAs.

``gate`` and ``promote`` share this one path (:func:`gate`): signatures are checked
before any payload is read (an envelope no trusted key verifies is reported, never parsed),
every store is read once, and unless offline each artifact is fetched by digest where the
release says it is and its bytes hashed. Attached evidence is read only from the
repositories the policy names for each artifact (``artifacts.NAME.evidence``), never from
where the unsigned release file points. A store or registry that cannot answer, or a read
cut short by a cap, stops with exit 3 (could not decide): never a pass, never a signed FAILED.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Final

from digestgate.concurrency import run_all
from digestgate.digest import Digest
from digestgate.errors import ConfigError, IntegrityError, NotFoundError, UsageError
from digestgate.evidence.model import (
    PAYLOAD_TYPE,
    VSA,
    EvidenceProblem,
    Subject,
    VerifiedEvidence,
)
from digestgate.evidence.store.base import EvidenceStore, StoredEnvelope, SubjectLocation
from digestgate.evidence.store.open import read_all
from digestgate.oci.manifest import ImageIndex
from digestgate.oci.open import Stores
from digestgate.platforms import PlatformError, index_platforms, subject_name
from digestgate.policy.model import Policy
from digestgate.policy.stages import Enforcement
from digestgate.rules.decision import Decision, RegistryCheck, ReleaseView
from digestgate.rules.enforcement import vsa_result, warn_fields
from digestgate.rules.evaluate import artifact_digest, evaluate
from digestgate.rules.stages import apply_stages

#: Verifies one envelope's bytes (signatures first) into evidence or a problem.
EnvelopeVerifier = Callable[[bytes, str], VerifiedEvidence | EvidenceProblem]

#: Unusable entries listed by name in a VSA; the rest are counted (an attacker who can
#: write the store must not be able to inflate every signed decision without bound).
MAX_UNUSABLE_LISTED: Final = 100


@dataclass(frozen=True, slots=True)
class SeenEnvelope:
    """An envelope the gate read: where, its sha256, and whether its signature verified."""

    origin: str
    digest: Digest
    verified: bool


@dataclass(frozen=True, slots=True)
class GateRun:
    """A decision and everything it was made from (for VSAs and reports)."""

    decision: Decision
    evidence: tuple[VerifiedEvidence, ...]
    problems: tuple[EvidenceProblem, ...]
    subjects: tuple[SubjectLocation, ...]
    """The artifacts the gate confirmed and decided on: pinned, where the policy allows them."""
    seen: tuple[SeenEnvelope, ...] = ()
    """Every envelope read, verified or not (VSAs list them for audits)."""


@dataclass(frozen=True)
class GateResult:
    """What :func:`gate` returns: the run, the policy, and the signed VSAs."""

    policy: Policy
    run: GateRun
    vsas: Mapping[str, bytes] = field(default_factory=dict)
    """Per artifact name: the gate's signed VSA envelope (PASSED or FAILED)."""
    written: tuple[str, ...] = ()
    """Where the VSAs were stored (empty when none were written)."""
    enforcement: Enforcement = "enforce"
    """``warn``: the gate reported but did not block, and its VSAs all say FAILED."""

    @property
    def decision(self) -> Decision:
        """The gate's decision."""
        return self.run.decision

    @property
    def passed(self) -> bool:
        """True when the whole release passed."""
        return self.run.decision.passed


def subject_locations(policy: Policy, release: ReleaseView) -> list[SubjectLocation]:
    """The release's pinned artifacts that the policy allows where they are.

    Only these are confirmed (digest fetched and hashed) and get a VSA. The release file is
    not signed: a repository the policy does not allow must not receive a request, let alone
    registry credentials. Evaluation blocks the others (``artifact.wrong-repository``,
    ``release.unexpected-artifact``).
    """
    result = []
    for name, artifact in sorted(release.artifacts.items()):
        rule = policy.artifacts.get(name)
        if rule is None or artifact_digest(artifact) is None or artifact.location is None:
            continue
        if rule.repository.matches(artifact.location.name):
            result.append(SubjectLocation(name, artifact.location))
    return result


def evidence_subjects(policy: Policy, release: ReleaseView) -> list[SubjectLocation]:
    """Where attached evidence is read: each pinned artifact's digest in every repository
    the policy lists under ``artifacts.NAME.evidence`` (never a repository the release
    names: the release file does not choose which evidence the gate sees)."""
    result: list[SubjectLocation] = []
    for name, artifact in sorted(release.artifacts.items()):
        rule = policy.artifacts.get(name)
        digest = artifact_digest(artifact)
        if rule is None or digest is None:
            continue
        result.extend(SubjectLocation(name, repo.with_digest(digest)) for repo in rule.evidence)
    return result


def check_attached_sources(policy: Policy, stores: Sequence[EvidenceStore]) -> None:
    """An ``attached`` store needs the policy to name where each artifact's evidence is."""
    from digestgate.evidence.store.attached import AttachedStore

    if not any(isinstance(store, AttachedStore) for store in stores):
        return
    missing = sorted(name for name, rule in policy.artifacts.items() if not rule.evidence)
    if missing:
        raise ConfigError(
            f"{policy.source_name}: artifacts.{missing[0]}.evidence is not set, so the "
            "attached evidence store does not know which repository to read"
            + (f" (also: {', '.join(missing[1:])})" if len(missing) > 1 else ""),
            hint=f"add evidence: [REGISTRY/REPO] under artifacts.{missing[0]} naming the "
            "staging repository the pipeline attests in (the release file never chooses it)",
        )


def collect_evidence(
    stores: Sequence[EvidenceStore],
    subjects: Sequence[SubjectLocation],
    verify: EnvelopeVerifier,
) -> tuple[list[VerifiedEvidence], list[EvidenceProblem], list[SeenEnvelope]]:
    """Read every store, verify every envelope; unusable entries become problems.

    A read a store had to cut short raises (exit 3) before anything is decided.
    """
    envelopes, store_problems = read_all(stores, subjects)
    evidence: list[VerifiedEvidence] = []
    problems = [EvidenceProblem("malformed", p.origin, p.message) for p in store_problems]
    seen: list[SeenEnvelope] = []
    for envelope in envelopes:
        result = verify(envelope.raw, envelope.origin)
        if isinstance(result, VerifiedEvidence):
            evidence.append(result)
        else:
            problems.append(result)
        seen.append(_seen(envelope, isinstance(result, VerifiedEvidence)))
    return evidence, problems, seen


def _seen(envelope: StoredEnvelope, verified: bool) -> SeenEnvelope:
    return SeenEnvelope(envelope.origin, envelope.digest, verified)


def confirm_artifacts(
    subjects: Sequence[SubjectLocation], stores: Stores
) -> dict[str, RegistryCheck]:
    """Fetch each pinned artifact's manifest by digest and hash it where the release says.

    Absent -> ``not-found``. Bytes that do not hash to the digest are fetched once more (a
    short or corrupted answer is a transient fault, not a verdict); when they still do not,
    the store is broken and the gate cannot decide: :class:`IntegrityError` (exit 3), never
    a finding that would be signed as a FAILED decision about a digest nobody examined.
    Any other failure (network, auth, storage) propagates as an operational error (exit 3).
    Artifacts are confirmed side by side.
    """
    found = run_all([partial(_confirm, subject, stores) for subject in subjects])
    return {subject.name: check for subject, check in zip(subjects, found, strict=True)}


def _confirm(subject: SubjectLocation, stores: Stores) -> RegistryCheck:
    store = stores.open(subject.location.with_digest(subject.digest))
    for attempt in (1, 2):
        try:
            manifest = store.get_manifest(subject.digest)
        except NotFoundError as exc:
            return RegistryCheck("not-found", exc.message)
        except IntegrityError as exc:
            if attempt == 1:
                continue
            raise IntegrityError(
                f"{subject.location.name} served bytes for {subject.digest} that do not "
                f"hash to it, twice ({exc.message}); the gate did not decide",
                hint="the registry or layout is damaged or something between rewrites "
                "responses; check it, then run again",
            ) from exc
        return _served(manifest)
    raise AssertionError("unreachable")  # pragma: no cover


def _served(manifest: object) -> RegistryCheck:
    """A confirmed manifest; for an index, its children by platform (from these bytes)."""
    if not isinstance(manifest, ImageIndex):
        return RegistryCheck("ok")
    try:
        return RegistryCheck("ok", platforms=index_platforms(manifest))
    except PlatformError as exc:
        return RegistryCheck("ok", platform_problem=str(exc))


def run_gate(
    policy: Policy,
    release: ReleaseView,
    evidence_stores: Sequence[EvidenceStore],
    verify: EnvelopeVerifier | None = None,
    *,
    now: datetime,
    images: Stores | None,
) -> GateRun:
    """Decide ``release`` under ``policy``; ``images=None`` skips the registry check.

    ``verify`` defaults to signature verification with the policy's keys.
    """
    check_attached_sources(policy, evidence_stores)
    subjects = subject_locations(policy, release)
    verify = verify or evidence_verifier(policy)
    evidence, problems, seen = collect_evidence(
        evidence_stores, evidence_subjects(policy, release), verify
    )
    checks = None if images is None else confirm_artifacts(subjects, images)
    decision = evaluate(policy, release, evidence, problems, now, checks)
    # Promotion records of an earlier stage are VSAs read with the rest of the evidence
    # (attached to the promoted digest, or in a dir: store); rules.stages decides.
    decision = apply_stages(policy, decision, evidence, now)
    return GateRun(decision, tuple(evidence), tuple(problems), tuple(subjects), tuple(seen))


def trusted_keys(policy: Policy) -> dict[str, Any]:
    """The policy's loaded public keys by local name, for envelope verification."""
    return {name: key.key for name, key in policy.keys.items() if key.spki_der}


def evidence_verifier(policy: Policy) -> EnvelopeVerifier:
    """DSSE envelopes against the policy's keys, Sigstore bundles against its identities
    (evidence/sigstore.py; sigstore is imported only when the policy names one)."""
    from digestgate.evidence.sigstore import with_bundles
    from digestgate.policy.sigstore import identities, subject_artifact

    def artifact_for(name: str) -> str | None:
        return subject_artifact(policy.artifacts, name)

    return with_bundles(
        envelope_verifier(trusted_keys(policy)), identities(policy.keys), artifact_for
    )


def check_vsa_signer(policy: Policy, signer: Any) -> None:
    """Refuse a VSA key that ``verify`` would not trust under this policy (exit 2).

    A policy without a ``gate`` section names no VSA signers, so any key is accepted there.
    """
    if policy.gate is None:
        return
    allowed = set(policy.key_ids(policy.gate.signers).values())
    keyid = getattr(getattr(signer, "public_key", None), "keyid", None)
    if keyid not in allowed:
        raise UsageError(
            "the VSA key is not one of the policy's gate.signers: `verify` would reject "
            "every VSA it signs",
            hint=f"sign with the key listed as {', '.join(policy.gate.signers)} in the policy, "
            "or add its public key there",
        )


def envelope_verifier(trusted: Mapping[str, Any]) -> EnvelopeVerifier:
    """Verify envelopes against every trusted policy key (signatures before payloads).

    One verifier is one budget of signature checks (see :class:`~digestgate.evidence.dsse.
    SignatureBudget`): a store full of junk signatures ends in exit 3, not hours of CPU.
    """
    from digestgate.evidence.dsse import SignatureBudget, TrustedKeys, verify_envelope

    budget = SignatureBudget()
    keys = TrustedKeys(trusted)

    def verify(raw: bytes, origin: str) -> VerifiedEvidence | EvidenceProblem:
        result: VerifiedEvidence | EvidenceProblem = verify_envelope(
            raw, keys, origin=origin, budget=budget
        )
        return result

    return verify


def sign_vsas(
    run: GateRun,
    policy: Policy,
    *,
    policy_uri: str,
    signer: Any,
    now: datetime,
    enforcement: Enforcement = "enforce",
) -> dict[str, bytes]:
    """Sign one VSA per decided artifact; return the envelopes by artifact name.

    An artifact's VSA says PASSED only when the whole release passed: a release that is
    blocked for any reason must not leave a deployable PASSED record behind. Each VSA names
    the policy digest and the trusted key ids it was issued under, the envelopes that
    counted (``inputAttestations``) and every envelope the gate saw. In warn mode every
    VSA says FAILED and carries the warn marker (:mod:`digestgate.rules.enforcement`).
    """
    from digestgate.evidence.dsse import sign_envelope
    from digestgate.evidence.statements import statement_bytes, vsa_predicate

    decision = run.decision
    release_ids = [f.id for f in decision.findings if f.blocking]
    roles = policy.roles()
    trusted = [(name, key.keyid, roles.get(name)) for name, key in sorted(policy.keys.items())]
    unusable = run.problems
    signed: dict[str, bytes] = {}
    for subject in run.subjects:
        artifact = decision.artifacts.get(subject.name)
        if artifact is None:
            continue
        passed = decision.passed and artifact.passed
        predicate = vsa_predicate(
            result=vsa_result(passed, enforcement),
            policy_digest=decision.policy_digest,
            policy_uri=policy_uri,
            resource_uri=str(subject.location),
            input_attestations=[(e.origin, e.digest) for e in artifact.evidence],
            time_verified=now,
            kind="gate",
            source=None,
            findings=[*release_ids, *(f.id for f in artifact.findings if f.blocking)],
        )
        predicate["digestgate_trustedKeys"] = [
            {"name": name, "keyid": keyid, **({"role": role} if role else {})}
            for name, keyid, role in trusted
        ]
        if enforcement == "warn":
            predicate.update(warn_fields(passed))
        predicate["digestgate_seen"] = _seen_for(run, subject)
        predicate["digestgate_unusable"] = {
            "count": len(unusable),
            "listed": [{"uri": p.origin, "kind": p.kind} for p in unusable[:MAX_UNUSABLE_LISTED]],
        }
        children = [
            Subject(subject_name(subject.name, p.platform), p.digest) for p in artifact.platforms
        ]
        payload = statement_bytes(
            [Subject(subject.name, subject.digest), *children], VSA, predicate
        )
        signed[subject.name] = sign_envelope(payload, PAYLOAD_TYPE, [signer])
    return signed


def _seen_for(run: GateRun, subject: SubjectLocation) -> list[dict[str, Any]]:
    """The verified envelopes whose statements name this artifact's digest, counted or not."""
    counted = {ref.digest for ref in run.decision.artifacts[subject.name].evidence}
    entries = {
        (ev.origin, str(ev.envelope_digest)): ev.envelope_digest in counted
        for ev in run.evidence
        if subject.digest in ev.statement.digests
    }
    return [
        {"uri": origin, "digest": {"sha256": digest.removeprefix("sha256:")}, "counted": used}
        for (origin, digest), used in sorted(entries.items())
    ]


def vsa_subjects(run: GateRun, subject: SubjectLocation) -> list[SubjectLocation]:
    """Where an artifact's VSA is stored: the index and each child it names (a node pulls
    a child, and ``verify`` of that child digest must find the VSA attached to it)."""
    artifact = run.decision.artifacts.get(subject.name)
    children = artifact.platforms if artifact is not None else ()
    return [
        subject,
        *(SubjectLocation(subject.name, subject.location.with_digest(p.digest)) for p in children),
    ]


def write_vsas(vsas: Mapping[str, bytes], run: GateRun, store: EvidenceStore) -> list[str]:
    """Store each artifact's VSA for its subjects; return where they were written."""
    written: list[str] = []
    for subject in run.subjects:
        envelope = vsas.get(subject.name)
        if envelope is not None:
            written.extend(
                store.write(envelope, predicate="vsa", subjects=vsa_subjects(run, subject))
            )
    return written


def gate(
    *,
    policy: Policy,
    release: ReleaseView,
    evidence_stores: Sequence[EvidenceStore],
    now: datetime,
    images: Stores | None,
    vsa_signer: Any = None,
    vsa_store: EvidenceStore | None = None,
    policy_uri: str = "policy.yaml",
    enforcement: Enforcement | None = None,
) -> GateResult:
    """The gate: decide, then (with ``vsa_signer``) sign a VSA per artifact and store it.

    ``vsa_store`` receives the VSAs (``gate`` uses the first evidence store); without it
    they are signed and returned only (a promotion's dry run). ``enforcement`` defaults to
    the policy's; ``promote`` always passes ``enforce``.
    """
    mode = policy.enforcement if enforcement is None else enforcement
    if vsa_signer is not None:
        check_vsa_signer(policy, vsa_signer)
    run = run_gate(policy, release, evidence_stores, now=now, images=images)
    if vsa_signer is None:
        return GateResult(policy, run, enforcement=mode)
    vsas = sign_vsas(
        run, policy, policy_uri=policy_uri, signer=vsa_signer, now=now, enforcement=mode
    )
    written = () if vsa_store is None else tuple(write_vsas(vsas, run, vsa_store))
    return GateResult(policy, run, vsas, written, mode)
