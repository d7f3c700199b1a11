"""``drift``: does every tag a promotion applied still point to the digest it was set to?

Each tag is resolved at the target by fetching its manifest and hashing the bytes (never by
a header). A tag that now names another digest, or no longer exists, has drifted. A store
that cannot answer is an operational error (exit 3): drift is then unknown, not absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from digestgate.digest import Digest
from digestgate.errors import ConfigError
from digestgate.oci.open import Stores
from digestgate.reference import LayoutReference, Location
from digestgate.release import Promotion


@dataclass(frozen=True, slots=True)
class TagState:
    """One promoted tag: the digest it was set to and the digest it resolves to now."""

    artifact: str
    repository: str
    tag: str
    expected: Digest
    now: Digest | None

    @property
    def drifted(self) -> bool:
        """True when the tag moved or disappeared."""
        return self.now != self.expected


def drift(*, promotion: Promotion, stores: Stores) -> list[TagState]:
    """Resolve every recorded tag at its target; the states in artifact, then tag order."""
    states: list[TagState] = []
    for name, artifact in sorted(promotion.artifacts.items()):
        if not artifact.tags:
            continue
        location = artifact.location
        if location is None or location.digest is None:
            raise ConfigError(
                f"promoted artifact {name}: {artifact.image_text[:200]!r} is not pinned by "
                "digest, so there is no digest its tags were set to",
                hint="drift reads the promoted.json that `digestgate promote --out` writes",
            )
        expected = location.digest
        if _missing_layout(location):
            states.extend(
                TagState(name, location.name, t.tag, expected, None) for t in artifact.tags
            )
            continue
        store = stores.open(location)
        for promoted in artifact.tags:
            now = store.get_tag(promoted.tag)
            states.append(
                TagState(name, location.name, promoted.tag, expected, now.digest if now else None)
            )
    return states


def _missing_layout(location: Location) -> bool:
    # A deleted target layout has lost its tags: that is drift, not a failure to check.
    return isinstance(location, LayoutReference) and not Path(location.path).exists()
