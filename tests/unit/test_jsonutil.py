"""jsonutil: the pretty writer is byte-for-byte ``json.dumps``, strict reads name repeats."""

from __future__ import annotations

import enum
import json
import random
from typing import Any

import pytest

from digestgate.jsonutil import JSONFormatError, dumps_pretty, loads_strict

TEXTS = ["", "a", "ü", "\u2028", "\x00", '"\\/', "\ud800", "😀", "line\nbreak", "tab\t"]


def _reference(value: Any) -> str:
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _value(rnd: random.Random, depth: int) -> Any:
    kind = rnd.randrange(12 if depth < 4 else 8)
    leaves: list[Any] = [
        rnd.choice(TEXTS) + str(rnd.random()),
        None,
        rnd.random() < 0.5,
        rnd.randrange(-(10**30), 10**30),
        rnd.choice([0.1, -0.0, 1e300, 5e-324, float("nan"), float("inf"), 3.0]),
        rnd.choice(TEXTS),
        rnd.choice(TEXTS) * 3,
        rnd.randrange(5),
    ]
    if kind < len(leaves):
        return leaves[kind]
    if kind in (8, 9):
        return [_value(rnd, depth + 1) for _ in range(rnd.randrange(4))]
    if kind == 10:
        return tuple(_value(rnd, depth + 1) for _ in range(rnd.randrange(3)))
    return {rnd.choice(TEXTS) + str(rnd.randrange(5)): _value(rnd, depth + 1) for _ in range(4)}


def test_pretty_json_is_exactly_what_json_dumps_writes() -> None:
    rnd = random.Random(20261205)
    for _ in range(3000):
        value = _value(rnd, 0)
        assert dumps_pretty(value) == _reference(value)


class _Level(enum.IntEnum):
    LOW = 1


class _Text(str):
    __slots__ = ()


@pytest.mark.parametrize(
    "value",
    [{1: "x"}, {True: 1}, {2.5: 1}, {"a": _Level.LOW}, [_Text("x"), (1, 2)], {"k": {}}, []],
)
def test_pretty_json_of_unusual_values_matches_json(value: Any) -> None:
    assert dumps_pretty(value) == _reference(value)


@pytest.mark.parametrize("value", [{"a": object()}, {"a": 1, 2: 3}])
def test_pretty_json_refuses_what_json_refuses(value: Any) -> None:
    with pytest.raises(TypeError):
        _reference(value)
    with pytest.raises(TypeError):
        dumps_pretty(value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('{"a":1,"a":2}', "a"),
        ('{"a":{"c":{"b":2,"b":3}}}', "b"),
        ('{"a":1,"b":2,"b":3,"a":4}', "b"),
    ],
)
def test_strict_json_names_the_first_repeated_key(text: str, key: str) -> None:
    with pytest.raises(JSONFormatError, match=f"duplicate key '{key}'"):
        loads_strict(text)
