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
from pathlib import Path
from typing import Final

from digestgate.digest import Digest

LANE_NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
KEY_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_GLOB_FORBIDDEN: Final = frozenset("[]{}\\")

DEFAULT_MAX_AGE: Final = timedelta(days=7)
DEFAULT_GATE_MAX_AGE: Final = timedelta(days=30)
DEFAULT_EVENTS: Final = ("push", "workflow_dispatch")


class GlobError(ValueError):
    """A pattern outside the supported glob grammar."""


@dataclass(frozen=True, slots=True)
class Glob:
    """A glob: ``*`` any run within one ``/``-separated segment, ``**`` anything, ``?`` one
    character other than ``/``; everything else is literal. Matching is whole-string."""

    pattern: str
    _regex: re.Pattern[str] = field(compare=False, repr=False)

    @classmethod
    def compile(cls, pattern: str) -> Glob:
        """Compile ``pattern``; raise :class:`GlobError` for an unsupported pattern."""
        if not pattern:
            raise GlobError("empty pattern")
        if any(c.isspace() or ord(c) < 0x20 for c in pattern):
            raise GlobError("whitespace or control characters")
        bad = sorted(set(pattern) & _GLOB_FORBIDDEN)
        if bad:
            raise GlobError(f"unsupported character {bad[0]!r}")
        if "***" in pattern:
            raise GlobError("'***' is ambiguous")
        parts: list[str] = []
        i = 0
        while i < len(pattern):
            if pattern.startswith("**", i):
                parts.append(".*")
                i += 2
            elif pattern[i] == "*":
                parts.append("[^/]*")
                i += 1
            elif pattern[i] == "?":
                parts.append("[^/]")
                i += 1
            else:
                parts.append(re.escape(pattern[i]))
                i += 1
        return cls(pattern, re.compile("".join(parts), re.DOTALL))

    def matches(self, text: str) -> bool:
        """True when ``text`` matches the whole pattern."""
        return self._regex.fullmatch(text) is not None

    def __str__(self) -> str:
        return self.pattern


def matches_any(globs: tuple[Glob, ...], text: str) -> bool:
    """True when any of ``globs`` matches ``text``."""
    return any(g.matches(text) for g in globs)


@dataclass(frozen=True, slots=True)
class ArtifactRule:
    """One required artifact: its name and the repositories it may come from."""

    name: str
    repository: Glob


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
    """A validation lane that must pass for every artifact."""

    name: str
    signers: tuple[str, ...]
    together: bool = False


@dataclass(frozen=True, slots=True)
class GateRule:
    """Who signs the VSAs that ``verify`` accepts, and how old they may be."""

    signers: tuple[str, ...]
    max_age: timedelta = DEFAULT_GATE_MAX_AGE


@dataclass(frozen=True, slots=True)
class PromotionRule:
    """Promotion settings: tags that are never moved once they exist."""

    immutable_tags: tuple[Glob, ...] = ()


@dataclass(frozen=True, slots=True)
class Policy:
    """A loaded ``policy.yaml``.

    ``keys`` maps local key names to resolved public-key paths. ``key_ids`` maps key names
    to a stable identity of the key material (set by the command layer once keys are
    loaded); thresholds count distinct identities, so two names for one key count once.
    ``digest`` is the sha256 of the exact file bytes: the digest VSAs name.
    """

    source_name: str
    digest: Digest
    keys: Mapping[str, Path]
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
    key_ids: Mapping[str, str] = field(default_factory=dict)

    def key_identity(self, name: str) -> str:
        """The identity counted by thresholds for key ``name``."""
        return self.key_ids.get(name, name)
