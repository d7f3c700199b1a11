"""Warn-only rollout (``enforcement: warn``): what a gate VSA signed in warn mode says (pure).

A gate under ``enforcement: warn`` decides, reports and exits 0, but its VSAs must never be
mistaken for a pass: each says ``verificationResult: FAILED`` (``verifiedLevels: [FAILED]``)
whatever the decision was, and carries ``digestgate_enforcement: warn`` with the decision it
would have made as ``digestgate_evaluated``. ``verify`` refuses any VSA with the marker
(``vsa.warn-only``), even one that claims PASSED.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from digestgate.evidence.model import VsaResult
from digestgate.policy.stages import Enforcement

ENFORCEMENT_FIELD: Final = "digestgate_enforcement"
EVALUATED_FIELD: Final = "digestgate_evaluated"


def vsa_result(passed: bool, enforcement: Enforcement) -> VsaResult:
    """The ``verificationResult`` a gate VSA records: never PASSED in warn mode."""
    return "PASSED" if passed and enforcement == "enforce" else "FAILED"


def warn_fields(passed: bool) -> dict[str, Any]:
    """The signed warn-mode marker, with the verdict the gate would have reached."""
    return {ENFORCEMENT_FIELD: "warn", EVALUATED_FIELD: "PASSED" if passed else "FAILED"}


def is_warn_only(predicate: Mapping[str, Any]) -> bool:
    """True for a VSA signed by a gate that did not enforce (any marker value but absent
    counts: a field digestgate does not write is not trusted to mean "enforce")."""
    return ENFORCEMENT_FIELD in predicate and predicate.get(ENFORCEMENT_FIELD) != "enforce"
