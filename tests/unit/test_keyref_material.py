"""Which KEYREFs count as key material (refused unseen) and which stay references."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from digestgate.errors import ConfigError
from digestgate.evidence.keys import (
    generate_keypair,
    load_public_key,
    load_signer,
    looks_like_key_material,
)


def _body(pem: str) -> str:
    return "".join(line for line in pem.splitlines() if not line.startswith("-----"))


def _seeded_pem(seed: int) -> str:
    key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


_PEM = generate_keypair().private_pem.decode()
_BODY = _body(_PEM)
#: Fixed keys, among them bodies whose '/' characters cut every base64 run under 40.
_SEEDED = [_seeded_pem(seed) for seed in range(64)]
#: Base64 of a DER SEQUENCE whose '/' characters cut every run short.
_SLASHED_DER = base64.b64encode(b"\x30\x82" + b"\x01\x02\x03\xff\xff\xff" * 12).decode()

MATERIAL = {
    "pem": _PEM,
    "pem-without-newlines": _PEM.replace("\n", ""),
    "private-key-words": "my PRIVATE KEY here",
    "control-character": "keys/build.key\x00",
    "tab": "keys/\tbuild.key",
    "der-body-after-file-prefix": "file:" + _BODY,  # caught by the base64-run rule
    "slashed-der": _SLASHED_DER,  # caught only by decoding the whole value
    "urlsafe-base64-of-pem": base64.urlsafe_b64encode(_PEM.encode()).decode(),
    "base64-of-pem-with-padding-stripped": base64.b64encode(_PEM.encode()).decode().rstrip("="),
}

REFERENCES = [
    "/home/runner/work/MyRepo/MyRepo/keys/build.key",
    "keys/" + "0123456789abcdef" * 4 + ".key",  # a key id as the file name
    "0123456789abcdef" * 4,
    "My Signing Keys/gate.key",
    "keys/production-release-signing-key-for-gate",
    "env:DIGESTGATE_TESTS_KEY",
    "file:/run/secrets/tests.key",
]


@pytest.mark.parametrize("name", sorted(MATERIAL))
def test_key_material_is_refused_without_echo(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_signer(MATERIAL[name], {})
    assert caught.value.message.startswith("the key reference looks like key material")
    assert MATERIAL[name][:12] not in caught.value.message + (caught.value.hint or "")


@pytest.mark.parametrize("prefix", ["", "file:", "env:"])
def test_every_key_body_is_recognised_whatever_its_slashes(prefix: str) -> None:
    assert any(max(map(len, _body(pem).split("/"))) < 40 for pem in _SEEDED)
    for pem in _SEEDED:
        for form in (_body(pem), base64.b64encode(pem.encode()).decode(), pem):
            with pytest.raises(ConfigError, match="looks like key material"):
                load_signer(prefix + form, {})


@pytest.mark.parametrize("keyref", REFERENCES)
def test_ordinary_references_are_not_mistaken_for_keys(keyref: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_signer(keyref, {})
    assert "looks like key material" not in caught.value.message
    assert "does not exist" in caught.value.message or "is not set" in caught.value.message


def test_signer_uris_are_not_mistaken_for_keys() -> None:
    uri = "awskms:arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    with pytest.raises(ConfigError) as caught:
        load_signer(uri, {})
    assert caught.value.message == f"signer {uri} needs its public key"


def test_a_signer_public_key_variable_holding_base64_is_not_echoed() -> None:
    # DIGESTGATE_SIGNER_PUBLIC_KEY takes a path or PEM; base64 (maybe of the private key)
    # used to come back in "public key file ... does not exist".
    secret = base64.b64encode(_PEM.encode()).decode()
    env = {"DIGESTGATE_SIGNER_PUBLIC_KEY": secret}
    with pytest.raises(ConfigError) as caught:
        load_signer("hv:digestgate-key", env)
    assert caught.value.message == (
        "a public key reference looks like key material, not a path or PEM text (not shown)"
    )
    assert secret[:12] not in caught.value.message


def test_public_key_paths_are_still_read(tmp_path: Path) -> None:
    pair = generate_keypair()
    (tmp_path / "gate.pub").write_bytes(pair.public_pem)
    assert load_public_key(str(tmp_path / "gate.pub")).keyid == pair.keyid
    assert load_public_key(pair.public_pem.decode()).keyid == pair.keyid


def test_a_key_body_quoted_inside_a_message_is_recognised() -> None:
    # click quotes stray arguments back: "Got unexpected extra argument (MC4C...)".
    for pem in _SEEDED:
        body = _body(pem)
        assert looks_like_key_material(f"Got unexpected extra argument ({body})")
        assert looks_like_key_material(f"Got unexpected extra arguments (x {body} y)")
    assert not looks_like_key_material("Got unexpected extra argument (keys/gate.key)")
    assert not looks_like_key_material(f"No such option: --{'0123456789abcdef' * 4}")
