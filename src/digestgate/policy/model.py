"""The validated policy: who may sign what, which sources and lanes qualify (pure).

Every value here has been checked by :mod:`digestgate.policy.load`; the gate reads these
objects and nothing else. Glob patterns use a deliberately small grammar (see :class:`Glob`)
so a pattern means the same thing to everyone reading the policy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final, Literal

from digestgate.digest import Digest
from digestgate.policy.platforms import ALL_PLATFORMS, PlatformRequirement
from digestgate.policy.stages import Enforcement, StageRule
from digestgate.reference import Location

LANE_NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
KEY_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_GLOB_FORBIDDEN: Final = frozenset("[]{}\\")
#: Whitespace (``\s`` is ``str.isspace``) or a control character below U+0020.
_GLOB_SPACE_RE: Final = re.compile(r"[\s\x00-\x1f]")
_GLOB_WILDCARD_RE: Final = re.compile(r"(\*\*|\*|\?)")

DEFAULT_MAX_AGE: Final = timedelta(days=7)
DEFAULT_GATE_MAX_AGE: Final = timedelta(days=30)
DEFAULT_EVENTS: Final = ("push", "workflow_dispatch")


class GlobError(ValueError):
    """A pattern outside the supported glob grammar."""


Token = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Glob:
    """A glob: ``*`` any run within one ``/``-separated segment, ``**`` anything, ``?`` one
    character other than ``/``; everything else is literal. Matching is whole-string.

    A wildcard never stands for a whole segment that is empty, ``.`` or ``..`` (after the
    ``oci:`` prefix of a layout location, too): ``oci:*/backend`` does not match
    ``oci:../backend``. Such segments match only when the pattern writes them literally.

    Matched by a small memoised matcher rather than a regex: policies with hundreds of
    artifacts compile a pattern each, and regex compilation would dominate loading.
    """

    pattern: str
    tokens: tuple[Token, ...] = field(compare=False, repr=False)

    @classmethod
    def compile(cls, pattern: str) -> Glob:
        """Compile ``pattern``; raise :class:`GlobError` for an unsupported pattern."""
        if not pattern:
            raise GlobError("empty pattern")
        if _GLOB_SPACE_RE.search(pattern):
            raise GlobError("whitespace or control characters")
        bad = sorted(set(pattern) & _GLOB_FORBIDDEN)
        if bad:
            raise GlobError(f"unsupported character {bad[0]!r}")
        if "***" in pattern:
            raise GlobError("'***' is ambiguous")
        # Literal runs alternate with wildcards (``**`` before ``*``, left to right).
        tokens: list[Token] = []
        for index, part in enumerate(_GLOB_WILDCARD_RE.split(pattern)):
            if index % 2:
                tokens.append((part, ""))
            elif part:
                tokens.append(("lit", part))
        return cls(pattern, tuple(tokens))

    def matches(self, text: str) -> bool:
        """True when ``text`` matches the whole pattern."""
        return _match(self.tokens, 0, text, 0, set(), _dot_segments(text))

    def __str__(self) -> str:
        return self.pattern


Span = tuple[int, int]


def _dot_segments(text: str) -> tuple[Span, ...]:
    """The (start, end) of every segment that is empty, ``.`` or ``..``.

    Segments are separated by ``/``; in an ``oci:`` location the path starts after the prefix.
    The ``/`` that starts an absolute path is the root: ``**`` may span it, but the empty text
    before it is listed as ``(p, p)`` with ``p`` negative-marked (see :func:`_covers`).
    """
    start = 4 if text.startswith("oci:") else 0
    spans: list[Span] = []
    if text.startswith("/", start):
        spans.append((-1 - start, -1 - start))  # the root: only a single-segment match counts
        start += 1
    while True:
        slash = text.find("/", start)
        end = len(text) if slash < 0 else slash
        if text[start:end] in ("", ".", ".."):
            spans.append((start, end))
        if slash < 0:
            return tuple(spans)
        start = slash + 1


def _covers(spans: tuple[Span, ...], j: int, k: int, *, within_segment: bool = True) -> bool:
    """True when text[j:k], matched by a wildcard, holds a whole empty/./.. segment.

    The root of an absolute path (a negative-marked span) counts only for a wildcard that
    stays within one segment: ``*`` matching nothing before the root would turn a relative
    pattern into an absolute path; ``**`` spanning ``/tmp/x`` is what it is for.
    """
    for start, end in spans:
        if start < 0:
            if within_segment and j == k == -1 - start:
                return True
        elif j <= start and end <= k:
            return True
    return False


def _match(
    tokens: tuple[Token, ...], i: int, text: str, j: int, failed: set[int], dots: tuple[Span, ...]
) -> bool:
    # ``failed`` memoises (token, position) pairs that cannot match: linear, not exponential.
    while i < len(tokens):
        key = i * (len(text) + 1) + j
        if key in failed:
            return False
        kind, literal = tokens[i]
        if kind == "lit":
            if not text.startswith(literal, j):
                return False
            j += len(literal)
        elif kind == "?":
            if j >= len(text) or text[j] == "/" or _covers(dots, j, j + 1):
                return False
            j += 1
        else:
            slash = -1 if kind == "**" else text.find("/", j)
            end = len(text) if slash < 0 else slash
            for k in range(end, j - 1, -1):
                if dots and _covers(dots, j, k, within_segment=kind == "*"):
                    continue
                if _match(tokens, i + 1, text, k, failed, dots):
                    return True
            failed.add(key)
            return False
        i += 1
    return j == len(text)


def matches_any(globs: tuple[Glob, ...], text: str) -> bool:
    """True when any of ``globs`` matches ``text``."""
    return any(g.matches(text) for g in globs)


@dataclass(frozen=True, slots=True)
class ArtifactRule:
    """One required artifact: its name, the repositories it may come from, and the exact
    repositories whose attached evidence is read for it (never chosen by the release file)."""

    name: str
    repository: Glob
    evidence: tuple[Location, ...] = ()


Role = Literal["provenance", "lanes", "gate"]


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """A public key the policy trusts under a local name.

    ``spki_der`` is the canonical SubjectPublicKeyInfo DER encoding (what the policy digest
    hashes); ``keyid`` is its sha256 hex. ``key`` is the loaded verifier (an
    :class:`~digestgate.evidence.keys.PublicKey` in production; anything in pure tests).
    """

    name: str
    keyid: str
    spki_der: bytes = field(repr=False)
    origin: str
    key: Any = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class SourceRule:
    """Which source repository, refs and CI events a build may come from."""

    repository: str
    refs: tuple[Glob, ...]
    events: tuple[str, ...] = DEFAULT_EVENTS


@dataclass(frozen=True, slots=True)
class ProvenanceRule:
    """Who signs provenance, how many distinct keys, and (optionally) which builder."""

    signers: tuple[str, ...]
    threshold: int = 1
    builder: Glob | None = None


@dataclass(frozen=True, slots=True)
class LaneRule:
    """A validation lane that must pass for every artifact (and, for an image index, for
    the platforms ``platforms`` requires: see :mod:`digestgate.policy.platforms`)."""

    name: str
    signers: tuple[str, ...]
    together: bool = False
    platforms: PlatformRequirement = ALL_PLATFORMS


@dataclass(frozen=True, slots=True)
class GateRule:
    """Who signs the VSAs that ``verify`` accepts, and how old they may be."""

    signers: tuple[str, ...]
    max_age: timedelta = DEFAULT_GATE_MAX_AGE


@dataclass(frozen=True, slots=True)
class PromotionRule:
    """Promotion settings: tags that are never moved once they exist, and the artifact types
    of other tools' referrers (signatures, SBOMs, ...) carried to the target."""

    immutable_tags: tuple[Glob, ...] = ()
    referrers: tuple[Glob, ...] = ()


@dataclass(frozen=True, slots=True)
class Policy:
    """A loaded ``policy.yaml`` with its trusted keys.

    ``keys`` maps local key names to the loaded keys; thresholds count distinct key ids, so
    two names for one key count once. ``digest`` is the policy's identity: it covers the
    policy bytes and every trusted key bound to its name (:func:`~digestgate.policy.load.
    policy_digest`), so swapping a ``.pub`` file makes a new policy. VSAs name it and
    deployments pin it. ``text_digest`` is the sha256 of the file bytes alone. ``stage``
    and ``enforcement`` are the staged-rollout settings (:mod:`digestgate.policy.stages`).
    """

    source_name: str
    digest: Digest
    keys: Mapping[str, TrustedKey]
    artifacts: Mapping[str, ArtifactRule]
    source: SourceRule
    provenance: ProvenanceRule
    lanes: Mapping[str, LaneRule]
    max_age: timedelta = DEFAULT_MAX_AGE
    same_revision: bool = True
    same_run: bool = True
    deny: frozenset[Digest] = frozenset()
    gate: GateRule | None = None
    promotion: PromotionRule = PromotionRule()
    text_digest: Digest | None = None
    stage: StageRule = field(default_factory=StageRule)
    enforcement: Enforcement = "enforce"

    def key_identity(self, name: str) -> str:
        """The identity counted by thresholds for key ``name``: its key id."""
        key = self.keys.get(name)
        return key.keyid if key is not None else name

    def key_ids(self, names: tuple[str, ...] | None = None) -> dict[str, str]:
        """Key name -> key id, for ``names`` (default: every trusted key)."""
        wanted = sorted(self.keys) if names is None else names
        return {name: self.keys[name].keyid for name in wanted if name in self.keys}

    def roles(self) -> dict[str, Role]:
        """The role each signing key name plays (a key plays at most one)."""
        result: dict[str, Role] = {}
        for name in self.provenance.signers:
            result[name] = "provenance"
        for lane in self.lanes.values():
            for name in lane.signers:
                result[name] = "lanes"
        for name in self.gate.signers if self.gate is not None else ():
            result[name] = "gate"
        return result
