"""Stage records for the gate: the promotion records it already read decide ``requires``.

Promotion records are VSAs that ``promote`` writes next to the evidence: attached to the
promoted digest in the target repository, and into the first ``dir:`` evidence store. The
gate reads them with the rest of the evidence (so a policy that requires a stage lists the
earlier stage's target repositories under ``artifacts.NAME.evidence`` when it reads attached
evidence); only verified envelopes arrive here, and :mod:`digestgate.rules.stages` decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from digestgate.evidence.model import VSA, VerifiedEvidence
from digestgate.policy.model import Policy
from digestgate.rules.decision import Decision
from digestgate.rules.stages import apply_stages


def stage_candidates(evidence: Sequence[VerifiedEvidence]) -> list[VerifiedEvidence]:
    """The verified VSAs among the evidence: the only statements that can be stage records."""
    return [ev for ev in evidence if ev.statement.predicate_type == VSA]


def decide_stages(
    policy: Policy, decision: Decision, evidence: Sequence[VerifiedEvidence], now: datetime
) -> Decision:
    """``decision`` with the policy's stage requirement applied (unchanged without one)."""
    if policy.stage.requires is None:
        return decision
    return apply_stages(policy, decision, stage_candidates(evidence), now)
