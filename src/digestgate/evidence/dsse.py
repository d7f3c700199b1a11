"""DSSE v1 envelopes: pre-authentication encoding, strict parsing, signing and verification.

Verification follows a fixed order (DSSE protocol.md, in-toto envelope.md): parse the
envelope, refuse any payload type other than ``application/vnd.in-toto+json`` before anything
else is looked at, verify signatures over PAE with trusted keys only, and only then parse the
exact bytes that were verified as an in-toto Statement. A payload nobody trusted signed is
never parsed.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from digestgate.digest import Digest
from digestgate.errors import IncompleteReadError, OperationalError
from digestgate.evidence.model import (
    PAYLOAD_TYPE,
    EvidenceFormatError,
    EvidenceProblem,
    Statement,
    VerifiedEvidence,
)
from digestgate.jsonutil import JSONFormatError, dumps_canonical, loads_strict

if TYPE_CHECKING:
    from securesystemslib.signer import Signer

    from digestgate.evidence.keys import PublicKey

#: Largest envelope accepted (bytes as stored).
MAX_ENVELOPE_SIZE: Final = 16 * 1024 * 1024
#: Most signature entries read from one envelope (each may cost one verification per key).
MAX_SIGNATURES: Final = 64
#: Signature checks one gate run may spend. An honest release needs about one per envelope
#: (the key id hint picks the key); 500 artifacts with four envelopes each use ~2,000.
MAX_SIGNATURE_CHECKS: Final = 100_000

# DSSE protocol.md: signers may use standard or URL-safe base64, verifiers MUST accept both.
_URL_TO_STD: Final = bytes.maketrans(b"-_", b"+/")
_B64_ALPHABET: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_VALUES: Final = {char: value for value, char in enumerate(_B64_ALPHABET)}


class EnvelopeFormatError(ValueError):
    """The bytes are not a well-formed DSSE envelope; the message says why in one line."""


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: ``DSSEv1 SP LEN(type) SP type SP LEN(body) SP body``.

    LEN is the byte length in ASCII decimal without leading zeros (DSSE protocol.md).
    """
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(body), body)


def b64decode_any(text: str, what: str) -> bytes:
    """Decode standard or URL-safe base64, padded or not; refuse non-canonical encodings."""
    if not isinstance(text, str):
        raise EnvelopeFormatError(f"{what} is not a string")
    try:
        encoded = text.encode("ascii")
    except UnicodeEncodeError:
        raise EnvelopeFormatError(f"{what} is not base64") from None
    if b"-" in encoded or b"_" in encoded:
        if b"+" in encoded or b"/" in encoded:
            raise EnvelopeFormatError(f"{what} mixes the standard and URL-safe base64 alphabets")
        encoded = encoded.translate(_URL_TO_STD)
    bare = len(encoded.rstrip(b"="))
    padding = len(encoded) - bare
    if bare % 4 == 1 or padding > 2 or (padding and len(encoded) % 4):
        raise EnvelopeFormatError(f"{what} has an invalid base64 length or padding")
    if not padding and bare % 4:
        encoded += b"=" * (-bare % 4)
    try:
        data = binascii.a2b_base64(encoded, strict_mode=True)
    except binascii.Error:
        raise EnvelopeFormatError(f"{what} is not valid base64") from None
    # The unused low bits of the last character must be zero (RFC 4648 section 3.5), so one
    # value has exactly one encoding per alphabet.
    if bare % 4 and _B64_VALUES[encoded[bare - 1]] & (0x0F if bare % 4 == 2 else 0x03):
        raise EnvelopeFormatError(f"{what} is not canonically base64-encoded")
    return data


@dataclass(frozen=True, slots=True)
class EnvelopeSignature:
    """One signature entry: the unauthenticated key id hint and the signature bytes."""

    keyid: str
    sig: bytes


@dataclass(frozen=True, slots=True)
class Envelope:
    """A parsed DSSE envelope (payload and signatures decoded, payload not interpreted)."""

    payload_type: str
    payload: bytes
    signatures: tuple[EnvelopeSignature, ...]

    @classmethod
    def parse(cls, raw: bytes) -> Envelope:
        """Parse envelope JSON strictly; raise :class:`EnvelopeFormatError` with the reason.

        Required: ``payload``, ``payloadType``, ``signatures`` and ``sig`` in every entry;
        ``keyid`` is optional; unknown fields are ignored (DSSE envelope.md).
        """
        if len(raw) > MAX_ENVELOPE_SIZE:
            raise EnvelopeFormatError(f"envelope is larger than {MAX_ENVELOPE_SIZE} bytes")
        try:
            doc = loads_strict(raw)
        except JSONFormatError as exc:
            raise EnvelopeFormatError(f"envelope is not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise EnvelopeFormatError("envelope is not a JSON object")
        payload_type = doc.get("payloadType")
        if not isinstance(payload_type, str):
            raise EnvelopeFormatError("envelope has no payloadType string")
        raw_sigs = doc.get("signatures")
        if not isinstance(raw_sigs, list):
            raise EnvelopeFormatError("envelope has no signatures list")
        if len(raw_sigs) > MAX_SIGNATURES:
            raise EnvelopeFormatError(
                f"envelope has {len(raw_sigs)} signatures (at most {MAX_SIGNATURES} are read)"
            )
        if "payload" not in doc:
            raise EnvelopeFormatError("envelope has no payload")
        payload = b64decode_any(doc["payload"], "payload")
        signatures = tuple(_parse_signature(entry, i) for i, entry in enumerate(raw_sigs))
        return cls(payload_type, payload, signatures)

    def pae(self) -> bytes:
        """The bytes every signature of this envelope signs."""
        return pae(self.payload_type, self.payload)


def _parse_signature(entry: Any, index: int) -> EnvelopeSignature:
    if not isinstance(entry, dict):
        raise EnvelopeFormatError(f"signature {index} is not an object")
    if "sig" not in entry:
        raise EnvelopeFormatError(f"signature {index} has no sig")
    keyid = entry.get("keyid")
    if keyid is None:
        keyid = ""
    if not isinstance(keyid, str):
        raise EnvelopeFormatError(f"signature {index} keyid is not a string")
    return EnvelopeSignature(keyid, b64decode_any(entry["sig"], f"signature {index}"))


def sign_envelope(payload: bytes, payload_type: str, signers: Sequence[Signer]) -> bytes:
    """Sign ``payload`` with every signer; return the envelope JSON bytes (standard base64)."""
    if not signers:
        raise ValueError("sign_envelope needs at least one signer")
    message = pae(payload_type, payload)
    entries = []
    for signer in signers:
        try:
            signature = signer.sign(message)
        except Exception as exc:  # KMS/HSM backends raise their own errors
            raise OperationalError(
                f"signing failed: {type(exc).__name__}",
                hint="check that the signing key or service is reachable and usable",
            ) from exc
        sig = base64.b64encode(bytes.fromhex(signature.signature)).decode("ascii")
        entries.append({"keyid": signature.keyid, "sig": sig})
    return dumps_canonical(
        {
            "payload": base64.b64encode(payload).decode("ascii"),
            "payloadType": payload_type,
            "signatures": entries,
        }
    )


class SignatureBudget:
    """A bound on the signature checks of one run: evidence stores full of junk signatures
    (thousands of envelopes, each with dozens of signatures tried against every key) end in
    exit 3 instead of hours of CPU (design section 8: never decide on a read cut short)."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = MAX_SIGNATURE_CHECKS if limit is None else limit
        self.spent = 0

    def spend(self) -> None:
        """Count one signature check; raise once the limit is passed."""
        self.spent += 1
        if self.spent > self.limit:
            raise IncompleteReadError(
                f"more than {self.limit} signature checks: the evidence holds far more "
                "signatures than a release produces; the gate did not decide",
                hint="remove junk envelopes from the evidence store (or the junk referrers "
                "pushed to the evidence repository), then run again",
            )


def _trusted_groups(
    trusted: Mapping[str, PublicKey],
) -> dict[str, tuple[PublicKey, frozenset[str]]]:
    """Distinct trusted keys by key id, each with every local name it is trusted under."""
    names: dict[str, set[str]] = {}
    keys: dict[str, PublicKey] = {}
    for name, key in trusted.items():
        keys.setdefault(key.keyid, key)
        names.setdefault(key.keyid, set()).add(name)
    return {keyid: (keys[keyid], frozenset(names[keyid])) for keyid in keys}


class TrustedKeys:
    """Trusted keys (by local name) grouped once by key id, for verifying many envelopes."""

    __slots__ = ("groups",)

    def __init__(self, trusted: Mapping[str, PublicKey]) -> None:
        self.groups: Final = _trusted_groups(trusted)


def verified_signers(
    envelope: Envelope,
    trusted: Mapping[str, PublicKey] | TrustedKeys,
    budget: SignatureBudget | None = None,
) -> frozenset[str]:
    """Names of the trusted keys that verified at least one signature of ``envelope``.

    Key ids are hints only: for each signature, keys whose id matches are tried first, then
    every other trusted key. A key counts once however many signatures it made. Every check
    is counted against ``budget`` when one is given.
    """
    groups = trusted.groups if isinstance(trusted, TrustedKeys) else _trusted_groups(trusted)
    remaining = dict(groups)
    if not remaining or not envelope.signatures:
        return frozenset()
    message = envelope.pae()
    names: set[str] = set()
    for signature in envelope.signatures:
        if not remaining:
            break
        hinted = remaining.get(signature.keyid)
        order = [signature.keyid] if hinted is not None else []
        order.extend(k for k in remaining if k != signature.keyid)
        for keyid in order:
            key, key_names = remaining[keyid]
            if budget is not None:
                budget.spend()
            if key.verify(signature.sig, message):
                names.update(key_names)
                del remaining[keyid]
                break
    return frozenset(names)


def verify_envelope(
    raw: bytes,
    trusted: Mapping[str, PublicKey] | TrustedKeys,
    *,
    origin: str,
    budget: SignatureBudget | None = None,
) -> VerifiedEvidence | EvidenceProblem:
    """Verify one stored envelope against the trusted keys (by local name).

    Returns :class:`VerifiedEvidence` when at least one trusted key signed it and the payload
    is an in-toto Statement; otherwise an :class:`EvidenceProblem` (``malformed`` or
    ``unverified``). An unverified payload is never parsed.
    """
    try:
        envelope = Envelope.parse(raw)
    except EnvelopeFormatError as exc:
        return EvidenceProblem("malformed", origin, str(exc))
    # Refuse other payload types before looking at signatures or the payload (in-toto
    # envelope.md; digestgate reads predicateType from the verified statement only).
    if envelope.payload_type != PAYLOAD_TYPE:
        shown = envelope.payload_type[:80]
        return EvidenceProblem(
            "malformed", origin, f"unsupported payloadType {shown!r} (want {PAYLOAD_TYPE})"
        )
    signers = verified_signers(envelope, trusted, budget)
    if not signers:
        count = len(envelope.signatures)
        return EvidenceProblem(
            "unverified", origin, f"no trusted key verified any of its {count} signature(s)"
        )
    try:
        statement = Statement.parse(envelope.payload)
    except EvidenceFormatError as exc:
        return EvidenceProblem("malformed", origin, str(exc))
    return VerifiedEvidence(
        statement=statement,
        signers=signers,
        envelope_digest=Digest.of(raw),
        origin=origin,
        envelope=raw,
    )
