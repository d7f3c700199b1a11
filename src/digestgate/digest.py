"""Digests as validated value objects, and hashing of byte streams.

A digest is ``ALGORITHM:HEX``; only ``sha256`` (64 lowercase hex) and ``sha512`` (128) are
accepted (OCI image spec, descriptor.md "Registered algorithms"). Uppercase, wrong lengths and
other algorithms are refused on construction, so a ``Digest`` in hand is always well-formed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from digestgate.errors import IntegrityError, InvalidReferenceError

Algorithm = Literal["sha256", "sha512"]

_HEX_LENGTH: Final[dict[str, int]] = {"sha256": 64, "sha512": 128}
_DIGEST_RE: Final = re.compile(r"(sha256|sha512):([0-9a-f]+)")
_HEX_RE: Final = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True, slots=True, order=True)
class Digest:
    """A content digest such as ``sha256:<64 lowercase hex>``."""

    algorithm: Algorithm
    hex: str

    def __post_init__(self) -> None:
        want = _HEX_LENGTH.get(self.algorithm)
        if want is None:
            raise InvalidReferenceError(
                f"unsupported digest algorithm {self.algorithm!r}",
                hint="use a sha256 (or sha512) digest",
            )
        if len(self.hex) != want or not _HEX_RE.fullmatch(self.hex):
            raise InvalidReferenceError(
                f"invalid {self.algorithm} digest: need {want} lowercase hex characters",
                hint="copy the digest exactly as `digestgate resolve` prints it",
            )

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse ``sha256:<hex>``; raise :class:`InvalidReferenceError` naming the problem."""
        if not isinstance(text, str):
            raise InvalidReferenceError("a digest must be a string")
        match = _DIGEST_RE.fullmatch(text)
        if match is None:
            shown = text if len(text) <= 80 else text[:77] + "..."
            prefix, sep, hexpart = text.partition(":")
            if not sep:
                reason = "missing the 'sha256:' prefix"
            elif prefix not in _HEX_LENGTH:
                reason = f"unsupported algorithm {prefix[:20]!r}"
            elif hexpart != hexpart.lower():
                reason = "uppercase hex is not allowed"
            else:
                reason = "not hexadecimal"
            raise InvalidReferenceError(
                f"invalid digest {shown!r}: {reason}",
                hint="a digest looks like sha256: followed by 64 lowercase hex characters",
            )
        algorithm_text, hexpart = match.groups()
        algorithm: Algorithm = "sha256" if algorithm_text == "sha256" else "sha512"
        return cls(algorithm, hexpart)

    @classmethod
    def is_valid(cls, text: str) -> bool:
        """True when ``text`` parses as a digest."""
        try:
            cls.parse(text)
        except InvalidReferenceError:
            return False
        return True

    @classmethod
    def of(cls, data: bytes, algorithm: Algorithm = "sha256") -> Digest:
        """The digest of ``data``."""
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def __hash__(self) -> int:
        # The hex alone: its length already tells the algorithms apart, and digests are
        # hashed for every set and dict lookup the gate makes.
        return hash(self.hex)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @property
    def short(self) -> str:
        """``sha256:`` and the first 12 hex characters, for humans."""
        return f"{self.algorithm}:{self.hex[:12]}"

    @property
    def tag_form(self) -> str:
        """``sha256-<hex>``: the referrers tag-schema name (distribution-spec 1.1)."""
        return f"{self.algorithm}-{self.hex}"

    def hasher(self) -> DigestHasher:
        """A streaming hasher with this digest's algorithm."""
        return DigestHasher(self.algorithm)

    def verify(self, data: bytes, *, what: str = "content") -> None:
        """Raise :class:`IntegrityError` unless ``data`` hashes to this digest."""
        actual = Digest.of(data, self.algorithm)
        if actual != self:
            raise IntegrityError(
                f"{what} does not match its digest: expected {self}, got {actual}",
                hint="the store served different bytes; do not use this content",
            )


class DigestHasher:
    """Hash a stream incrementally, counting bytes, and check the result at the end."""

    __slots__ = ("_h", "algorithm", "size")

    def __init__(self, algorithm: Algorithm = "sha256") -> None:
        self.algorithm: Algorithm = algorithm
        self._h = hashlib.new(algorithm)
        self.size = 0

    def update(self, chunk: bytes) -> None:
        """Add ``chunk`` to the hash."""
        self._h.update(chunk)
        self.size += len(chunk)

    def digest(self) -> Digest:
        """The digest of everything seen so far."""
        return Digest(self.algorithm, self._h.hexdigest())

    def check(self, expected: Digest, expected_size: int | None, *, what: str) -> None:
        """Raise :class:`IntegrityError` unless the stream matched digest and size."""
        if expected_size is not None and self.size != expected_size:
            raise IntegrityError(
                f"{what}: got {self.size} bytes, expected {expected_size}",
                hint="the transfer was truncated or the store is faulty; retry",
            )
        actual = self.digest()
        if actual != expected:
            raise IntegrityError(
                f"{what} does not match its digest: expected {expected}, got {actual}",
                hint="the store served different bytes; do not use this content",
            )


def hash_stream(chunks: Iterable[bytes], algorithm: Algorithm = "sha256") -> tuple[Digest, int]:
    """Digest and size of a stream of chunks, in constant memory."""
    hasher = DigestHasher(algorithm)
    for chunk in chunks:
        hasher.update(chunk)
    return hasher.digest(), hasher.size
