"""DSSE: PAE vectors, strict parsing, sign/verify, tamper detection and interoperability."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.signer import CryptoSigner, Signature, Signer

from digestgate.digest import Digest
from digestgate.errors import OperationalError
from digestgate.evidence import dsse
from digestgate.evidence.dsse import (
    MAX_ENVELOPE_SIZE,
    Envelope,
    EnvelopeFormatError,
    pae,
    sign_envelope,
    verified_signers,
    verify_envelope,
)
from digestgate.evidence.keys import PublicKey, load_public_key
from digestgate.evidence.model import (
    PAYLOAD_TYPE,
    PROVENANCE,
    EvidenceProblem,
    Statement,
    Subject,
    VerifiedEvidence,
)
from digestgate.evidence.statements import statement_bytes

ORIGIN = "dir:evidence/build.json"


def _signer(kind: str = "ed25519") -> CryptoSigner:
    private: Any = (
        ed25519.Ed25519PrivateKey.generate()
        if kind == "ed25519"
        else ec.generate_private_key(ec.SECP256R1())
    )
    # Sign under digestgate's key id, as `digestgate keygen` keys do.
    public = _public(private)
    return CryptoSigner(private, public.sslib_key)


def _public(private: Any) -> PublicKey:
    return load_public_key(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _key(signer: Signer) -> PublicKey:
    assert isinstance(signer, CryptoSigner)
    return _public(signer._private_key)


BUILD = _signer("ed25519")
TESTS = _signer("ecdsa-p256")
STRANGER = _signer("ed25519")
TRUSTED = {"build": _key(BUILD), "tests": _key(TESTS)}

STATEMENT = statement_bytes(
    [Subject("backend", Digest.of(b"backend")), Subject("frontend", Digest.of(b"frontend"))],
    PROVENANCE,
    {"buildDefinition": {"buildType": "x"}},
)


def _doc(raw: bytes) -> dict[str, Any]:
    value = json.loads(raw)
    assert isinstance(value, dict)
    return value


def _encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


# --- PAE ---------------------------------------------------------------------------------


def test_pae_spec_vector() -> None:
    # DSSE protocol.md test vector.
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_in_toto_type_and_empty_body() -> None:
    assert pae(PAYLOAD_TYPE, b"{}") == b"DSSEv1 28 application/vnd.in-toto+json 2 {}"
    assert pae("", b"") == b"DSSEv1 0  0 "
    # Lengths are byte lengths of the UTF-8 type, not character counts.
    assert pae("tÿpe", b"\x00") == "DSSEv1 5 tÿpe 1 \x00".encode()


@given(payload_type=st.text(max_size=40), body=st.binary(max_size=300))
def test_pae_is_unambiguous(payload_type: str, body: bytes) -> None:
    encoded = pae(payload_type, body)
    magic, type_len, rest = encoded.split(b" ", 2)
    assert magic == b"DSSEv1"
    n = int(type_len)
    assert str(n).encode() == type_len  # no leading zeros
    assert rest[:n].decode() == payload_type
    body_len, _, tail = rest[n + 1 :].partition(b" ")
    assert int(body_len) == len(body) and tail == body


# --- round trips ---------------------------------------------------------------------------


@given(payload=st.binary(max_size=500), payload_type=st.text(min_size=1, max_size=40))
@settings(max_examples=50)
def test_envelope_round_trip(payload: bytes, payload_type: str) -> None:
    raw = sign_envelope(payload, payload_type, [BUILD])
    envelope = Envelope.parse(raw)
    assert (envelope.payload, envelope.payload_type) == (payload, payload_type)
    assert envelope.signatures[0].keyid == TRUSTED["build"].keyid
    assert verified_signers(envelope, TRUSTED) == {"build"}


@given(
    names=st.lists(
        st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True),
        min_size=1,
        max_size=4,
        unique=True,
    ),
    extra=st.dictionaries(st.text(max_size=10), st.integers() | st.text(max_size=10), max_size=4),
)
@settings(max_examples=30)
def test_statement_envelope_round_trip(names: list[str], extra: dict[str, Any]) -> None:
    subjects = [Subject(n, Digest.of(n.encode())) for n in names]
    payload = statement_bytes(subjects, PROVENANCE, extra)
    raw = sign_envelope(payload, PAYLOAD_TYPE, [TESTS])
    result = verify_envelope(raw, TRUSTED, origin=ORIGIN)
    assert isinstance(result, VerifiedEvidence)
    assert result.statement.subjects == tuple(subjects)
    assert result.statement.predicate == extra
    assert result.statement.raw == payload
    assert result.signers == {"tests"}
    assert result.envelope == raw
    assert result.envelope_digest == Digest.of(raw)
    assert result.origin == ORIGIN


# --- what counts as a signer -----------------------------------------------------------------


def test_several_signers() -> None:
    raw = sign_envelope(STATEMENT, PAYLOAD_TYPE, [BUILD, TESTS, STRANGER])
    result = verify_envelope(raw, TRUSTED, origin=ORIGIN)
    assert isinstance(result, VerifiedEvidence)
    assert result.signers == {"build", "tests"}


def test_same_key_signing_twice_counts_once() -> None:
    raw = sign_envelope(STATEMENT, PAYLOAD_TYPE, [BUILD, BUILD])
    assert len(_doc(raw)["signatures"]) == 2
    result = verify_envelope(raw, TRUSTED, origin=ORIGIN)
    assert isinstance(result, VerifiedEvidence)
    assert result.signers == {"build"}


def test_one_key_trusted_under_two_names_gives_both_names() -> None:
    trusted = {"build": TRUSTED["build"], "release": TRUSTED["build"]}
    result = verify_envelope(
        sign_envelope(STATEMENT, PAYLOAD_TYPE, [BUILD]), trusted, origin=ORIGIN
    )
    assert isinstance(result, VerifiedEvidence)
    assert result.signers == {"build", "release"}


@pytest.mark.parametrize("keyid", ["", "someone-else", None])
def test_key_ids_are_hints_only(keyid: str | None) -> None:
    doc = _doc(sign_envelope(STATEMENT, PAYLOAD_TYPE, [TESTS]))
    if keyid is None:
        del doc["signatures"][0]["keyid"]
    else:
        doc["signatures"][0]["keyid"] = keyid
    result = verify_envelope(_encode(doc), TRUSTED, origin=ORIGIN)
    assert isinstance(result, VerifiedEvidence)
    assert result.signers == {"tests"}


def test_trusted_key_id_on_an_untrusted_signature_does_not_verify() -> None:
    doc = _doc(sign_envelope(STATEMENT, PAYLOAD_TYPE, [STRANGER]))
    doc["signatures"][0]["keyid"] = TRUSTED["build"].keyid
    result = verify_envelope(_encode(doc), TRUSTED, origin=ORIGIN)
    assert isinstance(result, EvidenceProblem)
    assert result.kind == "unverified"


def test_no_signatures_or_no_trusted_keys_is_unverified() -> None:
    doc = _doc(sign_envelope(STATEMENT, PAYLOAD_TYPE, [BUILD]))
    doc["signatures"] = []
    for raw, trusted in (
        (_encode(doc), TRUSTED),
        (sign_envelope(STATEMENT, PAYLOAD_TYPE, [BUILD]), {}),
    ):
        result = verify_envelope(raw, trusted, origin=ORIGIN)
        assert isinstance(result, EvidenceProblem)
        assert (result.kind, result.origin) == ("unverified", ORIGIN)


# --- payloads are never read before verification ----------------------------------------------


@pytest.fixture
def no_statement_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(cls: type, payload: bytes) -> Statement:
        raise AssertionError("payload parsed before verification")

    monkeypatch.setattr(Statement, "parse", classmethod(refuse))


@pytest.mark.usefixtures("no_statement_parsing")
def test_unverified_payload_is_never_parsed() -> None:
    raw = sign_envelope(b"{not json", PAYLOAD_TYPE, [STRANGER])
    result = verify_envelope(raw, TRUSTED, origin=ORIGIN)
    assert isinstance(result, EvidenceProblem)
    assert result.kind == "unverified"


@pytest.mark.usefixtures("no_statement_parsing")
@pytest.mark.parametrize(
    "payload_type",
    ["application/vnd.in-toto.provenance+json", "text/plain", "", "APPLICATION/VND.IN-TOTO+JSON"],
)
def test_other_payload_types_are_refused_without_parsing(payload_type: str) -> None:
    # Validly signed by a trusted key, but not an in-toto payload type.
    raw = sign_envelope(b"\xff not json", payload_type, [BUILD])
    result = verify_envelope(raw, TRUSTED, origin=ORIGIN)
    assert isinstance(result, EvidenceProblem)
    assert result.kind == "malformed"
    assert "payloadType" in result.message


def test_verified_but_malformed_statement_is_malformed() -> None:
    for payload in (b"{not json", b'{"_type": "x"}', b"[]"):
        result = verify_envelope(
            sign_envelope(payload, PAYLOAD_TYPE, [BUILD]), TRUSTED, origin=ORIGIN
        )
        assert isinstance(result, EvidenceProblem)
        assert result.kind == "malformed"


# --- tampering -----------------------------------------------------------------------------


def _positions(length: int, limit: int = 200) -> list[int]:
    if length <= limit:
        return list(range(length))
    step = length / limit
    return sorted({int(i * step) for i in range(limit)} | {0, length - 1})


def _with(doc: dict[str, Any], **fields: Any) -> bytes:
    changed = dict(doc)
    changed.update(fields)
    return _encode(changed)


@pytest.mark.parametrize("signer", [BUILD, TESTS], ids=["ed25519", "ecdsa-p256"])
def test_every_single_byte_change_fails(signer: CryptoSigner) -> None:
    raw = sign_envelope(STATEMENT, PAYLOAD_TYPE, [signer])
    doc = _doc(raw)
    assert isinstance(verify_envelope(raw, TRUSTED, origin=ORIGIN), VerifiedEvidence)
    sig = base64.b64decode(doc["signatures"][0]["sig"])
    for flip in (0x01, 0x80):
        for i in _positions(len(STATEMENT)):
            payload = bytearray(STATEMENT)
            payload[i] ^= flip
            tampered = _with(doc, payload=base64.b64encode(bytes(payload)).decode())
            result = verify_envelope(tampered, TRUSTED, origin=ORIGIN)
            assert isinstance(result, EvidenceProblem), (i, flip)
            assert result.kind == "unverified"
        for i in range(len(sig)):
            bad_sig = bytearray(sig)
            bad_sig[i] ^= flip
            entry = {"keyid": doc["signatures"][0]["keyid"], "sig": base64.b64encode(bad_sig)}
            entry["sig"] = entry["sig"].decode()
            result = verify_envelope(_with(doc, signatures=[entry]), TRUSTED, origin=ORIGIN)
            assert isinstance(result, EvidenceProblem), (i, flip)
    # The payload type is signed too: check the signature itself (any other type is refused
    # before verification anyway).
    envelope = Envelope.parse(raw)
    type_bytes = PAYLOAD_TYPE.encode()
    for i in range(len(type_bytes)):
        changed = bytearray(type_bytes)
        changed[i] ^= 0x01
        other = dsse.Envelope(changed.decode(), envelope.payload, envelope.signatures)
        assert verified_signers(other, TRUSTED) == frozenset()
    truncated = dsse.Envelope(PAYLOAD_TYPE, STATEMENT[:-1], envelope.signatures)
    assert verified_signers(truncated, TRUSTED) == frozenset()


# --- base64 and strict parsing ---------------------------------------------------------------


def test_url_safe_and_unpadded_base64_verify() -> None:
    # A payload whose standard encoding contains + and / and needs padding.
    payload = STATEMENT + b" \xfb\xff"
    doc = _doc(sign_envelope(payload, PAYLOAD_TYPE, [BUILD]))
    standard = doc["payload"]
    assert "+" in standard or "/" in standard
    encoders: list[Callable[[bytes], str]] = [
        lambda b: base64.urlsafe_b64encode(b).decode(),
        lambda b: base64.urlsafe_b64encode(b).decode().rstrip("="),
        lambda b: base64.b64encode(b).decode().rstrip("="),
    ]
    for encode in encoders:
        sig = base64.b64decode(doc["signatures"][0]["sig"])
        changed = _with(
            doc,
            payload=encode(base64.b64decode(standard)),
            signatures=[{"keyid": "", "sig": encode(sig)}],
        )
        envelope = Envelope.parse(changed)
        assert envelope.payload == payload
        assert verified_signers(envelope, TRUSTED) == {"build"}


@given(data=st.binary(max_size=64))
def test_base64_decoding_accepts_every_alphabet_and_padding(data: bytes) -> None:
    for text in (
        base64.b64encode(data).decode(),
        base64.urlsafe_b64encode(data).decode(),
        base64.b64encode(data).decode().rstrip("="),
        base64.urlsafe_b64encode(data).decode().rstrip("="),
    ):
        assert dsse.b64decode_any(text, "x") == data


@pytest.mark.parametrize("text", ["QR==", "QUJ=", "Q", "QQ=", "QQ===", "Q Q=", "+-AA", "QQ==\n", 1])
def test_invalid_or_non_canonical_base64(text: Any) -> None:
    with pytest.raises(EnvelopeFormatError):
        dsse.b64decode_any(text, "x")


def _malformed_cases() -> dict[str, bytes]:
    good = _doc(sign_envelope(STATEMENT, PAYLOAD_TYPE, [BUILD]))
    sig = good["signatures"][0]
    return {
        "not-json": b"{",
        "not-object": b"[]",
        "invalid-utf8": b'{"payload": "\xff"}',
        "duplicate-key": (
            b'{"payload": "e30=", "payload": "e30=", "payloadType": "x", "signatures": []}'
        ),
        "too-deep": b"[" * 100 + b"]" * 100,
        "no-payload": _encode({k: v for k, v in good.items() if k != "payload"}),
        "no-type": _encode({k: v for k, v in good.items() if k != "payloadType"}),
        "no-signatures": _encode({k: v for k, v in good.items() if k != "signatures"}),
        "signatures-not-list": _with(good, signatures={"sig": sig["sig"]}),
        "no-sig": _with(good, signatures=[sig, {"keyid": sig["keyid"]}]),
        "sig-not-string": _with(good, signatures=[{"sig": 12}]),
        "keyid-not-string": _with(good, signatures=[{"keyid": 1, "sig": sig["sig"]}]),
        "entry-not-object": _with(good, signatures=["x"]),
        "payload-not-base64": _with(good, payload="!!!"),
        "payload-null": _with(good, payload=None),
        "type-not-string": _with(good, payloadType=["x"]),
        "too-many-signatures": _with(good, signatures=[sig] * (dsse.MAX_SIGNATURES + 1)),
    }


@pytest.mark.parametrize("case", sorted(_malformed_cases()))
def test_malformed_envelopes(case: str) -> None:
    raw = _malformed_cases()[case]
    with pytest.raises(EnvelopeFormatError):
        Envelope.parse(raw)
    result = verify_envelope(raw, TRUSTED, origin=ORIGIN)
    assert isinstance(result, EvidenceProblem)
    assert (result.kind, result.origin) == ("malformed", ORIGIN)
    assert "\n" not in result.message


def test_size_cap() -> None:
    raw = sign_envelope(STATEMENT, PAYLOAD_TYPE, [BUILD])
    padded = raw[:-1] + b' , "pad": "' + b"a" * (MAX_ENVELOPE_SIZE - len(raw)) + b'"}'
    result = verify_envelope(padded, TRUSTED, origin=ORIGIN)
    assert isinstance(result, EvidenceProblem)
    assert result.kind == "malformed"
    assert "larger than" in result.message


def test_unknown_fields_are_ignored() -> None:
    doc = _doc(sign_envelope(STATEMENT, PAYLOAD_TYPE, [BUILD]))
    doc["extension"] = {"x": 1}
    doc["signatures"][0]["cert"] = "ignored"
    result = verify_envelope(_encode(doc), TRUSTED, origin=ORIGIN)
    assert isinstance(result, VerifiedEvidence)


def test_signing_failure_is_operational() -> None:
    class Broken(Signer):
        def sign(self, payload: bytes) -> Signature:
            raise ConnectionError("kms unreachable")

        @classmethod
        def from_priv_key_uri(
            cls, priv_key_uri: str, public_key: Any, secrets_handler: Any = None
        ) -> Signer:
            raise NotImplementedError

        @property
        def public_key(self) -> Any:
            return TRUSTED["build"].sslib_key

    with pytest.raises(OperationalError, match="signing failed"):
        sign_envelope(STATEMENT, PAYLOAD_TYPE, [Broken()])
    with pytest.raises(ValueError, match="at least one signer"):
        sign_envelope(STATEMENT, PAYLOAD_TYPE, [])


# --- independent verification and interoperability ---------------------------------------------


def test_independent_verification_with_cryptography_primitives() -> None:
    """Rebuild PAE from the DSSE spec text and verify with pyca/cryptography directly."""
    private = ec.generate_private_key(ec.SECP256R1())
    signer = CryptoSigner(private, _public(private).sslib_key)
    raw = sign_envelope(STATEMENT, PAYLOAD_TYPE, [signer])
    doc = json.loads(raw)
    payload_type = doc["payloadType"].encode("utf-8")
    body = base64.b64decode(doc["payload"])
    spec_pae = b" ".join(
        [b"DSSEv1", str(len(payload_type)).encode(), payload_type, str(len(body)).encode(), body]
    )
    signature = base64.b64decode(doc["signatures"][0]["sig"])
    private.public_key().verify(signature, spec_pae, ec.ECDSA(hashes.SHA256()))
    assert body == STATEMENT

    ed_private = ed25519.Ed25519PrivateKey.generate()
    ed_raw = sign_envelope(
        STATEMENT, PAYLOAD_TYPE, [CryptoSigner(ed_private, _public(ed_private).sslib_key)]
    )
    ed_doc = json.loads(ed_raw)
    ed_private.public_key().verify(base64.b64decode(ed_doc["signatures"][0]["sig"]), spec_pae)


def test_interop_securesystemslib_signs_digestgate_verifies() -> None:
    envelope = SslibEnvelope(STATEMENT, PAYLOAD_TYPE, {})
    envelope.sign(TESTS)
    raw = json.dumps(envelope.to_dict()).encode()
    result = verify_envelope(raw, TRUSTED, origin=ORIGIN)
    assert isinstance(result, VerifiedEvidence)
    assert result.signers == {"tests"}
    assert result.statement.raw == STATEMENT


def test_interop_digestgate_signs_securesystemslib_verifies() -> None:
    raw = sign_envelope(STATEMENT, PAYLOAD_TYPE, [BUILD, TESTS])
    envelope = SslibEnvelope.from_dict(json.loads(raw))
    assert envelope.payload == STATEMENT
    accepted = envelope.verify([TRUSTED["build"].sslib_key, TRUSTED["tests"].sslib_key], 2)
    assert set(accepted) == {TRUSTED["build"].keyid, TRUSTED["tests"].keyid}
