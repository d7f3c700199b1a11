"""``platforms:`` in a policy: which platforms of a multi-platform image a lane must cover.

Per lane (``lanes.NAME.platforms``) or release-wide (top-level ``platforms``, the default of
every lane that says nothing):

* ``all`` (the default): every platform the index offers;
* ``any``: the lane covers the index as a whole; a result that names only the index counts
  for every platform (the behaviour for images without platforms);
* a list such as ``[linux/amd64, linux/arm64]``: exactly these, each of which the index must
  offer (``artifact.platform-mismatch`` otherwise).

Images that are not an index have no platforms and are unaffected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from digestgate.platforms import PlatformError, parse_platform
from digestgate.yamlsource import YNode, YScalar, YSeq

if TYPE_CHECKING:
    from digestgate.errors import ConfigError

PlatformMode = Literal["all", "any", "listed"]


@dataclass(frozen=True, slots=True)
class PlatformRequirement:
    """What a lane must cover of an index: ``all``, ``any`` or the ``listed`` platforms."""

    mode: PlatformMode
    listed: tuple[str, ...] = ()

    def __str__(self) -> str:
        return ", ".join(self.listed) if self.mode == "listed" else self.mode


ALL_PLATFORMS: Final = PlatformRequirement("all")
ANY_PLATFORM: Final = PlatformRequirement("any")

#: Builds the loader's ``file:line:col`` error for a node.
ErrorFactory = Callable[[YNode | None, str, str], "ConfigError"]

_HINT: Final = "write all, any, or a list such as [linux/amd64, linux/arm64]"


def parse_requirement(
    node: YNode | None, where: str, error: ErrorFactory, default: PlatformRequirement
) -> PlatformRequirement:
    """The requirement written at ``node`` (``default`` when absent)."""
    if node is None:
        return default
    if isinstance(node, YScalar):
        if node.value == "all":
            return ALL_PLATFORMS
        if node.value == "any":
            return ANY_PLATFORM
        raise error(node, f"{where} must be all, any or a list of platforms", _HINT)
    if not isinstance(node, YSeq) or not node.items:
        raise error(node, f"{where} must be all, any or a non-empty list of platforms", _HINT)
    listed: list[str] = []
    for item in node.items:
        value = item.value if isinstance(item, YScalar) else None
        try:
            platform = parse_platform(value)
        except PlatformError as exc:
            raise error(item, f"{where}: {exc}", _HINT) from None
        if platform in listed:
            raise error(item, f"{where} lists {platform} twice", "list each platform once")
        listed.append(platform)
    return PlatformRequirement("listed", tuple(listed))
