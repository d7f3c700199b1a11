"""Open evidence stores from ``--evidence`` specs and read several of them as one."""

from __future__ import annotations

from collections.abc import Sequence

from digestgate.digest import Digest
from digestgate.errors import UsageError
from digestgate.evidence.store.attached import AttachedStore
from digestgate.evidence.store.base import (
    EvidenceStore,
    StoredEnvelope,
    StoreProblem,
    SubjectLocation,
)
from digestgate.evidence.store.dirstore import DirStore
from digestgate.oci.open import Stores

_FORMS = "dir:PATH (a directory of envelopes) or attached (next to the images)"


def open_evidence_store(spec: str, stores: Stores) -> EvidenceStore:
    """The store named by ``spec``: ``dir:PATH`` or ``attached``."""
    if spec == "attached":
        return AttachedStore(stores)
    if spec.startswith("dir:"):
        path = spec[4:]
        if not path or any(ord(c) < 0x20 for c in path):
            raise UsageError(f"invalid evidence store {spec[:100]!r}", hint=f"use {_FORMS}")
        return DirStore(path)
    raise UsageError(f"unknown evidence store {spec[:100]!r}", hint=f"use {_FORMS}")


def read_all(
    stores: Sequence[EvidenceStore], subjects: Sequence[SubjectLocation]
) -> tuple[list[StoredEnvelope], list[StoreProblem]]:
    """Every envelope from every store, once each (by sha256 of the bytes), and the problems.

    The first origin an envelope was found at is kept; order follows the stores as given.
    """
    envelopes: list[StoredEnvelope] = []
    problems: list[StoreProblem] = []
    seen: set[Digest] = set()
    for store in stores:
        for item in store.read(subjects):
            if isinstance(item, StoreProblem):
                problems.append(item)
            elif item.digest not in seen:
                seen.add(item.digest)
                envelopes.append(item)
    return envelopes, problems
