"""The repository's lint configuration (``.digestgate/lint.yaml``): extra patterns and names.

Pure: built from an already loaded YAML node. Unknown keys, wrong types and invalid
regular expressions are configuration errors (exit 2), never silently ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from digestgate.errors import ConfigError
from digestgate.yamlsource import YMap, YNode, YScalar, YSeq

DEFAULT_PATH: Final = ".digestgate/lint.yaml"

_PATTERN_KEYS: Final = ("build-commands", "validation-commands", "promotion-commands")
_NAME_KEYS: Final = ("harmless-actions", "lanes", "release-jobs")


@dataclass(frozen=True)
class LintConfig:
    """Extensions of the built-in classification; empty by default."""

    build_commands: tuple[re.Pattern[str], ...] = ()
    validation_commands: tuple[re.Pattern[str], ...] = ()
    promotion_commands: tuple[re.Pattern[str], ...] = ()
    harmless_actions: tuple[str, ...] = ()
    lanes: tuple[str, ...] = ()
    release_jobs: tuple[str, ...] = field(default=())


def parse_config(node: YNode | None, source: str) -> LintConfig:
    """Build a :class:`LintConfig` from the YAML node of a config file."""
    if node is None:
        return LintConfig()
    if not isinstance(node, YMap):
        raise ConfigError(
            f"{source}: the lint configuration must be a mapping",
            hint="see docs/lint.md for the keys",
        )
    values: dict[str, tuple[str, ...]] = {}
    for key, value in node.items():
        if key == "version":
            if not (isinstance(value, YScalar) and value.value == 1):
                raise ConfigError(f"{source}: 'version' must be 1", hint="write 'version: 1'")
            continue
        if key not in _PATTERN_KEYS + _NAME_KEYS:
            raise ConfigError(
                f"{source}:{value.pos.line}: unknown key {key[:60]!r}",
                hint="known keys: version, " + ", ".join(_PATTERN_KEYS + _NAME_KEYS),
            )
        values[key] = _strings(value, f"{source}:{value.pos.line}: {key}")
    return LintConfig(
        build_commands=_patterns(values.get("build-commands", ()), source),
        validation_commands=_patterns(values.get("validation-commands", ()), source),
        promotion_commands=_patterns(values.get("promotion-commands", ()), source),
        harmless_actions=tuple(v.lower() for v in values.get("harmless-actions", ())),
        lanes=values.get("lanes", ()),
        release_jobs=values.get("release-jobs", ()),
    )


def _strings(node: YNode, where: str) -> tuple[str, ...]:
    if not isinstance(node, YSeq):
        raise ConfigError(f"{where} must be a list of strings", hint="write a YAML list")
    out: list[str] = []
    for item in node.items:
        if not isinstance(item, YScalar) or not item.text.strip():
            raise ConfigError(f"{where} must be a list of strings", hint="write a YAML list")
        out.append(item.text.strip())
    return tuple(out)


def _patterns(texts: tuple[str, ...], source: str) -> tuple[re.Pattern[str], ...]:
    compiled: list[re.Pattern[str]] = []
    for text in texts:
        try:
            compiled.append(re.compile(text))
        except re.error as exc:
            raise ConfigError(
                f"{source}: invalid regular expression {text[:60]!r}: {exc}",
                hint="patterns are Python regular expressions matched against each command",
            ) from None
    return tuple(compiled)
