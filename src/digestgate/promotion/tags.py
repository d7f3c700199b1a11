"""Tags of a promotion: the planned change of each, immutability, and moving them one by one.

Step 5 of :mod:`digestgate.promotion.promote`: each tag's previous digest is recorded (in the
:class:`~digestgate.promotion.tagplan.TagPlan`, when one is given) before the tag moves; the tag is
then set by compare-and-set: only if it still points where it pointed when this promotion
planned its tags (before copying). A tag that changed since then was written by another
writer during this promotion (a concurrent promotion, most likely): an immutable one is
refused (``promotion.tag-immutable``), a mutable one is left to that writer and the run
fails (exit 3) rather than overwrite a tag it did not see. An OCI layout does the check and
the write in one step under its lock; a registry without conditional writes is checked
immediately before the write, which leaves a short window. So after the last write every
tag this run set is read again, and any that another writer moved meanwhile fails the run
(exit 3): a run that exits 0 has left every tag where its record says. A failure lists the tags
already moved, re-reading the one in flight (the registry may have applied a write whose
answer was lost).
"""

from __future__ import annotations

import copy as _copy
import re
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from typing import Final, Literal

from digestgate.concurrency import run_all
from digestgate.digest import Digest
from digestgate.errors import (
    BlockedError,
    ConcurrentChangeError,
    DigestgateError,
    InternalError,
    UsageError,
)
from digestgate.oci.store import ImageStore
from digestgate.promotion.model import ArtifactState, Info, TagChange
from digestgate.promotion.tagplan import TagPlan
from digestgate.reference import validate_tag

#: Finding id of a refused move of an immutable tag (design section 4).
TAG_IMMUTABLE: Final = "promotion.tag-immutable"


def _matches(pattern: str, tag: str) -> bool:
    # Tags contain no '/', so the policy's '*' (one segment) is any run here (design 4).
    regex = "".join(
        ".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.replace("**", "*")
    )
    return re.fullmatch(regex, tag, re.DOTALL) is not None


def is_immutable(tag: str, globs: Sequence[str]) -> bool:
    """True when ``tag`` matches one of the policy's ``promotion.immutableTags`` globs."""
    return any(_matches(pattern, tag) for pattern in globs)


def apply_tags(
    artifacts: Sequence[ArtifactState],
    planned: Sequence[TagChange],
    immutable: Sequence[str],
    info: Info,
    plan: TagPlan | None,
    *,
    concurrency: int = 1,
) -> tuple[TagChange, ...]:
    """Set every tag, one at a time, then confirm them all (``concurrency`` reads at once).

    Writes stay one at a time: a registry has no conditional writes, and a run with one
    write in flight is what the read before each write and the confirmation after the last
    one can vouch for. A failure says which tags moved.
    """
    by_name = {a.name: a for a in artifacts}
    if plan is not None:
        plan.record_all(
            [
                (c.location.name, c.tag, by_name[c.artifact].descriptor.digest, c.current)
                for c in planned
                if c.action != "keep"
            ]
        )
    applied: list[TagChange] = []
    for change in planned:
        artifact = by_name[change.artifact]
        store = artifact.target
        assert store is not None
        try:
            applied.append(_apply_tag(store, artifact, change, immutable, plan))
        except DigestgateError as exc:
            raise _tagging_failed(exc, change, applied, _probe(store, change)) from exc
        info(f"{artifact.name}: tag {change.tag} -> {artifact.descriptor.digest.short}")
    _confirm(by_name, applied, concurrency)
    return tuple(applied)


def _apply_tag(
    store: ImageStore,
    artifact: ArtifactState,
    planned: TagChange,
    immutable: Sequence[str],
    plan: TagPlan | None,
) -> TagChange:
    """Set one tag; the change returned names the digest the tag held before the promotion.

    The tag plan already holds the digest the tag held when this promotion planned its tags
    (:func:`apply_tags` writes it before any tag moves), so on a registry the read here is
    the compare of compare-and-set and nothing but the write follows it. A tag found
    elsewhere is refused before it moves; its plan entry then speaks for a move that did not
    happen, which a re-run reads correctly (it keeps a tag's previous digest only for a tag
    already at the wanted digest).
    """
    tag = planned.tag
    wanted = artifact.descriptor
    repository = artifact.target_location.name
    compare_and_set = getattr(store, "set_tag_if", None)
    before = store.get_tag(tag)
    change = replace(planned, current=before.digest if before is not None else None)
    if change.action == "keep":
        if plan is None:
            return change
        # Already there: maybe moved by an earlier run whose tagging failed, or this is a
        # re-run after success (the plan then holds the previous digest of the record).
        return replace(change, current=plan.previous(repository, tag, wanted.digest, wanted.digest))
    if change.current != planned.current:
        _changed_during(change, planned, immutable)
    if change.action == "move" and is_immutable(tag, immutable):
        raise InternalError(f"immutable tag {tag} reached the write (the plan refuses it)")
    try:
        if callable(compare_and_set):  # an OCI layout: the check and the write in one step
            compare_and_set(tag, wanted, change.current)
        else:
            store.set_tag(tag, wanted)
    except ConcurrentChangeError as exc:  # another writer got between our read and our write
        now = replace(change, current=exc.current if isinstance(exc.current, Digest) else None)
        _changed_during(now, planned, immutable)
    return change


def _changed_during(now: TagChange, planned: TagChange, immutable: Sequence[str]) -> None:
    """Refuse a tag that another writer changed while this promotion ran."""
    where = f"{now.location.name}:{now.tag}"
    if is_immutable(now.tag, immutable) and now.current is not None:
        raise BlockedError(
            f"{TAG_IMMUTABLE}: tag {now.tag} of {now.location.name} appeared at "
            f"{now.current} during the promotion and is immutable",
            hint="someone else wrote the tag meanwhile; promote under a new tag",
        )
    raise ConcurrentChangeError(
        f"tag {where} changed during this promotion (it pointed to "
        f"{planned.current or 'nothing'}, now {now.current or 'nothing'}): another writer "
        "is promoting to the same target; this run leaves the tag to it",
        hint="let the other promotion finish, check `digestgate drift`, and run the promotion "
        "you want last again",
        current=now.current,
    )


def _confirm(
    by_name: dict[str, ArtifactState], applied: Sequence[TagChange], concurrency: int
) -> None:
    """Read every tag this run set again: a concurrent promotion may have moved one after
    our write (registries have no conditional writes), and a record must not lie."""

    def read(change: TagChange) -> str | None:
        store = by_name[change.artifact].target
        assert store is not None
        now = store.get_tag(change.tag)
        if now is None or now.digest != change.wanted:
            return f"{change.location.name}:{change.tag} now {now.digest if now else 'absent'}"
        return None

    moved = [m for m in run_all([partial(read, c) for c in applied], workers=concurrency) if m]
    if moved:
        raise ConcurrentChangeError(
            "another writer moved tag(s) this promotion had just set: "
            + ", ".join(moved)
            + "; the promotion record was not written",
            hint="two promotions ran against the same target at once; let one finish, check "
            "`digestgate drift`, and run the promotion you want last again",
        )


Probe = Literal["moved", "not moved", "unknown"]


def _probe(store: ImageStore, change: TagChange) -> Probe:
    """Where the tag in flight ended up: a write whose answer was lost may have landed."""
    try:
        now = store.get_tag(change.tag)
    except DigestgateError:
        return "unknown"
    if now is not None and now.digest == change.wanted and change.current != change.wanted:
        return "moved"
    return "not moved"


def _tagging_failed(
    exc: DigestgateError, failed: TagChange, applied: Sequence[TagChange], probe: Probe
) -> DigestgateError:
    moved = [c for c in applied if c.action != "keep"]
    listing = ", ".join(
        f"{c.location.name}:{c.tag} (was {c.current.short if c.current else 'absent'})"
        for c in moved
    )
    in_flight = f"{failed.location.name}:{failed.tag}"
    if probe == "moved":
        flight = f"; {in_flight} did move (the write landed, its answer was lost)"
    elif probe == "unknown":
        flight = f"; {in_flight} may have moved (it could not be read again)"
    else:
        flight = ""
    annotated = _copy.copy(exc)
    annotated.message = (
        f"tagging stopped at {in_flight}: {exc.message}; "
        + (f"tags already moved: {listing}" if moved else "no tag was moved before it")
        + flight
    )
    annotated.hint = (exc.hint + "; " if exc.hint else "") + (
        "every image is copied: run the same promote again to apply the remaining tags"
    )
    return annotated


#: The tag-schema name of a referrers index (distribution-spec 1.1), and cosign's tags.
_REFERRERS_TAG: Final = re.compile(r"(sha256|sha512)-[0-9a-f]{32,128}.*")


def validate_promotion_tag(tag: str) -> str:
    """A valid tag that is not of the referrers-index form (``sha256-<hex>``).

    Registries without the Referrers API list an image's evidence under such a tag; moving
    it would hide that evidence.
    """
    validate_tag(tag)
    if _REFERRERS_TAG.fullmatch(tag):
        raise UsageError(
            f"tag {tag!r} has the form of a referrers index tag (sha256-<hex>)",
            hint="registries without the Referrers API keep evidence under such tags; "
            "choose another tag",
        )
    return tag
