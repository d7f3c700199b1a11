"""Registry numbers are checked while the flags are parsed: exit 2, one line, no connection."""

from __future__ import annotations

import pytest

from digestgate.cli.options import store_options_from
from digestgate.errors import UsageError
from tests.conftest import run_cli

#: Nothing listens here: an exit 3 would mean the value got past parsing to a connection.
UNREACHABLE = "127.0.0.1:9/app:v1"
BAD = ["nan", "NaN", "inf", "-inf", "1e308", "0", "-1", "abc", ""]


def _assert_usage_error(args: list[str], env: dict[str, str | None] | None, flag: str) -> None:
    result = run_cli(*args, env=env)
    assert result.code == 2, result.stderr
    assert f"Invalid value for '{flag}'" in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


@pytest.mark.parametrize("value", BAD)
def test_bad_registry_timeout_is_exit_2(value: str) -> None:
    _assert_usage_error(
        ["resolve", UNREACHABLE, "--registry-timeout", value], None, "--registry-timeout"
    )


@pytest.mark.parametrize("value", ["nan", "inf", "1e308", "0", "-5", "604801"])
def test_bad_deadline_is_exit_2(value: str) -> None:
    _assert_usage_error(["resolve", UNREACHABLE, f"--deadline={value}"], None, "--deadline")


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "1e308"])
def test_bad_min_rate_is_exit_2(value: str) -> None:
    args = ["resolve", UNREACHABLE, f"--registry-min-rate={value}"]
    _assert_usage_error(args, None, "--registry-min-rate")


@pytest.mark.parametrize(
    ("variable", "flag"),
    [
        ("DIGESTGATE_REGISTRY_TIMEOUT", "--registry-timeout"),
        ("DIGESTGATE_DEADLINE", "--deadline"),
        ("DIGESTGATE_REGISTRY_MIN_RATE", "--registry-min-rate"),
    ],
)
def test_bad_values_from_the_environment_are_exit_2(variable: str, flag: str) -> None:
    _assert_usage_error(["resolve", UNREACHABLE], {variable: "inf"}, flag)


@pytest.mark.parametrize(
    "command",
    [
        ["gate", "--release", "r.json", "--policy", "p.yaml", "--evidence", "dir:e"],
        ["verify", "x/app@sha256:" + "a" * 64, "--policy", "p.yaml", "--evidence", "dir:e"],
        ["drift", "promoted.json"],
        ["capture", "backend", UNREACHABLE, "--release", "r.json"],
    ],
    ids=lambda c: c[0],
)
def test_every_registry_command_checks_the_numbers(command: list[str]) -> None:
    _assert_usage_error([*command, "--registry-timeout", "nan"], None, "--registry-timeout")


def test_good_values_reach_the_store_options() -> None:
    options = store_options_from(
        registry_timeout=2.5, registry_min_rate=0.0, deadline=600.0, environ={}
    )
    assert (options.timeout, options.min_rate, options.deadline) == (2.5, 0.0, 600.0)
    defaults = store_options_from(environ={})
    assert (defaults.timeout, defaults.min_rate, defaults.deadline) == (30.0, 16384.0, None)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"registry_timeout": float("nan")},
        {"registry_timeout": 1e308},
        {"deadline": float("inf")},
        {"registry_min_rate": -1.0},
    ],
)
def test_the_api_checks_the_same_ranges(kwargs: dict[str, float]) -> None:
    with pytest.raises(UsageError) as caught:
        store_options_from(environ={}, **kwargs)  # type: ignore[arg-type]
    assert "must be a number" in caught.value.message


def test_help_names_the_variables_and_defaults() -> None:
    text = run_cli("resolve", "--help").stdout
    for fragment in ("DIGESTGATE_DEADLINE", "DIGESTGATE_REGISTRY_MIN_RATE", "default 30"):
        assert fragment in text
