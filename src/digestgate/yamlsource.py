"""YAML documents as trees of nodes that remember their file, line and column.

Both the policy loader and the workflow linter need positions for their messages and must
not be fooled by YAML 1.1 surprises, so plain scalars are resolved with the YAML 1.2 core
schema (``on``/``yes``/``no`` stay strings: ``on:`` is a workflow's trigger key, not
``True``). Hostile input is bounded: a size cap, a node-count cap that also stops alias
("billion laughs") expansion, and duplicate mapping keys are refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from digestgate.errors import ConfigError

MAX_BYTES: Final = 2 * 1024 * 1024
MAX_NODES: Final = 200_000

_INT_RE: Final = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT_RE: Final = re.compile(
    r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)"
)

Scalar = str | int | float | bool | None


class YamlError(ConfigError):
    """The YAML text cannot be read; carries the position of the problem."""

    def __init__(self, message: str, *, source: str, line: int, column: int, hint: str) -> None:
        super().__init__(f"{source}:{line}:{column}: {message}", hint=hint)
        self.source = source
        self.line = line
        self.column = column
        self.reason = message


@dataclass(frozen=True, slots=True)
class Position:
    """Where a node starts: 1-based line and column."""

    source: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.source}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class YScalar:
    """A scalar: its resolved value, the text as written, and whether it was quoted."""

    value: Scalar
    text: str
    quoted: bool
    pos: Position


@dataclass(frozen=True, slots=True)
class YSeq:
    """A sequence of nodes."""

    items: tuple[YNode, ...]
    pos: Position


@dataclass(frozen=True, slots=True)
class YMap:
    """A mapping; keys are scalars kept in document order (duplicates are refused)."""

    entries: tuple[tuple[YScalar, YNode], ...]
    pos: Position
    _index: dict[str, YNode] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for key, value in self.entries:
            self._index[key.text] = value

    def get(self, key: str) -> YNode | None:
        """The value at ``key`` as written (no type coercion of the key)."""
        return self._index.get(key)

    def key_node(self, key: str) -> YScalar | None:
        """The key scalar itself (for its position)."""
        for k, _ in self.entries:
            if k.text == key:
                return k
        return None

    def keys(self) -> list[str]:
        """Keys in document order."""
        return [k.text for k, _ in self.entries]

    def items(self) -> Iterator[tuple[str, YNode]]:
        """``(key text, value node)`` pairs in document order."""
        for k, v in self.entries:
            yield k.text, v


YNode = YScalar | YSeq | YMap


def resolve_plain(text: str) -> Scalar:
    """YAML 1.2 core-schema resolution of a plain (unquoted) scalar."""
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if _INT_RE.fullmatch(text):
        if text.startswith("0o"):
            return int(text[2:], 8)
        if text.startswith("0x"):
            return int(text[2:], 16)
        return int(text)
    if _FLOAT_RE.fullmatch(text):
        lowered = text.lower()
        if lowered.endswith("inf"):
            return float("-inf") if lowered.startswith("-") else float("inf")
        if lowered.endswith("nan"):
            return float("nan")
        return float(text)
    return text


def load_yaml(data: bytes | str, *, source: str, max_bytes: int = MAX_BYTES) -> YNode | None:
    """Parse one YAML document into positioned nodes; None for an empty document.

    Raises :class:`YamlError` (a ConfigError, exit 2) with the position of the problem.
    """
    import yaml  # heavy: imported only by commands that read YAML

    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise YamlError(
            f"file is larger than {max_bytes} bytes",
            source=source,
            line=1,
            column=1,
            hint="this does not look like a configuration file",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlError(
            f"not valid UTF-8 at byte {exc.start}",
            source=source,
            line=1,
            column=1,
            hint="save the file as UTF-8",
        ) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlError(
            f"invalid YAML: {exc.problem or exc.context or 'syntax error'}",
            source=source,
            line=(mark.line + 1) if mark else 1,
            column=(mark.column + 1) if mark else 1,
            hint="fix the YAML syntax at that position",
        ) from None
    except yaml.YAMLError as exc:
        raise YamlError(
            f"invalid YAML: {str(exc).splitlines()[0] if str(exc) else 'syntax error'}",
            source=source,
            line=1,
            column=1,
            hint="fix the YAML syntax",
        ) from None
    if node is None:
        return None
    budget = [MAX_NODES]
    return _convert(node, source, budget)


def _position(node: Any, source: str) -> Position:
    mark = node.start_mark
    return Position(source, mark.line + 1, mark.column + 1)


def _convert(node: Any, source: str, budget: list[int]) -> YNode:
    import yaml

    budget[0] -= 1
    if budget[0] < 0:
        pos = _position(node, source)
        raise YamlError(
            f"document expands to more than {MAX_NODES} nodes",
            source=source,
            line=pos.line,
            column=pos.column,
            hint="remove recursive or repeated aliases",
        )
    pos = _position(node, source)
    if isinstance(node, yaml.ScalarNode):
        quoted = node.style is not None and node.style in ("'", '"', "|", ">")
        explicit = node.tag if node.tag.startswith("tag:yaml.org,2002:") else None
        if quoted or explicit == "tag:yaml.org,2002:str":
            return YScalar(str(node.value), str(node.value), True, pos)
        return YScalar(resolve_plain(str(node.value)), str(node.value), False, pos)
    if isinstance(node, yaml.SequenceNode):
        return YSeq(tuple(_convert(item, source, budget) for item in node.value), pos)
    if isinstance(node, yaml.MappingNode):
        entries: list[tuple[YScalar, YNode]] = []
        seen: dict[str, Position] = {}
        for key_node, value_node in node.value:
            key = _convert(key_node, source, budget)
            if not isinstance(key, YScalar):
                raise YamlError(
                    "mapping keys must be plain scalars",
                    source=source,
                    line=key.pos.line,
                    column=key.pos.column,
                    hint="use a simple key",
                )
            if key.text in seen:
                first = seen[key.text]
                raise YamlError(
                    f"duplicate key {key.text[:60]!r} (first at line {first.line})",
                    source=source,
                    line=key.pos.line,
                    column=key.pos.column,
                    hint="remove one of the two entries",
                )
            seen[key.text] = key.pos
            entries.append((key, _convert(value_node, source, budget)))
        return YMap(tuple(entries), pos)
    raise YamlError(  # pragma: no cover - compose yields only the three node kinds
        "unsupported YAML node",
        source=source,
        line=pos.line,
        column=pos.column,
        hint="simplify the document",
    )


def to_plain(node: YNode | None) -> Any:
    """Plain Python data (dicts keyed by key text, lists, scalars) from a node tree."""
    if node is None:
        return None
    if isinstance(node, YScalar):
        return node.value
    if isinstance(node, YSeq):
        return [to_plain(item) for item in node.items]
    return {key: to_plain(value) for key, value in node.items()}
