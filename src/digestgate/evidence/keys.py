"""Signing keys: generation, loading signers by KEYREF, and trusted public keys.

Signing goes through securesystemslib's Signer API (``CryptoSigner`` for PEM keys,
``Signer.from_priv_key_uri`` for KMS/HSM URIs). Trusted public keys are loaded once into
pyca/cryptography key objects and checked with the parameters of securesystemslib's schemes
(``ed25519``, ``ecdsa-sha2-nistp256/384``, ``rsassa-pss-sha256``); each also carries the
equivalent ``SSlibKey``. Nothing here implements cryptography itself.

Key id: the lowercase hex SHA-256 of the public key's DER ``SubjectPublicKeyInfo`` encoding
(``openssl pkey -pubin -in key.pub -outform DER | sha256sum``). It is written into each DSSE
signature as the ``keyid`` hint; verification never relies on it (DSSE protocol.md: the key
id is an unauthenticated hint).

Secrets (private key bytes, passwords) never appear in messages, reprs or logs.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlsplit

from digestgate.errors import ConfigError

if TYPE_CHECKING:
    from securesystemslib.signer import Signer, SSlibKey

KeyKind = Literal["ed25519", "ecdsa-p256"]

#: Environment variable holding the password of an encrypted private key.
PASSWORD_ENV: Final = "DIGESTGATE_KEY_PASSWORD"  # noqa: S105 (a variable name)
#: Environment variable naming the public key (path or PEM) of a KMS/HSM signer URI.
SIGNER_PUBLIC_KEY_ENV: Final = "DIGESTGATE_SIGNER_PUBLIC_KEY"

_MAX_KEY_FILE: Final = 64 * 1024
_MIN_RSA_BITS: Final = 2048
_PEM_MARKER: Final = "-----BEGIN"
_BASE64_RUN_RE: Final = re.compile(r"[A-Za-z0-9+=]{40,}")
_BASE64_RE: Final = re.compile(r"[A-Za-z0-9+/]+=*")
_URLSAFE: Final = str.maketrans("-_", "+/")
_WORD_SPLIT_RE: Final = re.compile(r"[\s()\[\]{}'\",;]+")


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A freshly generated key pair: PKCS#8 PEM private key, SPKI PEM public key, key id."""

    private_pem: bytes = field(repr=False)
    public_pem: bytes
    keyid: str


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A trusted public key, loaded once and reused for every verification.

    ``algorithm`` is one of ``ed25519``, ``ecdsa-p256``, ``ecdsa-p384``, ``rsa-pss``.
    ``sslib_key`` is the same key as a securesystemslib ``SSlibKey`` (for its APIs).
    ``spki_der`` is the canonical SubjectPublicKeyInfo DER (what the policy digest hashes).
    """

    keyid: str
    algorithm: str
    pem: bytes = field(repr=False)
    crypto_key: Any = field(repr=False, compare=False)
    """The same key as a pyca/cryptography public key object."""
    spki_der: bytes = field(repr=False, compare=False)
    _check: Callable[[bytes, bytes], None] = field(repr=False, compare=False)

    @property
    def sslib_key(self) -> SSlibKey:
        """This key as a securesystemslib ``SSlibKey`` with the scheme for the key
        (``ed25519``, ``ecdsa-sha2-nistp256/384`` or ``rsassa-pss-sha256``). Built when a
        signer needs it: verifying never imports securesystemslib."""
        from securesystemslib.signer import SSlibKey

        return SSlibKey.from_crypto(self.crypto_key, keyid=self.keyid)

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True when ``signature`` is this key's signature over ``data``."""
        from cryptography.exceptions import InvalidSignature

        try:
            self._check(signature, data)
        except (InvalidSignature, ValueError):
            return False
        return True


def keyid_of(public_key: Any) -> str:
    """The documented key id: sha256 hex of the DER SubjectPublicKeyInfo."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    der = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def generate_keypair(kind: KeyKind = "ed25519", password: bytes | None = None) -> KeyPair:
    """Generate a key pair; the private key is encrypted when ``password`` is non-empty."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.hazmat.primitives.serialization import (
        BestAvailableEncryption,
        Encoding,
        KeySerializationEncryption,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )

    private: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
    if kind == "ed25519":
        private = ed25519.Ed25519PrivateKey.generate()
    elif kind == "ecdsa-p256":
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        raise ConfigError(f"unknown key kind {kind!r}", hint="use ed25519 or ecdsa-p256")
    encryption: KeySerializationEncryption = (
        BestAvailableEncryption(password) if password else NoEncryption()
    )
    public = private.public_key()
    return KeyPair(
        private_pem=private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, encryption),
        public_pem=public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
        keyid=keyid_of(public),
    )


# --- public keys ---------------------------------------------------------------------------


def _algorithm_of(public_key: Any, where: str) -> str:
    """Our algorithm name for a supported key; ConfigError for anything else."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if isinstance(public_key.curve, ec.SECP256R1):
            return "ecdsa-p256"
        if isinstance(public_key.curve, ec.SECP384R1):
            return "ecdsa-p384"
        raise ConfigError(
            f"{where}: unsupported elliptic curve {public_key.curve.name}",
            hint="use an Ed25519, ECDSA P-256/P-384 or RSA key",
        )
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < _MIN_RSA_BITS:
            raise ConfigError(
                f"{where}: RSA key of {public_key.key_size} bits is too short",
                hint=f"use an RSA key of at least {_MIN_RSA_BITS} bits, or Ed25519",
            )
        return "rsa-pss"
    raise ConfigError(
        f"{where}: unsupported key type {type(public_key).__name__}",
        hint="use an Ed25519, ECDSA P-256/P-384 or RSA key",
    )


def _checker(public_key: Any, algorithm: str) -> Callable[[bytes, bytes], None]:
    """Signature check with the parameters of securesystemslib's scheme for the key.

    SSlibKey.verify_signature re-reads the PEM key on every call; the gate verifies
    thousands of envelopes, so the key object is loaded once and kept here instead.
    """
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding

    if algorithm == "ed25519":
        check: Callable[[bytes, bytes], None] = public_key.verify
        return check
    if algorithm in ("ecdsa-p256", "ecdsa-p384"):
        # ecdsa-sha2-nistp256 / -nistp384: the hash follows the curve.
        ecdsa = ec.ECDSA(hashes.SHA256() if algorithm == "ecdsa-p256" else hashes.SHA384())
        return lambda signature, data: public_key.verify(signature, data, ecdsa)
    # rsassa-pss-sha256, any salt length (as securesystemslib verifies it).
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
    sha256 = hashes.SHA256()
    return lambda signature, data: public_key.verify(signature, data, pss, sha256)


def _public_key_from_crypto(public_key: Any, where: str) -> PublicKey:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    algorithm = _algorithm_of(public_key, where)
    keyid = keyid_of(public_key)
    pem = public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    der = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return PublicKey(keyid, algorithm, pem, public_key, der, _checker(public_key, algorithm))


def _read_key_file(path: Path, what: str) -> bytes:
    from digestgate.fileread import read_capped

    try:
        data = read_capped(path, _MAX_KEY_FILE, what=f"{what} file")
    except FileNotFoundError:
        raise ConfigError(f"{what} file {path} does not exist", hint="check the path") from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read {what} file {path}: {exc.strerror or exc}",
            hint="check the path and its permissions",
        ) from exc
    if len(data) > _MAX_KEY_FILE:
        raise ConfigError(
            f"{what} file {path} is larger than {_MAX_KEY_FILE} bytes",
            hint="point to a single PEM key",
        )
    return data


def load_public_key(path_or_pem: str | bytes | os.PathLike[str]) -> PublicKey:
    """Load a PEM public key (Ed25519, ECDSA P-256/P-384, RSA-PSS) from a path or PEM text."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    if isinstance(path_or_pem, bytes):
        data, where = path_or_pem, "public key"
    elif isinstance(path_or_pem, str) and _PEM_MARKER in path_or_pem:
        data, where = path_or_pem.encode(), "public key"
    elif isinstance(path_or_pem, str) and looks_like_key_material(path_or_pem):
        # Not a path and not PEM: perhaps base64 of a key, perhaps of a private one.
        raise ConfigError(
            "a public key reference looks like key material, not a path or PEM text (not shown)",
            hint="give the path of the .pub file, or its PEM text",
        )
    else:
        path = Path(path_or_pem)
        data, where = _read_key_file(path, "public key"), f"public key {path}"
    if b"PRIVATE KEY" in data:
        raise ConfigError(
            f"{where} is a private key",
            hint="give the .pub file; private keys never belong in a policy",
        )
    try:
        public_key = load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"{where} is not a PEM public key",
            hint="use the .pub file written by `digestgate keygen` (SubjectPublicKeyInfo PEM)",
        ) from exc
    except Exception as exc:  # cryptography raises UnsupportedAlgorithm for odd keys
        raise ConfigError(
            f"{where}: unsupported public key ({type(exc).__name__})",
            hint="use an Ed25519, ECDSA P-256/P-384 or RSA key",
        ) from exc
    return _public_key_from_crypto(public_key, where)


# --- signers -------------------------------------------------------------------------------


def looks_like_key_material(text: str) -> bool:
    """True when a KEYREF (or a message quoting one) looks like a key, not a path or URI.

    Key text pasted where a reference belongs must never be echoed (not even in "does not
    exist"): PEM markers, control characters (PEM line breaks), a long run of base64 with
    mixed case and digits, or a word (or what follows ``file:``/``env:`` in it) that is
    base64 of a PEM text or a DER structure.
    """
    if any(ch < " " or ch == "\x7f" for ch in text):
        return True
    if "-----" in text or "PRIVATE KEY" in text.upper():
        return True
    for run in _BASE64_RUN_RE.findall(text):
        if all(any(kind(c) for c in run) for kind in (str.isupper, str.islower, str.isdigit)):
            return True
    # Base64 may contain '/', which cuts the runs above short: decode each word instead.
    for word in _WORD_SPLIT_RE.split(text):
        if any(_decodes_to_key(part) for part in (word, word.partition(":")[2])):
            return True
    return False


def _decodes_to_key(word: str) -> bool:
    compact = word.translate(_URLSAFE)
    if len(compact) < 44 or not _BASE64_RE.fullmatch(compact):
        return False
    try:
        decoded = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except ValueError:
        return False
    return decoded.startswith((b"-----", b"\x30"))  # PEM text, or a DER SEQUENCE


def _describe(keyref: str) -> str:
    """A KEYREF safe to show: no query string (PKCS#11 URIs may carry a PIN)."""
    head, _, _ = keyref.partition("?")
    return head if len(head) <= 200 else head[:197] + "..."


def _load_private(data: bytes, where: str, env: Mapping[str, str]) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    password_text = env.get(PASSWORD_ENV) or None
    password = password_text.encode() if password_text else None
    if _PEM_MARKER.encode() not in data or b"PRIVATE KEY" not in data:
        raise ConfigError(
            f"{where} is not a PEM private key",
            hint="use the .key file written by `digestgate keygen` (PKCS#8 PEM)",
        )
    encrypted = b"ENCRYPTED" in data
    if encrypted and password is None:
        raise ConfigError(
            f"{where} is encrypted and {PASSWORD_ENV} is not set",
            hint=f"set {PASSWORD_ENV} to the password the key was created with",
        )
    try:
        return load_pem_private_key(data, password if encrypted else None)
    except (ValueError, TypeError) as exc:
        if encrypted:
            raise ConfigError(
                f"cannot decrypt {where}: wrong password or damaged key",
                hint=f"set {PASSWORD_ENV} to the password the key was created with",
            ) from None
        raise ConfigError(
            f"{where} could not be loaded as a private key",
            hint="use the .key file written by `digestgate keygen` (PKCS#8 PEM)",
        ) from exc
    except Exception as exc:  # UnsupportedAlgorithm and friends
        raise ConfigError(
            f"{where}: unsupported private key ({type(exc).__name__})",
            hint="use an Ed25519, ECDSA P-256/P-384 or RSA key",
        ) from exc


def _crypto_signer(private_key: Any, where: str) -> Signer:
    from securesystemslib.signer import CryptoSigner

    public = _public_key_from_crypto(private_key.public_key(), where)
    try:
        return CryptoSigner(private_key, public.sslib_key)
    except ValueError as exc:
        raise ConfigError(
            f"{where}: unsupported private key", hint="use an Ed25519, ECDSA or RSA key"
        ) from exc


def _uri_signer(keyref: str, env: Mapping[str, str]) -> Signer:
    from securesystemslib.exceptions import UnsupportedLibraryError
    from securesystemslib.signer import Signer

    where = f"signer {_describe(keyref)}"
    pub_ref = env.get(SIGNER_PUBLIC_KEY_ENV)
    if not pub_ref:
        raise ConfigError(
            f"{where} needs its public key",
            hint=f"set {SIGNER_PUBLIC_KEY_ENV} to the signer's public key (a path or PEM)",
        )
    public = load_public_key(pub_ref)
    password = env.get(PASSWORD_ENV)

    def secrets(_name: str) -> str:
        if not password:
            raise ConfigError(
                f"{where} asks for a secret and {PASSWORD_ENV} is not set",
                hint=f"set {PASSWORD_ENV} (for example the HSM PIN)",
            )
        return password

    try:
        return Signer.from_priv_key_uri(keyref, public.sslib_key, secrets)
    except ConfigError:
        raise
    except UnsupportedLibraryError as exc:  # names the missing SDK, nothing secret
        raise ConfigError(
            f"cannot open {where}: {str(exc)[:200]}",
            hint="install the signing backend's Python SDK next to digestgate",
        ) from exc
    except Exception as exc:  # backend errors may echo the URI (and a PIN): type only
        raise ConfigError(
            f"cannot open {where}: {type(exc).__name__}",
            hint="check the URI, the backend's credentials and that its Python SDK is installed",
        ) from exc


def _uri_schemes() -> frozenset[str]:
    from securesystemslib.signer import SIGNER_FOR_URI_SCHEME

    return frozenset(SIGNER_FOR_URI_SCHEME)


def load_signer(keyref: str, env: Mapping[str, str]) -> Signer:
    """Open the signer named by KEYREF.

    KEYREF is ``file:PATH``, a bare path, ``env:VAR`` (PEM text in an environment variable)
    or a securesystemslib signer URI (``gcpkms:``, ``awskms:``, ``azurekms:``, ``hv:``,
    ``hsm:``, ...) whose public key comes from ``DIGESTGATE_SIGNER_PUBLIC_KEY``. Encrypted
    keys are opened with ``DIGESTGATE_KEY_PASSWORD``. Errors are :class:`ConfigError`.
    """
    if not keyref:
        raise ConfigError("empty key reference", hint="pass --key file:PATH or env:VAR")
    if looks_like_key_material(keyref):
        raise ConfigError(
            "the key reference looks like key material, not a path, env:VAR or signer URI "
            "(not shown)",
            hint="put the key in a file and pass file:PATH, or in an environment variable "
            "and pass env:VAR with the variable's name",
        )
    scheme, colon, rest = keyref.partition(":")
    if colon and scheme == "env":
        value = env.get(rest)
        if not rest or value is None:
            raise ConfigError(
                f"environment variable {rest or '(empty name)'} for key {keyref} is not set",
                hint="export the PEM private key in that variable, e.g. from a CI secret",
            )
        text = value if "\n" in value else value.replace("\\n", "\n")
        where = f"private key in {keyref}"
        return _crypto_signer(_load_private(text.encode(), where, env), where)
    if colon and scheme not in ("file", "") and scheme in _uri_schemes():
        if urlsplit(keyref).scheme != scheme:
            raise ConfigError(f"invalid signer URI {_describe(keyref)}", hint="check the URI")
        return _uri_signer(keyref, env)
    path = Path(rest if colon and scheme == "file" else keyref)
    where = f"private key {path}"
    data = _read_key_file(path, "private key")
    return _crypto_signer(_load_private(data, where, env), where)
