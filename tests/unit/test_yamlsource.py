"""YAML with positions: core-schema scalars, duplicate keys, bombs, syntax errors."""

from __future__ import annotations

import contextlib
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digestgate.yamlsource import YamlError, YMap, YScalar, YSeq, load_yaml, to_plain


def test_positions_and_core_schema() -> None:
    doc = load_yaml("on:\n  push: {}\nyes: no\nn: 0x10\nq: '5'\nlist:\n  - a\n", source="w.yml")
    assert isinstance(doc, YMap)
    assert doc.keys() == ["on", "yes", "n", "q", "list"]
    assert to_plain(doc) == {"on": {"push": {}}, "yes": "no", "n": 16, "q": "5", "list": ["a"]}
    seq = doc.get("list")
    assert isinstance(seq, YSeq)
    item = seq.items[0]
    assert isinstance(item, YScalar)
    assert (item.pos.line, item.pos.column) == (7, 5)
    key = doc.key_node("q")
    assert key is not None
    assert str(key.pos) == "w.yml:5:1"


def test_duplicate_key_refused_with_position() -> None:
    with pytest.raises(YamlError) as info:
        load_yaml("a: 1\nb: 2\na: 3\n", source="p.yaml")
    assert (info.value.line, info.value.column) == (3, 1)
    assert "duplicate key 'a'" in info.value.message
    assert info.value.exit_code == 2


def test_syntax_error_position() -> None:
    with pytest.raises(YamlError) as info:
        load_yaml("a: [1, 2\nb: 3\n", source="bad.yml")
    assert (info.value.line, info.value.column) == (2, 2)
    assert info.value.message.startswith("bad.yml:2:2: invalid YAML")
    assert info.value.exit_code == 2
    assert info.value.hint


def test_alias_bomb_is_bounded() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    prev = "a"
    for name in "bcdefghij":
        bomb += f"{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, "
        bomb += f"*{prev}, *{prev}, *{prev}, *{prev}]\n"
        prev = name
    started = time.monotonic()
    with pytest.raises(YamlError, match="more than"):
        load_yaml(bomb, source="bomb.yml")
    assert time.monotonic() - started < 5


def test_size_cap_and_encoding() -> None:
    with pytest.raises(YamlError, match="larger than"):
        load_yaml(b"a: 1\n" * 10, source="big", max_bytes=20)
    with pytest.raises(YamlError, match="UTF-8"):
        load_yaml(b"a: \xff\n", source="enc")


def test_empty_document() -> None:
    assert load_yaml("", source="e") is None
    assert load_yaml("# only a comment\n", source="e") is None


@given(st.text(max_size=200))
def test_never_crashes(text: str) -> None:
    with contextlib.suppress(YamlError):
        load_yaml(text, source="fuzz")
