"""The platform rule: a multi-platform image passes a lane only for the platforms it ran (pure).

A lane result names the index digest (``backend``) and, beside it, each child it actually
ran (``backend@linux/arm64`` with the child's digest; see docs/evidence.md). For an index,
a lane passes when

* the lane passes for the index as a whole (every result naming the index competes, newest
  decides, as for any artifact), and
* for every platform the lane requires (``lanes.NAME.platforms``: ``all`` by default, or a
  list), the newest applicable result naming that platform's child is PASSED.

A result that names only the index therefore counts for no platform unless the lane says
``platforms: any``, or the index offers a single platform (a node has no other child to
pull); a newer FAILED result naming a platform still blocks it. The platforms
come from the index bytes the gate fetched; offline, from the signed provenance that counted
for the artifact, which names each child the build recorded (``backend@linux/arm64``). The
release's record is unsigned: it is only compared with those, and any disagreement is
``artifact.platform-mismatch``, so editing ``release.json`` can never change what a lane
must cover.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from digestgate.evidence.model import Subject
from digestgate.oci import media
from digestgate.platforms import PlatformError, PlatformImage, parse_platform, subject_name
from digestgate.policy.model import LaneRule, Policy
from digestgate.rules import findings as ids
from digestgate.rules.decision import RegistryCheck
from digestgate.rules.findings import Finding, finding, shown
from digestgate.rules.requirements import Context, LaneStatement, Outcome, check_lane, collapse

Platforms = tuple[PlatformImage, ...]


def _names(platforms: Platforms) -> str:
    return ", ".join(p.platform for p in platforms) or "none"


def attested_platforms(name: str, provenance: Outcome | None) -> Platforms | str | None:
    """The children the provenance that counted for ``name`` names (``NAME@PLATFORM``).

    ``None`` when no provenance counted; a message when the counted statements disagree or
    name a child digestgate cannot read; else the children, sorted (empty: a single image).
    """
    if provenance is None or not provenance.passed:
        return None
    prefix = f"{name}@"
    seen: set[Platforms] = set()
    for evidence in provenance.used:
        children: list[PlatformImage] = []
        for subject in evidence.statement.subjects:
            if not subject.name.startswith(prefix):
                continue
            try:
                platform = parse_platform(subject.name[len(prefix) :])
            except PlatformError as exc:
                return f"the provenance for {name} names a child the gate cannot read: {exc}"
            children.append(PlatformImage(platform, subject.digest))
        if len({c.platform for c in children}) != len(children):
            return f"the provenance for {name} names one platform twice"
        seen.add(tuple(sorted(children)))
    if len(seen) > 1:
        return f"the provenance statements for {name} name different platforms"
    return seen.pop() if seen else None


def _offline(
    name: str, recorded: Platforms | None, media_type: str | None, attested: Platforms | str | None
) -> tuple[Platforms | None, str | None]:
    """Offline: the signed provenance decides; the release's record is only compared.

    A record without a media type (``promoted.json`` names none) is an index when it lists
    platforms; either way the platforms it lists must be the ones the provenance signs.
    """
    is_index = media_type in media.IMAGE_INDEXES or (media_type is None and bool(recorded))
    if isinstance(attested, str):
        return recorded, attested
    if attested is None:  # no provenance counted: that requirement blocks as well
        if recorded is None and is_index:
            return None, (
                f"{name} is an image index, but the release records none of its platforms "
                "and the gate is offline"
            )
        if recorded is not None:
            return recorded, (
                f"no signed provenance counted for {name}, so offline the gate cannot confirm "
                f"the platforms the release records ({_names(recorded)})"
            )
        return None, None
    if not attested:
        if recorded is None and not is_index:
            return None, None
        return recorded, (
            f"the release records {name} as an image index, but its signed provenance names "
            "no platform; offline the gate cannot tell which platforms it offers"
        )
    if not is_index:
        return attested, (
            f"the release records {name} as a single image ({shown(media_type or 'no type')}); "
            f"its signed provenance names platforms {_names(attested)}"
        )
    if recorded is None or sorted(recorded) != list(attested):
        return attested, (
            f"the release records {name} platforms {_described(recorded)}; its signed "
            f"provenance names {_described(attested)}"
        )
    return attested, None


def _described(platforms: Platforms | None) -> str:
    if not platforms:
        return "none"
    return ", ".join(f"{p.platform} ({p.digest.short})" for p in platforms)


def artifact_platforms(
    name: str,
    artifact: Any,
    check: RegistryCheck | None,
    offline: bool,
    provenance: Outcome | None,
) -> tuple[Platforms | None, list[Finding]]:
    """The platforms the gate holds ``name`` to, and findings when the record is unusable.

    Online, the index bytes decide; the release's record, and the children the signed
    provenance names (when it names any), must agree with them. Offline, the children the
    provenance that counted (``provenance``) names decide, and the release's record must
    agree with them: the record is unsigned and never trusted alone.
    """
    recorded: Platforms | None = getattr(artifact, "platforms", None)
    media_type: str | None = getattr(artifact, "media_type", None)
    attested = attested_platforms(name, provenance)

    def mismatch(message: str) -> list[Finding]:
        mismatch_id = ids.ARTIFACT_PLATFORM_MISMATCH
        return [finding(mismatch_id, message, artifact=name, requirement="artifact")]

    if offline:
        platforms, problem = _offline(name, recorded, media_type, attested)
        return platforms, mismatch(problem) if problem else []
    if check is None or check.status != "ok":
        return recorded, []
    if check.platform_problem:
        return None, mismatch(check.platform_problem)
    served = check.platforms
    found: list[Finding] = []
    if isinstance(attested, str):
        found = mismatch(attested)
    elif attested and sorted(served or ()) != list(attested):
        found = mismatch(
            f"the signed provenance for {name} names platforms {_described(attested)}; the "
            f"registry serves {_described(tuple(sorted(served))) if served else 'a single image'}"
        )
    if served is None:
        if recorded is not None:
            found.extend(mismatch(f"the release records platforms for {name}, a single image"))
        return None, found
    if recorded is not None and sorted(recorded) != sorted(served):
        found.extend(
            mismatch(
                f"the release records {name} platforms {_names(recorded)}; the index offers "
                f"{_names(served)}"
            )
        )
    return served, found


def required_platforms(lane: LaneRule, platforms: Platforms) -> tuple[Platforms, list[str]]:
    """The children a lane must cover, and the listed platforms the index lacks."""
    if lane.platforms.mode != "listed":
        return platforms, []
    by_name = {p.platform: p for p in platforms}
    wanted = tuple(by_name[p] for p in lane.platforms.listed if p in by_name)
    return wanted, [p for p in lane.platforms.listed if p not in by_name]


def validated_platforms(policy: Policy, platforms: Platforms | None) -> Platforms:
    """The children every lane of ``policy`` requires: the ones a gate VSA names beside the
    index (PASSED only when each was covered; a child outside this set never verifies)."""
    if not platforms:
        return ()
    keep = set(platforms)
    for lane in policy.lanes.values():
        keep &= set(required_platforms(lane, platforms)[0])
    return tuple(p for p in platforms if p in keep)


def _covers(statement: LaneStatement, subject: Subject) -> bool:
    return subject in statement.evidence.statement.subjects


def check_platform_lane(
    ctx: Context,
    lane: LaneRule,
    name: str,
    platforms: Platforms | None,
    statements: Sequence[LaneStatement],
    provenance: Outcome,
    future: Sequence[LaneStatement] = (),
) -> Outcome:
    """One lane for one artifact, per platform when the artifact is an index."""
    whole = check_lane(ctx, lane, name, statements, provenance, future)
    if platforms is None or lane.platforms.mode == "any":
        return whole
    requirement = f"lane:{lane.name}"
    wanted, absent = required_platforms(lane, platforms)
    found: list[Finding] = [
        finding(
            ids.ARTIFACT_PLATFORM_MISMATCH,
            f"lanes.{lane.name}.platforms requires {platform}; {name} offers {_names(platforms)}",
            artifact=name,
            requirement=requirement,
        )
        for platform in absent
    ]
    used = list(whole.used)
    for child in wanted:
        subject = Subject(subject_name(name, child.platform), child.digest)
        # An index offering one platform leaves a node no choice: the index is that child.
        single = len(platforms) == 1
        mine = [st for st in statements if single or _covers(st, subject)]
        if not mine:
            message = (
                f"no signed {lane.name} result names {name} for {child.platform} "
                f"({child.digest.short}); a result naming only the index counts for no platform"
            )
            found.append(
                finding(ids.LANE_PLATFORM_MISSING, message, artifact=name, requirement=requirement)
            )
            continue
        ahead = [st for st in future if single or _covers(st, subject)]
        outcome = check_lane(ctx, lane, name, mine, provenance, ahead)
        used.extend(outcome.used)
        found.extend(
            finding(f.id, f"{child.platform}: {f.message}", artifact=name, requirement=requirement)
            for f in outcome.findings
        )
    if not whole.passed:  # after the per-platform findings, which name the platform
        found.extend(whole.findings)
    if found:
        pairs = ((f.id, f.message) for f in found)
        merged = collapse(pairs, artifact=name, requirement=requirement)
        return Outcome(False, merged[0].message, merged)
    reason = f"{whole.reason}; platforms {_names(wanted)}"
    return Outcome(True, reason, used=tuple(used), revisions=whole.revisions, runs=whole.runs)
