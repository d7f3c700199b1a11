"""digestgate: digest-locked, provenance-aware promotion of container images.

The public Python API (docs/api.md) is the set of names in ``__all__``: the verbs
(:func:`capture`, :func:`attest_provenance`, :func:`attest_test_result`, :func:`gate`,
:func:`promote`, :func:`verify`, :func:`drift`, :func:`lint`), the values they take and
return, and the errors they raise. Every submodule is internal and may change between
releases. Names load on first use, so ``import digestgate`` (and ``digestgate --version``)
costs nothing beyond this file.
"""

from __future__ import annotations

import importlib

from digestgate._version import __version__

#: ``typing.TYPE_CHECKING`` without importing ``typing`` (type checkers treat it as True).
TYPE_CHECKING = False

if TYPE_CHECKING:
    from digestgate.attesting.attest import (
        Attestation,
        LaneReport,
        SourceFlags,
        attest_provenance,
        attest_test_result,
        build_context,
        read_lane_outcome,
        select_subjects,
    )
    from digestgate.capturing.capture import CaptureRequest, CaptureResult, capture
    from digestgate.ci import CiContext
    from digestgate.errors import (
        BlockedError,
        ConcurrentChangeError,
        ConfigError,
        DigestgateError,
        ExitCode,
        IncompleteReadError,
        IntegrityError,
        OperationalError,
        UsageError,
    )
    from digestgate.evidence.keys import load_signer
    from digestgate.evidence.store.base import EvidenceStore
    from digestgate.evidence.store.open import open_evidence_store
    from digestgate.gating.gate import GateResult, gate
    from digestgate.gating.verify import verify
    from digestgate.linting.api import LintResult, lint
    from digestgate.linting.findings import Finding as LintFinding
    from digestgate.oci.open import Stores
    from digestgate.oci.options import StoreOptions
    from digestgate.policy.load import load_policy
    from digestgate.policy.model import Policy
    from digestgate.promotion.drift import TagState, drift
    from digestgate.promotion.model import PromotionResult
    from digestgate.promotion.promote import promote
    from digestgate.reference import parse_location
    from digestgate.release import Promotion, Release, load_release
    from digestgate.rules.decision import Decision
    from digestgate.rules.findings import Finding
    from digestgate.rules.verify import VerifyDecision

#: Public name -> (owning module, name there).
_EXPORTS: dict[str, tuple[str, str]] = {
    # verbs
    "capture": ("digestgate.capturing.capture", "capture"),
    "attest_provenance": ("digestgate.attesting.attest", "attest_provenance"),
    "attest_test_result": ("digestgate.attesting.attest", "attest_test_result"),
    "gate": ("digestgate.gating.gate", "gate"),
    "promote": ("digestgate.promotion.promote", "promote"),
    "verify": ("digestgate.gating.verify", "verify"),
    "drift": ("digestgate.promotion.drift", "drift"),
    "lint": ("digestgate.linting.api", "lint"),
    # what they take
    "CaptureRequest": ("digestgate.capturing.capture", "CaptureRequest"),
    "CiContext": ("digestgate.ci", "CiContext"),
    "EvidenceStore": ("digestgate.evidence.store.base", "EvidenceStore"),
    "Policy": ("digestgate.policy.model", "Policy"),
    "Promotion": ("digestgate.release", "Promotion"),
    "Release": ("digestgate.release", "Release"),
    "SourceFlags": ("digestgate.attesting.attest", "SourceFlags"),
    "StoreOptions": ("digestgate.oci.options", "StoreOptions"),
    "Stores": ("digestgate.oci.open", "Stores"),
    "build_context": ("digestgate.attesting.attest", "build_context"),
    "load_policy": ("digestgate.policy.load", "load_policy"),
    "load_release": ("digestgate.release", "load_release"),
    "load_signer": ("digestgate.evidence.keys", "load_signer"),
    "open_evidence_store": ("digestgate.evidence.store.open", "open_evidence_store"),
    "parse_location": ("digestgate.reference", "parse_location"),
    "read_lane_outcome": ("digestgate.attesting.attest", "read_lane_outcome"),
    "select_subjects": ("digestgate.attesting.attest", "select_subjects"),
    # what they return
    "Attestation": ("digestgate.attesting.attest", "Attestation"),
    "CaptureResult": ("digestgate.capturing.capture", "CaptureResult"),
    "Decision": ("digestgate.rules.decision", "Decision"),
    "Finding": ("digestgate.rules.findings", "Finding"),
    "GateResult": ("digestgate.gating.gate", "GateResult"),
    "LaneReport": ("digestgate.attesting.attest", "LaneReport"),
    "LintFinding": ("digestgate.linting.findings", "Finding"),
    "LintResult": ("digestgate.linting.api", "LintResult"),
    "PromotionResult": ("digestgate.promotion.model", "PromotionResult"),
    "TagState": ("digestgate.promotion.drift", "TagState"),
    "VerifyDecision": ("digestgate.rules.verify", "VerifyDecision"),
    # what they raise
    "BlockedError": ("digestgate.errors", "BlockedError"),
    "ConcurrentChangeError": ("digestgate.errors", "ConcurrentChangeError"),
    "ConfigError": ("digestgate.errors", "ConfigError"),
    "DigestgateError": ("digestgate.errors", "DigestgateError"),
    "ExitCode": ("digestgate.errors", "ExitCode"),
    "IncompleteReadError": ("digestgate.errors", "IncompleteReadError"),
    "IntegrityError": ("digestgate.errors", "IntegrityError"),
    "OperationalError": ("digestgate.errors", "OperationalError"),
    "UsageError": ("digestgate.errors", "UsageError"),
}

__all__ = [
    "Attestation",
    "BlockedError",
    "CaptureRequest",
    "CaptureResult",
    "CiContext",
    "ConcurrentChangeError",
    "ConfigError",
    "Decision",
    "DigestgateError",
    "EvidenceStore",
    "ExitCode",
    "Finding",
    "GateResult",
    "IncompleteReadError",
    "IntegrityError",
    "LaneReport",
    "LintFinding",
    "LintResult",
    "OperationalError",
    "Policy",
    "Promotion",
    "PromotionResult",
    "Release",
    "SourceFlags",
    "StoreOptions",
    "Stores",
    "TagState",
    "UsageError",
    "VerifyDecision",
    "__version__",
    "attest_provenance",
    "attest_test_result",
    "build_context",
    "capture",
    "drift",
    "gate",
    "lint",
    "load_policy",
    "load_release",
    "load_signer",
    "open_evidence_store",
    "parse_location",
    "promote",
    "read_lane_outcome",
    "select_subjects",
    "verify",
]


def __getattr__(name: str) -> object:
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'digestgate' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
