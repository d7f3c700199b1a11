"""Staged rollouts in ``policy.yaml``: this policy's ``stage``, the stage it ``requires``
first, and ``enforcement`` (pure parsing, called by :mod:`digestgate.policy.load`).

::

    stage: production                       # names this policy's stage in promotion records
    requires: {stage: staging, minSoak: 1h} # a gate-signed promotion to staging, 1h old
    enforcement: enforce                    # or warn: gate reports, exits 0, signs FAILED

A promotion record counts only when a key of ``requires.signers`` signed it (default: the
policy's ``gate.signers``). Those keys belong to the gate role of the earlier stage: a key
that signs provenance or lane results cannot be one (exit 2). Defaults and finding ids are
in docs/policy.md; the record is in docs/promotion.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Final, Literal, Protocol, TypeVar

from digestgate.digest import Digest
from digestgate.errors import ConfigError
from digestgate.yamlsource import YMap, YNode

T = TypeVar("T")

STAGE_NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")

Enforcement = Literal["enforce", "warn"]
ENFORCEMENTS: Final[tuple[Enforcement, ...]] = ("enforce", "warn")


@dataclass(frozen=True, slots=True)
class StageRequirement:
    """A stage the release must have been promoted to first, and for how long at least."""

    stage: str
    min_soak: timedelta = timedelta(0)
    signers: tuple[str, ...] = ()
    """Key names whose promotion records count (``requires.signers``, else ``gate.signers``)."""
    policies: tuple[Digest, ...] = ()
    """``requires.policies``: the earlier stage's policy digests a record must name (empty:
    any policy whose promote job holds a ``signers`` key)."""


@dataclass(frozen=True, slots=True)
class StageRule:
    """This policy's stage (written into promotion records) and the stage it requires."""

    name: str | None = None
    requires: StageRequirement | None = None


class PolicyReader(Protocol):
    """The strict-reading primitives of the policy loader (file:line:col errors)."""

    key_nodes: dict[str, YNode]

    def error(self, node: YNode | None, what: str, hint: str) -> ConfigError: ...

    def mapping(
        self, node: YNode | None, where: str, allowed: tuple[str, ...], required: tuple[str, ...]
    ) -> YMap: ...

    def text(self, node: YNode | None, where: str) -> str: ...

    def duration(self, node: YNode | None, where: str, default: timedelta) -> timedelta: ...

    def items(
        self, node: YNode | None, where: str, convert: Callable[[YNode, str], T], *, empty: bool
    ) -> tuple[T, ...]: ...

    def deny_digest(self, node: YNode, where: str) -> Digest: ...

    def signers(
        self, node: YNode | None, where: str, keys: Mapping[str, object]
    ) -> tuple[str, ...]: ...


class _Signed(Protocol):
    @property
    def signers(self) -> tuple[str, ...]: ...


class _Key(Protocol):
    @property
    def keyid(self) -> str: ...


def read_stages(
    reader: PolicyReader,
    doc: YMap,
    keys: Mapping[str, object],
    gate_signers: tuple[str, ...],
) -> tuple[StageRule, Enforcement]:
    """``stage``, ``requires`` and ``enforcement`` of the policy document ``doc``."""
    name = _stage_name(reader, doc.get("stage"), "stage")
    requires = None
    node = doc.get("requires")
    if node is not None:
        body = reader.mapping(
            node, "requires", ("stage", "minSoak", "signers", "policies"), ("stage",)
        )
        required = _stage_name(reader, body.get("stage"), "requires.stage")
        assert required is not None  # mapping() checked that it is present
        if required == name:
            raise reader.error(
                body.get("stage"),
                f"requires.stage {required!r} is this policy's own stage",
                "name the stage that comes before this one, e.g. staging before production",
            )
        signers = gate_signers
        if body.get("signers") is not None:
            signers = reader.signers(body.get("signers"), "requires.signers", keys)
        if not signers:
            raise reader.error(
                node,
                "requires needs signers: a promotion record counts only when one of them signed it",
                "add gate: {signers: [gate]}, or requires.signers naming the key the "
                "earlier stage's promote job signs with",
            )
        min_soak = reader.duration(body.get("minSoak"), "requires.minSoak", timedelta(0))
        policies = reader.items(
            body.get("policies"), "requires.policies", reader.deny_digest, empty=False
        )
        requires = StageRequirement(required, min_soak, signers, policies)
    return StageRule(name, requires), _enforcement(reader, doc.get("enforcement"))


def check_stage_signers(
    reader: PolicyReader,
    rule: StageRule,
    keys: Mapping[str, _Key],
    provenance: _Signed,
    lanes: Mapping[str, _Signed],
) -> None:
    """One key, one role: a key whose promotion records count must not also sign provenance
    or lane results (by name or by key material), or a build or tests job could sign the
    record that lets a release skip a stage."""
    if rule.requires is None:
        return
    others = {keys[n].keyid: n for n in provenance.signers}
    others.update({keys[n].keyid: n for lane in lanes.values() for n in lane.signers})
    for name in rule.requires.signers:
        other = others.get(keys[name].keyid)
        if other is not None:
            same = "" if other == name else f" (the same key material as {other!r})"
            raise reader.error(
                reader.key_nodes.get(name),
                f"key {name!r}{same} signs promotion records (requires.signers) and build or "
                "lane evidence",
                "promotion records are signed by a promote job's gate key: give it its own key",
            )


def _stage_name(reader: PolicyReader, node: YNode | None, where: str) -> str | None:
    if node is None:
        return None
    text = reader.text(node, where)
    if STAGE_NAME_RE.fullmatch(text) is None:
        raise reader.error(
            node,
            f"invalid {where} {text[:80]!r}",
            "use 1-64 of lowercase letters, digits, '.', '_' or '-' (e.g. staging)",
        )
    return text


def _enforcement(reader: PolicyReader, node: YNode | None) -> Enforcement:
    if node is None:
        return "enforce"
    text = reader.text(node, "enforcement")
    for value in ENFORCEMENTS:
        if text == value:
            return value
    raise reader.error(
        node,
        f"enforcement must be enforce or warn, not {text[:40]!r}",
        "write enforcement: enforce (the default) or enforcement: warn for a trial rollout",
    )
