"""The gate policy (``policy.yaml``): a strict model and its loader (design section 4)."""

from digestgate.policy.load import load_policy, parse_policy
from digestgate.policy.model import (
    ArtifactRule,
    GateRule,
    Glob,
    LaneRule,
    Policy,
    PromotionRule,
    ProvenanceRule,
    SourceRule,
    TrustedKey,
)
from digestgate.policy.trust import policy_digest

__all__ = [
    "ArtifactRule",
    "GateRule",
    "Glob",
    "LaneRule",
    "Policy",
    "PromotionRule",
    "ProvenanceRule",
    "SourceRule",
    "TrustedKey",
    "load_policy",
    "parse_policy",
    "policy_digest",
]
