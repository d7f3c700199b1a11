"""Reads ``platforms`` (release-wide and per lane) into the lanes of a policy being loaded.

Kept beside :mod:`digestgate.policy.platforms` (the grammar) so the loader only calls it;
see that module for what ``all``, ``any`` and a list mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from digestgate.policy.model import LaneRule
from digestgate.policy.platforms import ALL_PLATFORMS, ErrorFactory, parse_requirement
from digestgate.yamlsource import YMap


def with_platforms(
    lanes: Mapping[str, LaneRule], doc: YMap, error: ErrorFactory
) -> dict[str, LaneRule]:
    """``lanes`` with each lane's requirement: its own ``platforms``, else the top-level one."""
    default = parse_requirement(doc.get("platforms"), "platforms", error, ALL_PLATFORMS)
    nodes = doc.get("lanes")
    result: dict[str, LaneRule] = {}
    for name, rule in lanes.items():
        body = nodes.get(name) if isinstance(nodes, YMap) else None
        node = body.get("platforms") if isinstance(body, YMap) else None
        requirement = parse_requirement(node, f"lanes.{name}.platforms", error, default)
        result[name] = replace(rule, platforms=requirement)
    return result
