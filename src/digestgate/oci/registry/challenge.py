"""Parse ``WWW-Authenticate`` challenges (RFC 9110 section 11.6.1, RFC 6750 section 3).

Registries send one or several challenges, in several headers or comma-joined in one, with
quoted values that may contain commas (``scope="repository:a:pull,push"``). The parser is
total: any input yields a (possibly empty) list, never an exception.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_WS: Final = " \t"


@dataclass(frozen=True)
class Challenge:
    """One challenge: the scheme (lowercase) and its parameters (lowercase names)."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        """The parameter ``name`` (case-insensitive), if present."""
        return self.params.get(name.lower())


def _skip(text: str, i: int, chars: str) -> int:
    while i < len(text) and text[i] in chars:
        i += 1
    return i


def _quoted(text: str, i: int) -> tuple[str, int]:
    """Read a quoted-string starting at the opening quote; an unterminated one runs to the end."""
    out: list[str] = []
    i += 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    return "".join(out), i


def _value(text: str, i: int) -> tuple[str, int]:
    i = _skip(text, i, _WS)
    if i < len(text) and text[i] == '"':
        return _quoted(text, i)
    start = i
    while i < len(text) and text[i] not in ", \t":
        i += 1
    return text[start:i], i


def parse_challenges(headers: Iterable[str]) -> list[Challenge]:
    """All challenges found in the given ``WWW-Authenticate`` header values, in order."""
    found: list[tuple[str, dict[str, str]]] = []
    for text in headers:
        current: dict[str, str] | None = None
        i = 0
        while i < len(text):
            i = _skip(text, i, _WS + ",")
            match = _TOKEN.match(text, i)
            if match is None:
                i += 1  # a stray character: skip it rather than give up on the header
                continue
            name = match.group()
            j = _skip(text, match.end(), _WS)
            if j < len(text) and text[j] == "=":
                value, i = _value(text, j + 1)
                # Parameters before any scheme, and token68 padding, carry nothing usable.
                if current is not None and value:
                    current.setdefault(name.lower(), value)
                continue
            current = {}
            found.append((name.lower(), current))
            i = j
    return [Challenge(scheme, params) for scheme, params in found]


def quote(value: str) -> str:
    """``value`` as an RFC 9110 quoted-string (for tests and for building headers)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
