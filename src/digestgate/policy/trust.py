"""The policy's trust roots: how trusted keys are loaded and how the policy digest covers them.

The digest is the policy's identity (design section 8): VSAs name it and deployments pin it,
so it must change whenever what the policy trusts changes, not only its text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from digestgate.digest import Digest

#: Domain separation for the policy digest (docs/policy.md "The policy digest").
DIGEST_DOMAIN: Final = b"digestgate/policy-digest/v1"

#: Loads one trusted key from a path or from inline PEM text; returns an object with
#: ``keyid`` and ``spki_der`` (:class:`~digestgate.evidence.keys.PublicKey`).
KeyLoader = Callable[[Path | str], Any]


def frame(data: bytes) -> bytes:
    """``data`` with its length in front (8 bytes, big-endian): one field of a digest."""
    return len(data).to_bytes(8, "big") + data


def policy_digest(
    raw: bytes, roots: Mapping[str, bytes], *, sigstore: Mapping[str, bytes] | None = None
) -> Digest:
    """The policy's identity: what VSAs name and deployments pin (design section 8).

    sha256 over length-framed fields (each an 8-byte big-endian length, then the bytes):
    the domain ``digestgate/policy-digest/v1``, the exact policy file bytes, then for every
    trusted key in name order its kind (``key``), its name (UTF-8) and its public key as
    canonical SubjectPublicKeyInfo DER. Replacing a key file, or swapping the contents of
    two, changes the digest even when ``policy.yaml`` is untouched.

    Then, for every Sigstore signer in name order (``sigstore``: name -> trusted root file
    bytes), its kind (``sigstore``), its name and the exact trusted root bytes; the identity
    itself is written in the policy text. A policy without Sigstore signers keeps the
    digest it had before they existed.
    """
    hasher = hashlib.sha256(frame(DIGEST_DOMAIN) + frame(raw))
    for name in sorted(roots):
        hasher.update(frame(b"key") + frame(name.encode()) + frame(roots[name]))
    for name in sorted(sigstore or {}):
        root = (sigstore or {})[name]
        hasher.update(frame(b"sigstore") + frame(name.encode()) + frame(root))
    return Digest("sha256", hasher.hexdigest())


def default_key_loader(ref: Path | str) -> Any:
    """Load a trusted public key with :func:`~digestgate.evidence.keys.load_public_key`."""
    from digestgate.evidence.keys import load_public_key

    return load_public_key(ref)
