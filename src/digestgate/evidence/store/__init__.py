"""Evidence stores: where DSSE envelopes live (a directory, or attached to the images).

Stores only move bytes, with caps; they never verify signatures (the signing layer does).
"""

from digestgate.evidence.store.base import (
    EvidenceStore,
    StoredEnvelope,
    StoreProblem,
    SubjectLocation,
)
from digestgate.evidence.store.open import open_evidence_store, read_all

__all__ = [
    "EvidenceStore",
    "StoreProblem",
    "StoredEnvelope",
    "SubjectLocation",
    "open_evidence_store",
    "read_all",
]
