"""Sigstore bundles as evidence: offline verification against the policy's identities.

A bundle (``application/vnd.dev.sigstore.bundle*+json``, as ``actions/attest``, ``gh
attestation download`` and cosign v3 write them) counts only after sigstore-python has
verified it offline against the trusted root the policy pins: certificate chain to the
root's Fulcio CA at the signed time, signed certificate timestamps, transparency-log
inclusion (and its signed time), the DSSE signature with the certificate's key, and a
certificate whose identity matches a policy signer (``issuer``, ``identity`` glob, source
``repository`` and ``ref``). Only then is the payload parsed, and the statement then goes
through exactly the rules a key-signed one does (docs/sigstore.md). sigstore does not look
at the statement's subjects: the gate matches them, by name and digest, as for keys.

sigstore is an optional dependency (``pip install 'digestgate[sigstore]'``): it is
imported only when a policy names a Sigstore identity.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from digestgate.digest import Digest
from digestgate.errors import ConfigError, IncompleteReadError
from digestgate.evidence.fulcio import map_subjects
from digestgate.evidence.model import (
    PAYLOAD_TYPE,
    CertificateFacts,
    EvidenceFormatError,
    EvidenceProblem,
    Statement,
    VerifiedEvidence,
)
from digestgate.evidence.store.base import is_sigstore_bundle

if TYPE_CHECKING:
    from cryptography.x509 import Certificate

    from digestgate.policy.sigstore import SigstoreIdentity

#: Largest bundle read (a bundle is a few KiB plus its statement).
MAX_BUNDLE_SIZE: Final = 16 * 1024 * 1024
#: Bundle verifications one gate run may spend (about 2 ms each). An honest release needs a
#: few per artifact; a store stuffed with copies of real bundles ends in exit 3, not minutes
#: of CPU (design section 8: never decide on a read cut short).
MAX_BUNDLE_CHECKS: Final = 5_000

# Fulcio certificate extensions (sigstore/fulcio docs/oid-info.md).
_FULCIO: Final = "1.3.6.1.4.1.57264.1."
_ISSUER_V1: Final = _FULCIO + "1"
_ISSUER: Final = _FULCIO + "8"
_SOURCE_REPOSITORY: Final = _FULCIO + "12"
_SOURCE_DIGEST: Final = _FULCIO + "13"
_SOURCE_REF: Final = _FULCIO + "14"
_BUILD_CONFIG: Final = _FULCIO + "18"
_TRIGGER: Final = _FULCIO + "20"
_RUN_URI: Final = _FULCIO + "21"

Verify = Callable[[bytes, str], VerifiedEvidence | EvidenceProblem]


def der_utf8(data: bytes) -> str | None:
    """The text of a DER UTF8String (tag 12), as Fulcio writes its newer extensions; None
    for anything else (another tag, trailing bytes, a bad length or encoding)."""
    from cryptography.hazmat import asn1

    try:
        return asn1.decode_der(str, data)
    except ValueError:
        return None


def certificate_facts(cert: Certificate) -> CertificateFacts:
    """The identity and Fulcio source facts of a signing certificate."""
    from cryptography import x509

    values: dict[str, bytes] = {}
    san: list[str] = []
    for ext in cert.extensions:
        if isinstance(ext.value, x509.UnrecognizedExtension):
            values[ext.oid.dotted_string] = ext.value.value
        elif isinstance(ext.value, x509.SubjectAlternativeName):
            san += ext.value.get_values_for_type(x509.UniformResourceIdentifier)
            san += ext.value.get_values_for_type(x509.RFC822Name)

    def text(oid: str) -> str | None:
        raw = values.get(oid)
        return None if raw is None else der_utf8(raw)

    legacy = values.get(_ISSUER_V1)
    issuer = text(_ISSUER) or (legacy.decode("utf-8", "replace") if legacy else "")
    return CertificateFacts(
        issuer=issuer,
        identity=san[0] if len(san) == 1 else "",
        source_repository=text(_SOURCE_REPOSITORY),
        source_ref=text(_SOURCE_REF),
        source_revision=text(_SOURCE_DIGEST),
        trigger=text(_TRIGGER),
        run_uri=text(_RUN_URI),
        build_config=text(_BUILD_CONFIG),
        issued=cert.not_valid_before_utc,
    )


class _IdentityMatch:
    """A sigstore verification policy: the certificate must be one of ``identities``.

    Records which matched; the caller uses them only when the whole verification passed.
    """

    def __init__(self, identities: Sequence[SigstoreIdentity]) -> None:
        self.identities = identities
        self.matched: set[str] = set()

    def verify(self, cert: Certificate) -> None:
        from sigstore.errors import VerificationError

        facts = certificate_facts(cert)
        self.matched = _matching(self.identities, facts)
        if not self.matched:
            raise VerificationError(
                f"its certificate ({_describe(facts)}) matches no Sigstore identity of the policy"
            )


def _matching(identities: Sequence[SigstoreIdentity], facts: CertificateFacts) -> set[str]:
    """The names of the identities a certificate with these facts is."""
    return {
        identity.name
        for identity in identities
        if identity.matches(
            issuer=facts.issuer,
            san=facts.identity,
            repository=facts.source_repository,
            ref=facts.source_ref,
        )
    }


def _describe(facts: CertificateFacts) -> str:
    parts = [f"identity {facts.identity[:160]!r}", f"issuer {facts.issuer[:80]!r}"]
    if facts.source_repository:
        parts.append(f"repository {facts.source_repository[:120]!r}")
    if facts.source_ref:
        parts.append(f"ref {facts.source_ref[:80]!r}")
    return ", ".join(parts)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def bundle_verifier(
    identities: Mapping[str, SigstoreIdentity],
    artifact_for: Callable[[str], str | None],
    *,
    limit: int = MAX_BUNDLE_CHECKS,
) -> Verify:
    """Verify bundles against ``identities`` offline; ``artifact_for`` maps subject names.

    Raises :class:`ConfigError` (exit 2) when the Sigstore extra is missing or a trusted
    root cannot be loaded, before any evidence is read; :class:`IncompleteReadError`
    (exit 3) once more than ``limit`` verifications were spent.
    """
    try:
        from sigstore.models import Bundle, TrustedRoot
        from sigstore.verify import Verifier
        from sigstore_models.trustroot import v1 as trustroot_v1
    except ImportError:
        from digestgate.policy.sigstore import EXTRA_HINT

        raise ConfigError(
            "the policy names Sigstore identities (keys.*.sigstore) but the Sigstore extra "
            "is not installed",
            hint=EXTRA_HINT,
        ) from None
    groups: dict[bytes, tuple[Any, list[SigstoreIdentity]]] = {}
    for name in sorted(identities):
        identity = identities[name]
        if identity.trusted_root_bytes not in groups:
            try:
                root = TrustedRoot(trustroot_v1.TrustedRoot.from_json(identity.trusted_root_bytes))
                verifier = Verifier(trusted_root=root)
            except Exception as exc:  # sigstore/pydantic raise many types for a bad root
                raise ConfigError(
                    f"keys.{name}: trusted root {str(identity.trusted_root)[:200]} cannot be "
                    f"loaded: {_one_line(exc)}",
                    hint="use a Sigstore trusted_root.json (docs/sigstore.md)",
                ) from None
            groups[identity.trusted_root_bytes] = (verifier, [])
        groups[identity.trusted_root_bytes][1].append(identity)

    spent = [0]

    def verify(raw: bytes, origin: str) -> VerifiedEvidence | EvidenceProblem:
        if len(raw) > MAX_BUNDLE_SIZE:
            return EvidenceProblem(
                "malformed", origin, f"bundle is larger than {MAX_BUNDLE_SIZE} bytes"
            )
        try:
            bundle = Bundle.from_json(raw)
        except Exception as exc:  # hostile input: any parse failure is "malformed"
            return EvidenceProblem(
                "malformed", origin, f"sigstore cannot load this bundle: {_one_line(exc)}"
            )
        try:
            facts = certificate_facts(bundle.signing_certificate)
        except Exception as exc:  # an unreadable certificate verifies nothing
            return EvidenceProblem("malformed", origin, f"its certificate: {_one_line(exc)}")
        # Only a trust root some identity of which this certificate could be is asked to
        # verify it: the same checks, one verification per bundle however many roots.
        candidates = [(v, group) for v, group in groups.values() if _matching(group, facts)]
        if not candidates:
            return EvidenceProblem(
                "unverified",
                origin,
                f"Sigstore verification failed: its certificate ({_describe(facts)}) matches "
                "no Sigstore identity of the policy",
            )
        matched: set[str] = set()
        reasons: list[str] = []
        payload: tuple[str, bytes] | None = None
        for verifier, group in candidates:
            spent[0] += 1
            if spent[0] > limit:
                raise IncompleteReadError(
                    f"more than {limit} Sigstore bundle verifications: the evidence holds far "
                    "more bundles than a release produces; the gate did not decide",
                    hint="remove the junk bundles from the evidence store (or the referrers "
                    "pushed to the evidence repository), then run again",
                )
            policy = _IdentityMatch(group)
            try:
                payload = verifier.verify_dsse(bundle, policy)
            except Exception as exc:  # every failure means: not verified by this root
                reasons.append(_one_line(exc))
                continue
            matched |= policy.matched
        if not matched or payload is None:
            return EvidenceProblem(
                "unverified", origin, "Sigstore verification failed: " + "; ".join(reasons)
            )
        payload_type, body = payload
        if payload_type != PAYLOAD_TYPE:
            return EvidenceProblem(
                "malformed", origin, f"unsupported payloadType {payload_type[:80]!r}"
            )
        try:
            statement = Statement.parse(body)
        except EvidenceFormatError as exc:
            return EvidenceProblem("malformed", origin, str(exc))
        return VerifiedEvidence(
            statement=map_subjects(statement, artifact_for),
            signers=frozenset(matched),
            envelope_digest=Digest.of(raw),
            origin=origin,
            envelope=raw,
            certificate=facts,
        )

    return verify


def with_bundles(
    verify_envelope: Verify,
    identities: Mapping[str, SigstoreIdentity],
    artifact_for: Callable[[str], str | None],
) -> Verify:
    """Dispatch: Sigstore bundles to :func:`bundle_verifier`, everything else to
    ``verify_envelope`` (DSSE with the policy's keys). Without identities, a bundle is
    unverified and never read, and sigstore is not imported."""
    bundles = bundle_verifier(identities, artifact_for) if identities else None

    def verify(raw: bytes, origin: str) -> VerifiedEvidence | EvidenceProblem:
        if not is_sigstore_bundle(raw):
            return verify_envelope(raw, origin)
        if bundles is None:
            return EvidenceProblem(
                "unverified", origin, "a Sigstore bundle, and the policy names no Sigstore identity"
            )
        return bundles(raw, origin)

    return verify
