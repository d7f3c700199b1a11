"""The JSON report of design section 4: schemaVersion 1, sorted keys and lists."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from digestgate.rules.decision import ArtifactDecision, Decision, EvidenceRef
from digestgate.rules.findings import Finding

SCHEMA_VERSION: Final = 1


def _findings(findings: Iterable[Finding]) -> list[dict[str, str]]:
    items = [{"id": f.id, "message": f.message, "hint": f.hint} for f in findings]
    return sorted(items, key=lambda f: (f["id"], f["message"], f["hint"]))


def _evidence(refs: Iterable[EvidenceRef]) -> list[dict[str, str]]:
    items = [
        {"digest": str(r.digest), "origin": r.origin, "predicateType": r.predicate_type}
        for r in refs
    ]
    return sorted(items, key=lambda e: (e["digest"], e["origin"]))


def _artifact(a: ArtifactDecision) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "digest": None if a.digest is None else str(a.digest),
        "verdict": a.verdict,
        "findings": _findings(a.findings),
        "evidence": _evidence(a.evidence),
    }
    if a.platforms:  # an index: the children its VSA names (docs/policy.md, Platforms)
        doc["platforms"] = [p.to_json() for p in a.platforms]
    return doc


def report_document(decision: Decision) -> dict[str, Any]:
    """The report as plain data."""
    return {
        "schemaVersion": SCHEMA_VERSION,
        "verdict": decision.verdict,
        "policy": {"digest": str(decision.policy_digest)},
        "artifacts": {name: _artifact(a) for name, a in sorted(decision.artifacts.items())},
        "findings": _findings(decision.findings),
    }
