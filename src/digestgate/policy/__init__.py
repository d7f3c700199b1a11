"""The gate policy (``policy.yaml``): a strict model and its loader (design section 4)."""

from digestgate.policy.load import load_policy, parse_policy, policy_digest
from digestgate.policy.model import (
    ArtifactRule,
    GateRule,
    Glob,
    LaneRule,
    Policy,
    PromotionRule,
    ProvenanceRule,
    SourceRule,
)

__all__ = [
    "ArtifactRule",
    "GateRule",
    "Glob",
    "LaneRule",
    "Policy",
    "PromotionRule",
    "ProvenanceRule",
    "SourceRule",
    "load_policy",
    "parse_policy",
    "policy_digest",
]
