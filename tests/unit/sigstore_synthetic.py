"""SYNTHETIC Sigstore bundles under a self-made trust root, for negative tests only.

Everything here is made by the test suite: a root CA standing in for Fulcio, a CT log key,
a transparency log key, and bundles v0.3 that sigstore-python verifies offline against the
matching self-made ``trusted_root.json`` (certificate with Fulcio extensions and an
embedded SCT, DSSE signature, a one-entry log with inclusion proof, signed checkpoint and
signed entry timestamp). Real bundles for the positive tests live in tests/data/sigstore.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from digestgate.evidence.dsse import pae
from digestgate.evidence.model import PAYLOAD_TYPE

ISSUER = "https://token.actions.githubusercontent.com"
_SCT_OID = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
_FULCIO = "1.3.6.1.4.1.57264.1."


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _utf8(text: str) -> bytes:
    data = text.encode()
    assert len(data) < 128
    return bytes([0x0C, len(data)]) + data


@dataclass
class Facts:
    """What the synthetic certificate says (defaults: a GitHub build of org/app on main)."""

    san: str = "https://github.com/org/app/.github/workflows/build.yml@refs/heads/main"
    issuer: str = ISSUER
    repository: str = "https://github.com/org/app"
    ref: str = "refs/heads/main"
    revision: str = "a1" * 20
    trigger: str = "push"
    run_uri: str = "https://github.com/org/app/actions/runs/4242/attempts/1"
    more_sans: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)


class SyntheticSigstore:
    """A self-made Fulcio CA, CT log and transparency log, and the trust root naming them."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.ca_key = ec.generate_private_key(ec.SECP384R1())
        self.ct_key = ec.generate_private_key(ec.SECP256R1())
        self.log_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "synthetic-fulcio")])
        self.ca_cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.ca_key.public_key())
            .serial_number(1)
            .not_valid_before(start - timedelta(days=365))
            .not_valid_after(start + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.ca_key.public_key()),
                critical=False,
            )
            .sign(self.ca_key, hashes.SHA384())
        )

    def trusted_root(self) -> bytes:
        """The self-made ``trusted_root.json`` (no timestamp authorities)."""
        start = (self.start - timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ")

        def log(key: ec.EllipticCurvePrivateKey, url: str) -> dict[str, Any]:
            return {
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": _b64(_spki(key)),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": start},
                },
                "logId": {"keyId": _b64(hashlib.sha256(_spki(key)).digest())},
            }

        der = self.ca_cert.public_bytes(serialization.Encoding.DER)
        doc = {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log(self.log_key, "https://rekor.synthetic.invalid")],
            "certificateAuthorities": [
                {
                    "subject": {"organization": "synthetic", "commonName": "synthetic-fulcio"},
                    "uri": "https://fulcio.synthetic.invalid",
                    "certChain": {"certificates": [{"rawBytes": _b64(der)}]},
                    "validFor": {"start": start},
                }
            ],
            "ctlogs": [log(self.ct_key, "https://ctfe.synthetic.invalid")],
            "timestampAuthorities": [],
        }
        return json.dumps(doc, indent=2).encode()

    def _certificate(
        self, key: ec.EllipticCurvePrivateKey, facts: Facts, issued: datetime
    ) -> x509.Certificate:
        values = {
            "8": facts.issuer,
            "9": facts.san,
            "12": facts.repository,
            "13": facts.revision,
            "14": facts.ref,
            "20": facts.trigger,
            "21": facts.run_uri,
            **facts.extra,
        }

        def build(sct: bytes) -> x509.Certificate:
            builder = (
                x509.CertificateBuilder()
                .subject_name(x509.Name([]))
                .issuer_name(self.ca_cert.subject)
                .public_key(key.public_key())
                .serial_number(4242)
                .not_valid_before(issued)
                .not_valid_after(issued + timedelta(minutes=10))
                .add_extension(
                    x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                    critical=True,
                )
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)
                .add_extension(
                    x509.SubjectAlternativeName(
                        [x509.UniformResourceIdentifier(s) for s in (facts.san, *facts.more_sans)]
                    ),
                    critical=True,
                )
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                    critical=False,
                )
                .add_extension(
                    x509.UnrecognizedExtension(ObjectIdentifier(_FULCIO + "1"), ISSUER.encode()),
                    critical=False,
                )
            )
            for number, text in values.items():
                oid = ObjectIdentifier(_FULCIO + number)
                builder = builder.add_extension(
                    x509.UnrecognizedExtension(oid, _utf8(text)), critical=False
                )
            builder = builder.add_extension(x509.UnrecognizedExtension(_SCT_OID, sct), False)
            return builder.sign(self.ca_key, hashes.SHA384())

        def sct_list(timestamp_ms: int, signature: bytes) -> bytes:
            log_id = hashlib.sha256(_spki(self.ct_key)).digest()
            sct = (
                b"\x00"
                + log_id
                + struct.pack("!Q", timestamp_ms)
                + b"\x00\x00"
                + b"\x04\x03"
                + struct.pack("!H", len(signature))
                + signature
            )
            body = struct.pack("!H", len(sct)) + sct
            tls = struct.pack("!H", len(body)) + body
            assert len(tls) < 256
            length = bytes([len(tls)]) if len(tls) < 128 else bytes([0x81, len(tls)])
            return b"\x04" + length + tls  # DER OCTET STRING around the TLS-encoded list

        timestamp_ms = int(issued.timestamp() * 1000)
        draft = build(sct_list(timestamp_ms, b"\x00" * 70))
        issuer_key_hash = hashlib.sha256(_spki(self.ca_key)).digest()
        precert = draft.tbs_precertificate_bytes
        signed = (
            struct.pack("!BBQH", 0, 0, timestamp_ms, 1)
            + issuer_key_hash
            + struct.pack("!I", len(precert))[1:]
            + precert
            + b"\x00\x00"
        )
        signature = self.ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return build(sct_list(timestamp_ms, signature))

    def bundle(
        self,
        statement: dict[str, Any],
        *,
        facts: Facts | None = None,
        issued: datetime | None = None,
        integrated: datetime | None = None,
    ) -> bytes:
        """A bundle v0.3 for ``statement``: certificate issued at ``issued`` (default: the
        start), logged at ``integrated`` (default: one minute later)."""
        facts = facts or Facts()
        issued = issued or self.start
        integrated = integrated or issued + timedelta(minutes=1)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._certificate(key, facts, issued)
        payload = json.dumps(statement).encode()
        signature = key.sign(pae(PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))
        pem = cert.public_bytes(serialization.Encoding.PEM)
        envelope = {
            "payload": _b64(payload),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": _b64(signature)}],
        }
        body = json.dumps(
            {
                "apiVersion": "0.0.1",
                "kind": "dsse",
                "spec": {
                    "envelopeHash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(json.dumps(envelope).encode()).hexdigest(),
                    },
                    "payloadHash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(payload).hexdigest(),
                    },
                    "signatures": [{"signature": _b64(signature), "verifier": _b64(pem)}],
                },
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        log_id = hashlib.sha256(_spki(self.log_key)).digest()
        root = hashlib.sha256(b"\x00" + body).digest()
        note = f"rekor.synthetic.invalid - 1\n1\n{_b64(root)}\n"
        note_sig = self.log_key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
        checkpoint = note + f"\n\u2014 rekor.synthetic.invalid {_b64(log_id[:4] + note_sig)}\n"
        integrated_time = int(integrated.timestamp())
        promise = json.dumps(
            {
                "body": _b64(body),
                "integratedTime": integrated_time,
                "logID": log_id.hex(),
                "logIndex": 0,
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        entry = {
            "logIndex": "0",
            "logId": {"keyId": _b64(log_id)},
            "kindVersion": {"kind": "dsse", "version": "0.0.1"},
            "integratedTime": str(integrated_time),
            "inclusionPromise": {
                "signedEntryTimestamp": _b64(self.log_key.sign(promise, ec.ECDSA(hashes.SHA256())))
            },
            "inclusionProof": {
                "logIndex": "0",
                "rootHash": _b64(root),
                "treeSize": "1",
                "hashes": [],
                "checkpoint": {"envelope": checkpoint},
            },
            "canonicalizedBody": _b64(body),
        }
        bundle = {
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {
                "tlogEntries": [entry],
                "timestampVerificationData": {},
                "certificate": {"rawBytes": _b64(cert.public_bytes(serialization.Encoding.DER))},
            },
            "dsseEnvelope": envelope,
        }
        return json.dumps(bundle, indent=2).encode()
