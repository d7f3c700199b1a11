"""The shared readers refuse numbers, nesting and aliases they cannot hold, with a reason.

Python refuses to convert an integer of more than 4300 digits (a ValueError that used to end
in exit 4), reads ``1e999`` as infinity, and recurses once per nesting level in PyYAML's
composer. Each case here is a clear one-line error instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from digestgate.errors import ConfigError, ExitCode
from digestgate.jsonutil import MAX_INT_DIGITS, JSONFormatError, loads_strict
from digestgate.oci.registry.credentials import lookup_credentials
from digestgate.oci.registry.transport import header_int
from digestgate.yamlsource import YamlError, load_yaml, to_plain

# -- JSON -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("9" * 5000, "integer of 5000 digits (at most 100)"),
        ('{"size": -' + "1" * 4301 + "}", "integer of 4301 digits (at most 100)"),
        ("[" + "1" * (MAX_INT_DIGITS + 1) + "]", f"integer of {MAX_INT_DIGITS + 1} digits"),
        ('{"a": 1e999}', "number 1e999 is too large"),
        ("-1E400", "number -1E400 is too large"),
        ("1" * 400 + ".5", "number 11111111111111111111... is too large"),
        ("NaN", "non-standard constant NaN"),
    ],
)
def test_json_numbers_python_cannot_hold_are_refused(text: str, reason: str) -> None:
    with pytest.raises(JSONFormatError) as caught:
        loads_strict(text.encode())
    assert reason in str(caught.value)
    assert "\n" not in str(caught.value)


def test_json_numbers_within_the_limits_are_exact() -> None:
    big = "9" * MAX_INT_DIGITS
    assert loads_strict(f'{{"n": {big}, "f": 1.5e300, "m": -0.0}}') == {
        "n": int(big),
        "f": 1.5e300,
        "m": -0.0,
    }


# -- YAML -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("a: " + "9" * 5000, "p.yaml:1:4: integer of 5000 digits (at most 100)"),
        ("a: 0x" + "f" * 5000, "p.yaml:1:4: integer of 5000 digits"),
        ("a: -" + "1" * 101, "p.yaml:1:4: integer of 101 digits"),
        ("a: 1.0e+999", "p.yaml:1:4: number 1.0e+999 is not finite or too large"),
        ("a: .inf", "p.yaml:1:4: number .inf is not finite"),
        ("a: -.Inf", "p.yaml:1:4: number -.Inf is not finite"),
        ("a: .NaN", "p.yaml:1:4: number .NaN is not finite"),
    ],
)
def test_yaml_numbers_python_cannot_hold_are_refused(text: str, reason: str) -> None:
    with pytest.raises(YamlError) as caught:
        load_yaml(text, source="p.yaml")
    assert caught.value.message.startswith(reason)
    assert caught.value.exit_code == ExitCode.USAGE
    assert caught.value.hint == "quote the value if it is text"


def test_quoted_numbers_stay_text() -> None:
    text = f"a: '{'9' * 5000}'\nb: \".inf\"\nc: !!str 1.0e999\n"
    assert to_plain(load_yaml(text, source="p.yaml")) == {
        "a": "9" * 5000,
        "b": ".inf",
        "c": "1.0e999",
    }


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("a: &a [*a]\n", (1, 4)),
        ("a: &m {k: [x, *m]}\n", (1, 4)),
        ("&root [1, *root]\n", (1, 1)),
        ("? &k [*k]\n: v\n", (1, 3)),
    ],
)
def test_alias_cycles_are_refused_with_their_position(text: str, position: tuple[int, int]) -> None:
    with pytest.raises(YamlError) as caught:
        load_yaml(text, source="p.yaml")
    assert caught.value.reason == "an alias refers to a node that contains it"
    assert (caught.value.line, caught.value.column) == position


def test_repeated_aliases_that_are_no_cycle_still_load() -> None:
    doc = load_yaml("base: &b {x: 1}\none: *b\ntwo: [*b, *b]\n", source="p.yaml")
    assert to_plain(doc) == {"base": {"x": 1}, "one": {"x": 1}, "two": [{"x": 1}, {"x": 1}]}


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * 64 + "]" * 64,  # the mapping plus 64 sequences: 65 levels
        "a: " + "[" * 1000 + "]" * 1000,  # past the composer's recursion limit
        "".join(f"{'  ' * i}k{i}:\n" for i in range(400)),  # block style
    ],
)
def test_yaml_nesting_is_capped(text: str) -> None:
    with pytest.raises(YamlError) as caught:
        load_yaml(text, source="p.yaml")
    assert caught.value.reason == "nested deeper than 64 levels"
    assert caught.value.hint == "flatten the document"


def test_yaml_nesting_at_the_limit_loads() -> None:
    doc = load_yaml("[" * 64 + "]" * 64, source="p.yaml")
    depth, node = 0, to_plain(doc)
    while isinstance(node, list):
        depth += 1
        node = node[0] if node else None
    assert depth == 64


# -- other readers of numbers -------------------------------------------------------------------


def test_docker_config_with_hostile_json_is_a_config_error(tmp_path: Path) -> None:
    for body, reason in [
        ('{"auths": {"reg.example": {"n": ' + "9" * 5000 + "}}}", "integer of 5000 digits"),
        ("[" * 100_000 + "]" * 100_000, "nested deeper than 64 levels"),
        ('{"auths": {}, "auths": {}}', "duplicate key 'auths'"),
        ("\ufeff{}", "byte order mark"),
    ]:
        (tmp_path / "config.json").write_text(body)
        with pytest.raises(ConfigError) as caught:
            lookup_credentials("reg.example", docker_config=str(tmp_path), environ={})
        assert reason in caught.value.message
        assert caught.value.message.startswith(f"Docker config {tmp_path}/config.json")


def test_docker_config_size_is_capped(tmp_path: Path) -> None:
    doc = {"auths": {}, "padding": "x" * (4 * 1024 * 1024)}
    (tmp_path / "config.json").write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="is larger than 4194304 bytes"):
        lookup_credentials("reg.example", docker_config=str(tmp_path), environ={})


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1024", 1024), ("9" * 18, int("9" * 18)), ("9" * 5000, 10**18), ("-1", None), ("", None)],
)
def test_header_integers_never_reach_the_digit_limit(value: str, expected: int | None) -> None:
    assert header_int(value) == expected
