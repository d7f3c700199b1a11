"""Platforms of a multi-platform image: ``OS/ARCH[/VARIANT]`` names and child digests (pure).

An image index lists one runnable image per platform (image-spec image-index.md); a node
pulls the child whose ``platform`` matches its own, first match wins (specs 6.4). digestgate
records, for an index it captured, each child's platform and digest as read from the index
bytes it hashed (never a header), and the gate requires lanes to say which children they
ran. Attestation manifests that BuildKit lists in the index (``unknown/unknown``, annotation
``vnd.docker.reference.type: attestation-manifest``, specs 7.3) are not platforms and are
skipped. An image child without a ``platform`` is refused: runtimes treat it as matching
any platform, so no lane could say which platform it was validated for.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from digestgate.digest import Digest
from digestgate.errors import DigestgateError
from digestgate.oci import media
from digestgate.oci.manifest import Descriptor, ImageIndex

#: One part of a platform name: os, architecture or variant as the OCI values are written.
_PART: Final = r"[a-z0-9][a-z0-9._-]{0,31}"
PLATFORM_RE: Final = re.compile(rf"{_PART}/{_PART}(?:/{_PART})?")

#: More children than this in one index is refused (a release lists a handful).
MAX_PLATFORMS: Final = 64


class PlatformError(ValueError):
    """A platform name or list that is malformed (the caller names the file and field)."""


def parse_platform(text: object) -> str:
    """``text`` when it is ``OS/ARCH`` or ``OS/ARCH/VARIANT`` in lowercase, else raise."""
    if not isinstance(text, str) or not PLATFORM_RE.fullmatch(text):
        shown = text[:60] if isinstance(text, str) else type(text).__name__
        raise PlatformError(
            f"invalid platform {shown!r}: write OS/ARCH or OS/ARCH/VARIANT in lowercase "
            "(e.g. linux/amd64, linux/arm/v7)"
        )
    return text


@dataclass(frozen=True, slots=True, order=True)
class PlatformImage:
    """One child of an index: its platform name and its manifest digest."""

    platform: str
    digest: Digest

    def to_json(self) -> dict[str, str]:
        """JSON form, as written in ``release.json``."""
        return {"platform": self.platform, "digest": str(self.digest)}


def subject_name(artifact: str, platform: str) -> str:
    """The statement subject name of an artifact's child: ``backend@linux/arm64``."""
    return f"{artifact}@{platform}"


def is_attestation(entry: Descriptor) -> bool:
    """True for an attestation manifest listed in an index (not a runnable image).

    BuildKit lists them with platform ``unknown/unknown``, which no node pulls. Annotations
    (``vnd.docker.reference.type``) never decide: nodes choose children by platform, and a
    child without one matches any, so such a child is refused, not skipped.
    """
    platform = entry.platform
    return platform is not None and (platform.os, platform.architecture) == ("unknown", "unknown")


def _name(entry: Descriptor) -> str:
    assert entry.platform is not None
    text = f"{entry.platform.os}/{entry.platform.architecture}"
    return f"{text}/{entry.platform.variant}" if entry.platform.variant else text


def index_platforms(index: ImageIndex) -> tuple[PlatformImage, ...]:
    """The platforms an index offers, from its parsed bytes, in index order.

    A later entry for a platform already listed is never pulled (first match wins) and is
    skipped. Raises :class:`PlatformError` for an image child without a platform, a platform
    name digestgate cannot write, a nested index, or too many children.
    """
    found: dict[str, PlatformImage] = {}
    for entry in index.manifests:
        if is_attestation(entry):
            continue
        if entry.media_type not in media.IMAGE_MANIFESTS:
            raise PlatformError(
                f"index {index.digest.short} lists {entry.media_type[:80]!r} "
                f"({entry.digest.short}); only image manifests are supported as platforms"
            )
        if entry.platform is None:
            raise PlatformError(
                f"index {index.digest.short} lists image {entry.digest.short} without a "
                "platform; runtimes would pull it for any platform"
            )
        name = parse_platform(_name(entry))
        found.setdefault(name, PlatformImage(name, entry.digest))
        if len(found) > MAX_PLATFORMS:
            raise PlatformError(f"index {index.digest.short} lists over {MAX_PLATFORMS} platforms")
    return tuple(found.values())


def parse_platform_list(
    value: Any, where: str, fail: Callable[[str, str], Exception]
) -> tuple[PlatformImage, ...]:
    """Validate a ``platforms`` list from a release file; ``fail(where, reason)`` builds the
    error to raise. Duplicated platforms or digests and malformed entries are refused."""
    if not isinstance(value, list) or not value:
        raise fail(where, "must be a non-empty list of {platform, digest}")
    if len(value) > MAX_PLATFORMS:
        raise fail(where, f"lists more than {MAX_PLATFORMS} platforms")
    result: list[PlatformImage] = []
    for i, entry in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(entry, dict):
            raise fail(at, "must be an object with platform and digest")
        unknown = sorted(set(entry) - {"platform", "digest"})
        if unknown:
            raise fail(at, f"unknown field {str(unknown[0])[:60]!r}")
        try:
            platform = parse_platform(entry.get("platform"))
        except PlatformError as exc:
            raise fail(f"{at}.platform", str(exc)) from None
        text = entry.get("digest")
        try:
            if not isinstance(text, str):
                raise fail(f"{at}.digest", "must be a digest string")
            digest = Digest.parse(text)
        except DigestgateError as exc:
            raise fail(f"{at}.digest", exc.message) from None
        result.append(PlatformImage(platform, digest))
    _no_duplicates(result, where, fail)
    return tuple(result)


def _no_duplicates(
    items: Sequence[PlatformImage], where: str, fail: Callable[[str, str], Exception]
) -> None:
    platforms = [p.platform for p in items]
    digests = [p.digest for p in items]
    for name in platforms:
        if platforms.count(name) > 1:
            raise fail(where, f"lists platform {name!r} twice")
    for digest in digests:
        if digests.count(digest) > 1:
            raise fail(where, f"lists digest {digest.short} for two platforms")


def artifact_subject_names(names: frozenset[str] | set[str]) -> frozenset[str]:
    """The names that are artifacts, not children (``backend``, not ``backend@linux/arm64``).

    An artifact name never contains ``@`` (it matches ``[a-z0-9][a-z0-9._-]{0,63}``).
    """
    return frozenset(n for n in names if "@" not in n)
