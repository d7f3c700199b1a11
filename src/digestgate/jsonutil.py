"""Strict JSON reading for untrusted input, and canonical JSON writing for our own files.

Untrusted JSON (manifests, envelopes, release files, registry answers) is read with duplicate
keys refused (two parsers must never disagree on what a document says), NaN/Infinity refused,
invalid UTF-8 refused, and a nesting limit enforced without relying on recursion errors.
Numbers are bounded too: an integer longer than :data:`MAX_INT_DIGITS` digits (Python refuses
to convert one over 4300 digits, and conversion is quadratic below that) and a number too
large for a float (``1e999``, which Python would silently read as infinity) are refused.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

MAX_DEPTH: Final = 64
#: Longest integer accepted, in digits. 2**256 has 78; sizes and counts have at most 20.
MAX_INT_DIGITS: Final = 100


class JSONFormatError(ValueError):
    """The bytes are not acceptable JSON; the message says why in one line."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):  # some key came twice: name the first repeat
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JSONFormatError(f"duplicate key {key[:60]!r}")
            seen.add(key)
    return result


def _refuse_constant(name: str) -> Any:
    raise JSONFormatError(f"non-standard constant {name}")


def _parse_int(text: str) -> int:
    digits = len(text) - text.startswith("-")
    if digits > MAX_INT_DIGITS:
        raise JSONFormatError(f"integer of {digits} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONFormatError(f"number {text[:20]}{'...' if len(text) > 20 else ''} is too large")
    return value


def _check_depth(text: str, limit: int) -> None:
    depth = 0
    in_string = False
    escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                raise JSONFormatError(f"nested deeper than {limit} levels")
        elif ch in "]}":
            depth -= 1


#: One decoder for every strict read (``json.loads`` with hooks builds a new one per call).
_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_no_duplicates,
    parse_constant=_refuse_constant,
    parse_int=_parse_int,
    parse_float=_parse_float,
)


def loads_strict(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON strictly; raise :class:`JSONFormatError` with a one-line reason."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONFormatError(f"not valid UTF-8 at byte {exc.start}") from None
    else:
        text = data
    if text.startswith("\ufeff"):
        raise JSONFormatError("starts with a byte order mark")
    if text.count("[") + text.count("{") > max_depth:
        _check_depth(text, max_depth)
    try:
        return _DECODER.decode(text)
    except JSONFormatError:
        raise
    except json.JSONDecodeError as exc:
        raise JSONFormatError(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise JSONFormatError(f"nested deeper than {max_depth} levels") from None


def dumps_canonical(value: Any) -> bytes:
    """Deterministic compact JSON (sorted keys, UTF-8) for bytes we hash or sign."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def dumps_pretty(value: Any) -> str:
    """Deterministic indented JSON for files people read (release.json, reports).

    The text of ``json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False)`` and a
    newline. ``json`` writes indented JSON in pure Python, one generator step per token;
    plain data (dicts with string keys, lists, tuples, strings, ints, finite floats, bools,
    None) is written here in one pass instead, anything else by ``json`` itself.
    """
    out: list[str] = []
    try:
        _pretty(value, out, "\n")
    except _NotPlain:
        return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    out.append("\n")
    return "".join(out)


class _NotPlain(Exception):
    """A value :func:`_pretty` leaves to ``json.dumps``."""


_ENCODE_STR: Final = json.encoder.encode_basestring  # what json uses with ensure_ascii=False


def _pretty(value: Any, out: list[str], newline: str) -> None:
    """Append ``value`` as ``json.dumps(..., sort_keys=True, indent=2)`` writes it at the
    indentation that follows ``newline``."""
    if isinstance(value, str):
        out.append(_ENCODE_STR(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float) and math.isfinite(value):
        out.append(float.__repr__(value))
    elif isinstance(value, list | tuple):
        if not value:
            out.append("[]")
            return
        inner = newline + "  "
        separator = "[" + inner
        for item in value:
            out.append(separator)
            _pretty(item, out, inner)
            separator = "," + inner
        out.append(newline + "]")
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = newline + "  "
        separator = "{" + inner
        for key, item in sorted(value.items()):
            if not isinstance(key, str):
                raise _NotPlain
            out.append(separator + _ENCODE_STR(key) + ": ")
            _pretty(item, out, inner)
            separator = "," + inner
        out.append(newline + "}")
    else:
        raise _NotPlain
