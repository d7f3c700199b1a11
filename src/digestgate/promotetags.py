"""Tags of a promotion: the planned change of each, immutability, and moving them one by one.

Step 5 of :mod:`digestgate.promote`: each tag's previous digest is recorded (in the
:class:`~digestgate.tagplan.TagPlan`, when one is given) before the tag moves, immutability
is checked again, the tag is set and re-read; a failure lists the tags already moved.
"""

from __future__ import annotations

import copy as _copy
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

from digestgate.digest import Digest
from digestgate.errors import BlockedError, DigestgateError, IntegrityError, UsageError
from digestgate.oci.store import ImageStore
from digestgate.reference import Location, validate_tag
from digestgate.tagplan import TagPlan

if TYPE_CHECKING:
    from digestgate.promote import Info, _Artifact

#: Finding id of a refused move of an immutable tag (design section 4).
TAG_IMMUTABLE: Final = "promotion.tag-immutable"


@dataclass(frozen=True, slots=True)
class TagChange:
    """One tag at the target: where it points now (None: absent) and where it will point."""

    artifact: str
    location: Location
    tag: str
    current: Digest | None
    wanted: Digest

    @property
    def action(self) -> str:
        """``create``, ``move`` or ``keep`` (already right: a no-op)."""
        if self.current is None:
            return "create"
        return "keep" if self.current == self.wanted else "move"


def _matches(pattern: str, tag: str) -> bool:
    # Tags contain no '/', so the policy's '*' (one segment) is any run here (design 4).
    regex = "".join(
        ".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.replace("**", "*")
    )
    return re.fullmatch(regex, tag, re.DOTALL) is not None


def is_immutable(tag: str, globs: Sequence[str]) -> bool:
    """True when ``tag`` matches one of the policy's ``promotion.immutableTags`` globs."""
    return any(_matches(pattern, tag) for pattern in globs)


def _apply_tags(
    artifacts: Sequence[_Artifact],
    planned: Sequence[TagChange],
    immutable: Sequence[str],
    info: Info,
    plan: TagPlan | None,
) -> tuple[TagChange, ...]:
    """Set every tag (re-reading before and after); a failure lists what already moved."""
    by_name = {a.name: a for a in artifacts}
    applied: list[TagChange] = []
    for change in planned:
        artifact = by_name[change.artifact]
        store = artifact.target
        assert store is not None
        try:
            applied.append(_apply_tag(store, artifact, change.tag, immutable, plan))
        except DigestgateError as exc:
            raise _tagging_failed(exc, change, applied) from exc
        info(f"{artifact.name}: tag {change.tag} -> {artifact.descriptor.digest.short}")
    return tuple(applied)


def _apply_tag(
    store: ImageStore,
    artifact: _Artifact,
    tag: str,
    immutable: Sequence[str],
    plan: TagPlan | None,
) -> TagChange:
    """Set one tag; the change returned names the digest the tag held before the promotion."""
    wanted = artifact.descriptor
    before = store.get_tag(tag)
    repository = artifact.target_location.name
    change = TagChange(
        artifact.name,
        artifact.target_location,
        tag,
        before.digest if before is not None else None,
        wanted.digest,
    )
    if change.action == "keep":
        if plan is None:
            return change
        # Already there: maybe moved by an earlier run whose tagging failed.
        return replace(change, current=plan.previous(repository, tag, wanted.digest, wanted.digest))
    if change.action == "move" and is_immutable(tag, immutable):
        raise BlockedError(
            f"{TAG_IMMUTABLE}: tag {tag} of {artifact.target_location.name} appeared at "
            f"{change.current} during the promotion and is immutable",
            hint="someone else wrote the tag meanwhile; promote under a new tag",
        )
    if plan is not None:
        plan.record(repository, tag, wanted.digest, change.current)
    store.set_tag(tag, wanted)
    after = store.get_tag(tag)
    if after is None or after.digest != wanted.digest:
        raise IntegrityError(
            f"tag {tag} of {artifact.target_location.name} changed under us: it points to "
            f"{after.digest if after else 'nothing'} right after being set to {wanted.digest}",
            hint="another writer moved the tag at the same time; check who, then run again",
        )
    return change


def _tagging_failed(
    exc: DigestgateError, failed: TagChange, applied: Sequence[TagChange]
) -> DigestgateError:
    moved = [c for c in applied if c.action != "keep"]
    listing = ", ".join(
        f"{c.location.name}:{c.tag} (was {c.current.short if c.current else 'absent'})"
        for c in moved
    )
    annotated = _copy.copy(exc)
    annotated.message = (
        f"tagging stopped at {failed.location.name}:{failed.tag}: {exc.message}; "
        + (f"tags already moved: {listing}" if moved else "no tag was moved")
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
