"""The evidence store interface and the values it passes around.

An evidence store writes and reads DSSE envelopes (in-toto envelope.md, specs 1.5). It
never verifies signatures and never trusts what it reads: it moves bytes, with caps, and
reports files or referrers it could not use as :class:`StoreProblem` values (the gate shows
them as ``evidence.malformed`` findings, which never count as passing).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol, runtime_checkable

from digestgate.digest import Digest
from digestgate.errors import InternalError
from digestgate.evidence.model import PREDICATE_NAMES
from digestgate.jsonutil import JSONFormatError, loads_strict
from digestgate.reference import Location, validate_artifact_name

#: Media types of Sigstore bundles, read beside plain envelopes (docs/sigstore.md).
BUNDLE_MEDIA_PREFIX: Final = "application/vnd.dev.sigstore.bundle"
_BUNDLE_MEDIA_BYTES: Final = BUNDLE_MEDIA_PREFIX.encode()

#: Largest envelope any store reads or writes (a signed statement is a few KiB; BuildKit
#: caps its own attestation files at 40 MiB, specs 7.3).
MAX_ENVELOPE_SIZE: Final = 16 * 1024 * 1024

#: Short predicate names used in media types and file names (``provenance``, ...).
PREDICATE_SHORT_NAMES: Final = frozenset(PREDICATE_NAMES.values())

#: Manifest annotations written next to attached envelopes.
ANNOTATION_CREATED: Final = "org.opencontainers.image.created"
ANNOTATION_PREDICATE_TYPE: Final = "dev.digestgate.predicate-type"
ANNOTATION_ENVELOPE_DIGEST: Final = "dev.digestgate.envelope-digest"


@dataclass(frozen=True, slots=True)
class SubjectLocation:
    """An artifact name and the image location it is pinned to by digest."""

    name: str
    location: Location

    def __post_init__(self) -> None:
        validate_artifact_name(self.name)
        if self.location.digest is None:
            raise InternalError(
                f"subject {self.name!r} is not pinned by digest: {self.location}",
                hint="evidence is only ever stored for a digest",
            )

    @property
    def digest(self) -> Digest:
        """The image digest."""
        assert self.location.digest is not None
        return self.location.digest

    @property
    def repository(self) -> str:
        """The repository's name (``host/repo`` or ``oci:DIR``)."""
        return self.location.name


@dataclass(frozen=True, slots=True)
class StoredEnvelope:
    """The exact bytes of one envelope and where they were found."""

    raw: bytes
    origin: str
    digest: Digest = field(init=False, repr=False, compare=False)
    """The sha256 of the envelope bytes (used to de-duplicate copies), hashed once."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "digest", Digest.of(self.raw))


@dataclass(frozen=True, slots=True)
class StoreProblem:
    """A file, line or referrer that could not be read as an envelope."""

    origin: str
    message: str


@runtime_checkable
class EvidenceStore(Protocol):
    """Somewhere envelopes are written to and read from."""

    def describe(self) -> str:
        """The store as the user would name it (``dir:PATH``, ``attached``)."""
        ...

    def write(
        self, envelope: bytes, *, predicate: str, subjects: Sequence[SubjectLocation]
    ) -> list[str]:
        """Store one envelope for these subjects; return where it was written."""
        ...

    def read(self, subjects: Sequence[SubjectLocation]) -> Iterator[StoredEnvelope | StoreProblem]:
        """Every envelope the store holds that may concern these subjects."""
        ...


def predicate_name(predicate: str) -> str:
    """The short name for a predicate given by short name or by predicate type URI."""
    if predicate in PREDICATE_SHORT_NAMES:
        return predicate
    name = PREDICATE_NAMES.get(predicate)
    if name is None:
        raise InternalError(
            f"unknown predicate {predicate[:100]!r}",
            hint=f"use one of {', '.join(sorted(PREDICATE_SHORT_NAMES))}",
        )
    return name


def predicate_type(predicate: str) -> str:
    """The predicate type URI for a short name or URI."""
    name = predicate_name(predicate)
    return next(uri for uri, short in PREDICATE_NAMES.items() if short == name)


def envelope_problem(raw: bytes) -> str | None:
    """Why ``raw`` is not shaped like a DSSE envelope, or None when it is.

    Only the shape is checked (a JSON object with string ``payload`` and ``payloadType`` and
    a list of ``signatures``, or a Sigstore bundle holding a ``dsseEnvelope``); signatures
    are the signing layer's business.
    """
    try:
        doc = loads_strict(raw)
    except JSONFormatError as exc:
        return f"not JSON: {exc}"
    if not isinstance(doc, Mapping):
        return "not a JSON object"
    media = doc.get("mediaType")
    if isinstance(media, str) and media.startswith(BUNDLE_MEDIA_PREFIX):
        # A Sigstore bundle: the DSSE envelope is inside (evidence/sigstore.py verifies it).
        return (
            None
            if isinstance(doc.get("dsseEnvelope"), Mapping)
            else "a Sigstore bundle without a dsseEnvelope"
        )
    for key in ("payload", "payloadType"):
        if not isinstance(doc.get(key), str):
            return f"not a DSSE envelope: {key!r} missing or not a string"
    if not isinstance(doc.get("signatures"), list):
        return "not a DSSE envelope: 'signatures' missing or not a list"
    return None


def is_sigstore_bundle(raw: bytes) -> bool:
    """True when ``raw`` is a JSON object whose ``mediaType`` names a Sigstore bundle."""
    if b"\\" not in raw and _BUNDLE_MEDIA_BYTES not in raw:
        # Without escapes every string of the document is in its bytes as written, so a
        # document that does not hold the media type prefix cannot be a bundle: the common
        # case (a DSSE envelope) is answered without a second parse.
        return False
    try:
        doc = loads_strict(raw)
    except JSONFormatError:
        return False
    media = doc.get("mediaType") if isinstance(doc, Mapping) else None
    return isinstance(media, str) and media.startswith(BUNDLE_MEDIA_PREFIX)


def check_envelope(raw: bytes) -> None:
    """Refuse to store bytes that are not an envelope (a bug in the caller)."""
    if len(raw) > MAX_ENVELOPE_SIZE:
        raise InternalError(
            f"envelope of {len(raw)} bytes is over the {MAX_ENVELOPE_SIZE}-byte limit",
            hint="a signed statement should be a few kilobytes",
        )
    problem = envelope_problem(raw)
    if problem is not None:
        raise InternalError(f"refusing to store evidence: {problem}")
