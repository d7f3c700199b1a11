"""Key generation, KEYREF loading, trusted public keys; secrets never in messages."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa, x25519
from securesystemslib.signer import CryptoSigner, Signature

from digestgate.errors import ConfigError, ExitCode
from digestgate.evidence.keys import (
    KeyKind,
    PublicKey,
    generate_keypair,
    load_public_key,
    load_signer,
)

PASSWORD = "correct horse battery staple"


def _spki_sha256(public_pem: bytes) -> str:
    key = serialization.load_pem_public_key(public_pem)
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def _pem_of(private: Any) -> tuple[bytes, bytes]:
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa-p256"])
@pytest.mark.parametrize("password", [None, PASSWORD.encode()])
def test_generated_keys_load_and_sign(
    tmp_path: Path, kind: KeyKind, password: bytes | None
) -> None:
    pair = generate_keypair(kind, password)
    header = b"ENCRYPTED PRIVATE KEY" if password else b"-----BEGIN PRIVATE KEY-----"
    assert header in pair.private_pem
    assert pair.public_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert pair.keyid == _spki_sha256(pair.public_pem)
    assert "PRIVATE" not in repr(pair)

    key_file = tmp_path / "k.key"
    key_file.write_bytes(pair.private_pem)
    env = {"DIGESTGATE_KEY_PASSWORD": PASSWORD} if password else {}
    signer = load_signer(f"file:{key_file}", env)
    assert signer.public_key.keyid == pair.keyid
    public = load_public_key(pair.public_pem)
    assert public.keyid == pair.keyid
    assert public.algorithm == kind
    signature = signer.sign(b"hello")
    assert public.verify(bytes.fromhex(signature.signature), b"hello")
    assert not public.verify(bytes.fromhex(signature.signature), b"hellO")


def test_keyref_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pair = generate_keypair("ed25519")
    key_file = tmp_path / "build.key"
    key_file.write_bytes(pair.private_pem)
    pem_text = pair.private_pem.decode()
    monkeypatch.chdir(tmp_path)
    refs: list[tuple[str, dict[str, str]]] = [
        (f"file:{key_file}", {}),
        (str(key_file), {}),
        ("build.key", {}),
        ("env:SIGNING_KEY", {"SIGNING_KEY": pem_text}),
        # CI secrets sometimes arrive with literal \n instead of newlines.
        ("env:SIGNING_KEY", {"SIGNING_KEY": pem_text.replace("\n", "\\n")}),
    ]
    for ref, env in refs:
        assert load_signer(ref, env).public_key.keyid == pair.keyid, ref


def test_signer_uri_is_passed_to_securesystemslib(tmp_path: Path) -> None:
    pair = generate_keypair("ecdsa-p256")
    (tmp_path / "k.key").write_bytes(pair.private_pem)
    (tmp_path / "k.pub").write_bytes(pair.public_pem)
    env = {"DIGESTGATE_SIGNER_PUBLIC_KEY": str(tmp_path / "k.pub")}
    signer = load_signer(f"file2:{tmp_path / 'k.key'}", env)
    assert isinstance(signer, CryptoSigner)
    assert signer.public_key.keyid == pair.keyid


def test_signer_uri_needs_its_public_key() -> None:
    with pytest.raises(ConfigError) as caught:
        load_signer("gcpkms:projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1", {})
    assert "DIGESTGATE_SIGNER_PUBLIC_KEY" in (caught.value.hint or "")


def test_signer_uri_errors_hide_the_query(tmp_path: Path) -> None:
    pair = generate_keypair("ecdsa-p256")
    (tmp_path / "k.pub").write_bytes(pair.public_pem)
    env = {"DIGESTGATE_SIGNER_PUBLIC_KEY": str(tmp_path / "k.pub")}
    with pytest.raises(ConfigError) as caught:
        load_signer("hsm:token=x?pin-value=271828", env)
    assert "271828" not in caught.value.message
    assert "271828" not in (caught.value.hint or "")


def _assert_no_secret(exc: ConfigError, *secrets: str) -> None:
    text = f"{exc.message} {exc.hint}"
    for secret in secrets:
        assert secret not in text
    assert "PRIVATE KEY" not in text
    assert exc.exit_code == ExitCode.USAGE
    assert exc.hint


def test_wrong_or_missing_password(tmp_path: Path) -> None:
    pair = generate_keypair("ed25519", PASSWORD.encode())
    key_file = tmp_path / "k.key"
    key_file.write_bytes(pair.private_pem)
    with pytest.raises(ConfigError, match="cannot decrypt") as caught:
        load_signer(str(key_file), {"DIGESTGATE_KEY_PASSWORD": "wrong-password-123"})
    _assert_no_secret(caught.value, "wrong-password-123")
    with pytest.raises(ConfigError, match="is encrypted") as caught:
        load_signer(str(key_file), {})
    _assert_no_secret(caught.value)


def test_password_is_ignored_for_an_unencrypted_key(tmp_path: Path) -> None:
    pair = generate_keypair("ed25519")
    (tmp_path / "k.key").write_bytes(pair.private_pem)
    signer = load_signer(str(tmp_path / "k.key"), {"DIGESTGATE_KEY_PASSWORD": "x"})
    assert signer.public_key.keyid == pair.keyid


def test_unusable_keyrefs(tmp_path: Path) -> None:
    pair = generate_keypair("ed25519")
    body = pair.private_pem.decode().splitlines()[1]
    cases = {
        str(tmp_path / "missing.key"): {},
        "env:NOT_SET": {},
        "env:": {},
        "": {},
        "env:GARBAGE": {"GARBAGE": "not a key " + body[:10]},
        "env:PUBLIC": {"PUBLIC": pair.public_pem.decode()},
    }
    (tmp_path / "big.key").write_bytes(b"x" * 100_000)
    cases[str(tmp_path / "big.key")] = {}
    for ref, env in cases.items():
        with pytest.raises(ConfigError) as caught:
            load_signer(ref, env)
        _assert_no_secret(caught.value, body)


def test_unsupported_private_key(tmp_path: Path) -> None:
    private_pem, _ = _pem_of(ec.generate_private_key(ec.SECP256K1()))
    (tmp_path / "k.key").write_bytes(private_pem)
    with pytest.raises(ConfigError, match="unsupported elliptic curve secp256k1"):
        load_signer(str(tmp_path / "k.key"), {})


# --- public keys -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_private() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _supported_privates(rsa_private: rsa.RSAPrivateKey) -> dict[str, Any]:
    return {
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
        "ecdsa-p256": ec.generate_private_key(ec.SECP256R1()),
        "ecdsa-p384": ec.generate_private_key(ec.SECP384R1()),
        "rsa-pss": rsa_private,
    }


def test_public_key_forms(tmp_path: Path, rsa_private: rsa.RSAPrivateKey) -> None:
    for algorithm, private in _supported_privates(rsa_private).items():
        _, public_pem = _pem_of(private)
        path = tmp_path / f"{algorithm}.pub"
        path.write_bytes(public_pem)
        loaded = [
            load_public_key(public_pem),
            load_public_key(public_pem.decode()),
            load_public_key(str(path)),
            load_public_key(path),
        ]
        assert {k.keyid for k in loaded} == {_spki_sha256(public_pem)}
        assert {k.algorithm for k in loaded} == {algorithm}


def test_verification_agrees_with_securesystemslib(rsa_private: rsa.RSAPrivateKey) -> None:
    data = b"DSSEv1 28 application/vnd.in-toto+json 2 {}"
    for algorithm, private in _supported_privates(rsa_private).items():
        signer = CryptoSigner(private)
        public: PublicKey = load_public_key(_pem_of(private)[1])
        good = bytes.fromhex(signer.sign(data).signature)
        bad = bytes([good[0] ^ 1]) + good[1:]
        for sig, payload in ((good, data), (bad, data), (good, data + b" "), (b"", data)):
            ours = public.verify(sig, payload)
            try:
                public.sslib_key.verify_signature(Signature(public.keyid, sig.hex()), payload)
                theirs = True
            except Exception:
                theirs = False
            assert ours == theirs, algorithm
        assert public.verify(good, data), algorithm


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda: ec.generate_private_key(ec.SECP521R1()), "unsupported elliptic curve"),
        # A weak key on purpose: it must be refused.
        (lambda: rsa.generate_private_key(65537, 1024), "too short"),  # noqa: S505
        (lambda: dsa.generate_private_key(key_size=2048), "unsupported key type"),
        (x25519.X25519PrivateKey.generate, "unsupported key type"),
    ],
    ids=["p521", "rsa1024", "dsa", "x25519"],
)
def test_unsupported_public_keys(make: Any, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_public_key(_pem_of(make())[1])


def test_public_key_refuses_private_keys_and_garbage(tmp_path: Path) -> None:
    pair = generate_keypair("ed25519")
    with pytest.raises(ConfigError, match="is a private key") as caught:
        load_public_key(pair.private_pem)
    assert pair.private_pem.decode().splitlines()[1] not in caught.value.message
    with pytest.raises(ConfigError, match="not a PEM public key"):
        load_public_key(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    with pytest.raises(ConfigError, match="does not exist"):
        load_public_key(str(tmp_path / "nope.pub"))
    (tmp_path / "empty.pub").write_bytes(b"")
    with pytest.raises(ConfigError, match="not a PEM public key"):
        load_public_key(tmp_path / "empty.pub")
