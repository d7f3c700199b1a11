"""Sigstore identities as policy signers (docs/sigstore.md), parsed and checked (pure).

A signer under ``keys:`` may be a Sigstore identity instead of a public key::

    keys:
      build:
        sigstore:
          issuer: https://token.actions.githubusercontent.com
          identity: "https://github.com/org/app/.github/workflows/build.yml@refs/heads/main"
          repository: https://github.com/org/app
          ref: "refs/heads/main"          # optional glob
          trustedRoot: trusted_root.json  # relative to the policy

``identity`` is a glob over the certificate's subject alternative name (on GitHub Actions:
the job workflow ref, so a reusable build workflow is its own identity); ``repository``
and ``ref`` are compared with the certificate's Fulcio source-repository extensions. The
trusted root file is hashed into the policy digest like a key (see
:func:`~digestgate.policy.trust.policy_digest`). Nothing here imports sigstore.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final, Protocol

from digestgate.digest import Digest
from digestgate.errors import ConfigError
from digestgate.jsonutil import JSONFormatError, loads_strict
from digestgate.policy.model import ArtifactRule, Glob, TrustedKey
from digestgate.policy.trust import frame

#: The fields of a ``sigstore:`` signer.
FIELDS: Final = ("issuer", "identity", "repository", "ref", "trustedRoot")
REQUIRED: Final = ("issuer", "identity", "repository", "trustedRoot")
#: Largest trusted root file read (the public-good one is about 7 KiB).
MAX_TRUSTED_ROOT: Final = 1024 * 1024
TRUSTED_ROOT_MEDIA_TYPE: Final = "application/vnd.dev.sigstore.trustedroot+json"
#: The optional dependency that verifies bundles.
EXTRA_HINT: Final = "install the Sigstore extra: pip install 'digestgate[sigstore]'"


class _Reader(Protocol):
    """The parts of the policy reader used here (``digestgate.policy.load``)."""

    base_dir: Path

    def error(self, node: Any, what: str, hint: str) -> ConfigError: ...

    def mapping(
        self, node: Any, where: str, allowed: tuple[str, ...], required: tuple[str, ...]
    ) -> Any: ...

    def text(self, node: Any, where: str) -> str: ...

    def glob(self, node: Any, where: str) -> Glob: ...


@dataclass(frozen=True, slots=True)
class IdentitySpec:
    """A ``sigstore:`` signer as written, before its trusted root is read."""

    name: str
    issuer: str
    identity: Glob
    repository: str
    ref: Glob | None
    trusted_root: Path

    def __str__(self) -> str:
        return str(self.trusted_root)  # where the signer came from, as a key's file path


#: What a ``keys:`` entry names: a key file, inline PEM, or a Sigstore identity.
KeyRef = Path | str | IdentitySpec
#: Loads a ``keys:`` entry into an object with ``keyid`` and ``spki_der``.
Loader = Callable[[KeyRef], Any]


@dataclass(frozen=True, slots=True)
class SigstoreIdentity(IdentitySpec):
    """A Sigstore identity the policy trusts under a local name, with its trusted root read.

    ``keyid`` (``sigstore:`` + sha256 hex) names the identity and its trust root: two
    names for one identity count once towards a threshold, as two names for one key do.
    """

    trusted_root_bytes: bytes = field(repr=False)
    keyid: str = ""

    @property
    def spki_der(self) -> bytes:
        """Empty: an identity has no key (its trusted root is framed on its own)."""
        return b""

    def matches(self, *, issuer: str, san: str, repository: str | None, ref: str | None) -> bool:
        """True when a certificate with these values is this identity."""
        if issuer != self.issuer or not self.identity.matches(san):
            return False
        if repository is None or repository.rstrip("/") != self.repository:
            return False
        return self.ref is None or (ref is not None and self.ref.matches(ref))


def parse_identity(reader: _Reader, node: Any, name: str) -> IdentitySpec:
    """Parse ``keys.NAME: {sigstore: {...}}``; raise :class:`ConfigError` naming the line."""
    where = f"keys.{name}"
    outer = reader.mapping(node, where, ("sigstore",), ("sigstore",))
    where += ".sigstore"
    body = reader.mapping(outer.get("sigstore"), where, FIELDS, REQUIRED)
    issuer = reader.text(body.get("issuer"), f"{where}.issuer")
    if not issuer.startswith("https://"):
        raise reader.error(
            body.get("issuer"),
            f"{where}.issuer must be an https:// URL",
            "on GitHub Actions: https://token.actions.githubusercontent.com",
        )
    repository = reader.text(body.get("repository"), f"{where}.repository").rstrip("/")
    ref_node = body.get("ref")
    root = Path(reader.text(body.get("trustedRoot"), f"{where}.trustedRoot").removeprefix("file:"))
    return IdentitySpec(
        name=name,
        issuer=issuer,
        identity=reader.glob(body.get("identity"), f"{where}.identity"),
        repository=repository,
        ref=None if ref_node is None else reader.glob(ref_node, f"{where}.ref"),
        trusted_root=root if root.is_absolute() else reader.base_dir / root,
    )


def load_identity(spec: IdentitySpec) -> SigstoreIdentity:
    """Read the identity's trusted root (capped, shape-checked); :class:`ConfigError` if bad.

    The root's keys and certificates are parsed by sigstore when the gate builds its
    verifier; here the file must be a JSON object with the trusted-root media type.
    """
    from digestgate.fileread import read_capped

    hint = (
        "point trustedRoot at a Sigstore trusted_root.json (the public-good one ships with "
        "sigstore-python; `cosign trusted-root create` writes your own)"
    )
    try:
        raw = read_capped(spec.trusted_root, MAX_TRUSTED_ROOT, what="trusted root")
    except OSError as exc:
        raise ConfigError(
            f"cannot read trusted root {str(spec.trusted_root)[:200]}: {exc.strerror or exc}",
            hint=hint,
        ) from None
    if len(raw) > MAX_TRUSTED_ROOT:
        raise ConfigError(f"trusted root is larger than {MAX_TRUSTED_ROOT} bytes", hint=hint)
    try:
        doc = loads_strict(raw)
    except JSONFormatError as exc:
        raise ConfigError(f"trusted root is not valid JSON: {exc}", hint=hint) from None
    media = doc.get("mediaType") if isinstance(doc, dict) else None
    if not isinstance(media, str) or not media.startswith(TRUSTED_ROOT_MEDIA_TYPE):
        raise ConfigError(f"trusted root has no {TRUSTED_ROOT_MEDIA_TYPE} mediaType", hint=hint)
    return SigstoreIdentity(
        **{f.name: getattr(spec, f.name) for f in fields(IdentitySpec)},
        trusted_root_bytes=raw,
        keyid="sigstore:" + _identity_hash(spec, raw),
    )


def _identity_hash(spec: IdentitySpec, root: bytes) -> str:
    hasher = hashlib.sha256()
    for part in (
        spec.issuer,
        spec.identity.pattern,
        spec.repository,
        spec.ref.pattern if spec.ref is not None else "",
    ):
        hasher.update(frame(part.encode()))
    hasher.update(hashlib.sha256(root).digest())
    return hasher.hexdigest()


def with_identities(key_loader: Callable[[Path | str], Any]) -> Loader:
    """A loader for ``keys:`` entries: identities here, keys by ``key_loader``."""

    def load(ref: KeyRef) -> Any:
        return load_identity(ref) if isinstance(ref, IdentitySpec) else key_loader(ref)

    return load


def digest_with_roots(raw: bytes, keys: Mapping[str, TrustedKey]) -> Digest:
    """The policy digest over the policy bytes, its keys and its identities' trusted roots
    (:func:`~digestgate.policy.trust.policy_digest`)."""
    from digestgate.policy.trust import policy_digest

    roots = {name: key.spki_der for name, key in keys.items() if key.spki_der}
    return policy_digest(raw, roots, sigstore=identity_roots(keys))


def identities(keys: Mapping[str, TrustedKey]) -> dict[str, SigstoreIdentity]:
    """The policy's Sigstore signers by local name."""
    return {n: k.key for n, k in keys.items() if isinstance(k.key, SigstoreIdentity)}


def identity_roots(keys: Mapping[str, TrustedKey]) -> dict[str, bytes]:
    """Signer name -> trusted root bytes, for the policy digest."""
    return {n: i.trusted_root_bytes for n, i in identities(keys).items()}


def may_overlap(a: SigstoreIdentity, b: SigstoreIdentity) -> bool:
    """Whether one certificate could match both identities (conservative: True unless
    provably disjoint by issuer, source repository, or the literal start or end of the
    identity patterns)."""
    if a.issuer != b.issuer or a.repository != b.repository:
        return False
    pa, pb = a.identity.pattern, b.identity.pattern
    head_a, head_b = _literal_head(pa), _literal_head(pb)
    if not (head_a.startswith(head_b) or head_b.startswith(head_a)):
        return False
    tail_a, tail_b = _literal_tail(pa), _literal_tail(pb)
    return tail_a.endswith(tail_b) or tail_b.endswith(tail_a)


def _literal_head(pattern: str) -> str:
    cut = min((i for i in (pattern.find("*"), pattern.find("?")) if i >= 0), default=len(pattern))
    return pattern[:cut]


def _literal_tail(pattern: str) -> str:
    cut = max(pattern.rfind("*"), pattern.rfind("?"))
    return pattern[cut + 1 :]


CLASH_HINT: Final = (
    "give each role its own workflow (a reusable build workflow is its own identity) and "
    "write identity patterns that cannot overlap (docs/sigstore.md)"
)


def role_clash(
    listed: Sequence[tuple[Any, str]], keys: Mapping[str, TrustedKey], fields: Mapping[Any, str]
) -> tuple[str, str] | None:
    """(signer name, message) for two identities in different roles that one certificate
    could satisfy, or None. ``listed`` holds (role, signer name) pairs; ``fields`` names
    each role's policy field."""
    found = [(role, name, keys[name].key) for role, name in listed]
    for i, (role, name, identity) in enumerate(found):
        if not isinstance(identity, SigstoreIdentity):
            continue
        for other_role, other_name, other in found[i + 1 :]:
            if role == other_role or not isinstance(other, SigstoreIdentity):
                continue
            if may_overlap(identity, other):
                return other_name, (
                    f"Sigstore identities {name!r} ({fields[role]}) and {other_name!r} "
                    f"({fields[other_role]}) could match the same certificate: one identity, "
                    "one role"
                )
    return None


def stage_clash(
    keys: Mapping[str, TrustedKey],
    build: Sequence[str],
    tests: Sequence[str],
    records: Sequence[str],
) -> tuple[str, str] | None:
    """:func:`role_clash` for ``requires.signers``: a promotion record's signer identity must
    not be one a build or tests workflow's certificate could also match."""
    listed = [*(("provenance", n) for n in build), *(("lanes", n) for n in tests)]
    listed += [("requires", n) for n in records]
    fields = {
        "provenance": "provenance.signers",
        "lanes": "lanes.*.signers",
        "requires": "requires.signers",
    }
    return role_clash(listed, keys, fields)


def subject_artifact(artifacts: Mapping[str, ArtifactRule], name: str) -> str | None:
    """The release artifact a Sigstore statement's subject name stands for, or None.

    A name that is an artifact name is that artifact. Otherwise the name is read as an
    image repository (``ghcr.io/org/backend``, as ``actions/attest-build-provenance``
    writes it; a ``:tag`` or ``@digest`` suffix is ignored) and maps to the one artifact
    whose ``repository`` glob matches it or whose ``evidence`` lists it. No match, or
    more than one, leaves the name unmapped: it then binds no artifact.
    """
    if name in artifacts:
        return name
    repository = name.split("@", 1)[0]
    slash = repository.rfind("/")
    if ":" in repository[slash + 1 :]:
        repository = repository[: repository.rfind(":")]
    hits = [
        artifact
        for artifact, rule in artifacts.items()
        if rule.repository.matches(repository)
        or any(loc.name == repository for loc in rule.evidence)
    ]
    return hits[0] if len(hits) == 1 else None
