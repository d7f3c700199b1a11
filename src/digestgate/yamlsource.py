"""YAML documents as trees of nodes that remember their file, line and column.

Both the policy loader and the workflow linter need positions for their messages and must
not be fooled by YAML 1.1 surprises, so plain scalars are resolved with the YAML 1.2 core
schema (``on``/``yes``/``no`` stay strings: ``on:`` is a workflow's trigger key, not
``True``). Hostile input is bounded: a size cap, a node-count cap that also stops alias
("billion laughs") expansion, a nesting-depth cap, aliases that refer to a node containing
them (``&a [*a]``) refused, duplicate mapping keys refused, and numbers that Python cannot
hold faithfully (integers over :data:`MAX_INT_DIGITS` digits, floats that overflow to
infinity, ``.inf`` and ``.nan``) refused rather than turned into something else.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from digestgate.errors import ConfigError

MAX_BYTES: Final = 2 * 1024 * 1024
MAX_NODES: Final = 200_000
#: Deepest nesting of sequences and mappings (policies and workflows need about ten).
MAX_DEPTH: Final = 64
#: Longest integer accepted, in digits (as for JSON).
MAX_INT_DIGITS: Final = 100

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
    """YAML 1.2 core-schema resolution of a plain (unquoted) scalar.

    Raises ValueError (with a one-line reason) for a number Python cannot hold faithfully:
    an integer of more than :data:`MAX_INT_DIGITS` digits, or a float that is not finite.
    """
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if _INT_RE.fullmatch(text):
        digits = len(text.lstrip("+-")) - (2 if text.startswith(("0o", "0x")) else 0)
        if digits > MAX_INT_DIGITS:
            raise ValueError(f"integer of {digits} digits (at most {MAX_INT_DIGITS})")
        if text.startswith("0o"):
            return int(text[2:], 8)
        if text.startswith("0x"):
            return int(text[2:], 16)
        return int(text)
    if _FLOAT_RE.fullmatch(text):
        special = text.lower().endswith(("inf", "nan"))  # .inf, -.Inf, .NaN, ...
        value = math.nan if special else float(text)
        if not math.isfinite(value):
            shown = text if len(text) <= 20 else text[:20] + "..."
            raise ValueError(f"number {shown} is not finite or too large; quote it if it is text")
        return value
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
        # libyaml's parser when PyYAML has it (the same nodes and marks, several times
        # faster on a policy of hundreds of artifacts); the pure-Python one otherwise.
        node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if "nesting depth" in str(exc.problem):  # libyaml's own limit, far past ours
            raise _too_deep(source) from None
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
    except RecursionError:  # the pure-Python composer recurses once per nesting level
        raise _too_deep(source) from None
    if node is None:
        return None
    return _Converter(source).convert(node)


def _too_deep(source: str) -> YamlError:
    return YamlError(
        f"nested deeper than {MAX_DEPTH} levels",
        source=source,
        line=1,
        column=1,
        hint="flatten the document",
    )


def _position(node: Any, source: str) -> Position:
    mark = node.start_mark
    return Position(source, mark.line + 1, mark.column + 1)


class _Converter:
    """Turns composed nodes into Y* nodes, within the node budget and the depth limit."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.budget = MAX_NODES
        # Collection nodes being converted, outermost first: the depth, and the way to
        # see an alias that points back into a node containing it (``&a [*a]``).
        self.open: list[int] = []

    def error(self, message: str, pos: Position, hint: str) -> YamlError:
        return YamlError(message, source=self.source, line=pos.line, column=pos.column, hint=hint)

    def convert(self, node: Any) -> YNode:
        import yaml

        pos = _position(node, self.source)
        self.budget -= 1
        if self.budget < 0:
            raise self.error(
                f"document expands to more than {MAX_NODES} nodes",
                pos,
                "remove recursive or repeated aliases",
            )
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, pos)
        if id(node) in self.open:
            raise self.error(
                "an alias refers to a node that contains it",
                pos,
                "remove the recursive alias (&anchor ... *anchor inside itself)",
            )
        if len(self.open) >= MAX_DEPTH:
            raise self.error(f"nested deeper than {MAX_DEPTH} levels", pos, "flatten the document")
        self.open.append(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return YSeq(tuple(self.convert(item) for item in node.value), pos)
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, pos)
        finally:
            self.open.pop()
        raise self.error(  # pragma: no cover - compose yields only the three node kinds
            "unsupported YAML node", pos, "simplify the document"
        )

    def scalar(self, node: Any, pos: Position) -> YScalar:
        quoted = node.style is not None and node.style in ("'", '"', "|", ">")
        explicit = node.tag if node.tag.startswith("tag:yaml.org,2002:") else None
        text = str(node.value)
        if quoted or explicit == "tag:yaml.org,2002:str":
            return YScalar(text, text, True, pos)
        try:
            return YScalar(resolve_plain(text), text, False, pos)
        except ValueError as exc:
            raise self.error(str(exc), pos, "quote the value if it is text") from None

    def mapping(self, node: Any, pos: Position) -> YMap:
        entries: list[tuple[YScalar, YNode]] = []
        seen: dict[str, Position] = {}
        for key_node, value_node in node.value:
            key = self.convert(key_node)
            if not isinstance(key, YScalar):
                raise self.error("mapping keys must be plain scalars", key.pos, "use a simple key")
            if key.text in seen:
                first = seen[key.text]
                raise self.error(
                    f"duplicate key {key.text[:60]!r} (first at line {first.line})",
                    key.pos,
                    "remove one of the two entries",
                )
            seen[key.text] = key.pos
            entries.append((key, self.convert(value_node)))
        return YMap(tuple(entries), pos)


def to_plain(node: YNode | None) -> Any:
    """Plain Python data (dicts keyed by key text, lists, scalars) from a node tree."""
    if node is None:
        return None
    if isinstance(node, YScalar):
        return node.value
    if isinstance(node, YSeq):
        return [to_plain(item) for item in node.items]
    return {key: to_plain(value) for key, value in node.items()}
