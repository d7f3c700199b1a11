"""Key material given where a key *reference* belongs is refused and never echoed.

A private key pasted into ``--key``/``--vsa-key`` or into a ``DIGESTGATE_*_KEY`` variable
(plain or encrypted PEM, base64 of a PEM, a bare base64 DER body) used to come back inside
"private key file ... does not exist". Every signing command, with the key as an argument
and as its environment variable: exit 2, a hint, and no fragment of the key in the output.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from digestgate.evidence.keys import generate_keypair
from tests.conftest import CliResult, run_cli
from tests.integration.test_gate_adversarial import World

PASSWORD = "correct horse battery staple"

Command = Callable[[World, list[str]], list[str]]


def _attest_provenance(w: World, key: list[str]) -> list[str]:
    return ["attest", "provenance", "--release", str(w.release), *key,
            "--evidence", f"dir:{w.root / 'out'}"]  # fmt: skip


def _attest_test_result(w: World, key: list[str]) -> list[str]:
    return ["attest", "test-result", "--release", str(w.release), "--lane", "e2e",
            "--result", "PASSED", *key, "--evidence", f"dir:{w.root / 'out'}"]  # fmt: skip


def _gate(w: World, key: list[str]) -> list[str]:
    return ["gate", "--release", str(w.release), "--policy", str(w.policy),
            "--evidence", f"dir:{w.evidence}", "--offline", *key]  # fmt: skip


def _promote(w: World, key: list[str]) -> list[str]:
    return ["promote", "--release", str(w.release), "--policy", str(w.policy),
            "--evidence", f"dir:{w.evidence}", "--to", f"oci:{w.root / 'prod'}", *key]  # fmt: skip


COMMANDS: dict[str, tuple[Command, str, str]] = {
    "attest-provenance": (_attest_provenance, "--key", "DIGESTGATE_ATTEST_PROVENANCE_KEY"),
    "attest-test-result": (_attest_test_result, "--key", "DIGESTGATE_ATTEST_TEST_RESULT_KEY"),
    "gate": (_gate, "--vsa-key", "DIGESTGATE_GATE_VSA_KEY"),
    "promote": (_promote, "--vsa-key", "DIGESTGATE_PROMOTE_VSA_KEY"),
}


def _forms() -> dict[str, str]:
    plain = generate_keypair().private_pem.decode()
    encrypted = generate_keypair(password=PASSWORD.encode()).private_pem.decode()
    body = "".join(line for line in plain.splitlines() if not line.startswith("-----"))
    return {
        "pem": plain,
        "encrypted-pem": encrypted,
        "pem-with-escaped-newlines": plain.replace("\n", "\\n"),
        "file-prefixed-pem": "file:" + plain,
        "base64-of-pem": base64.b64encode(plain.encode()).decode(),
        "base64-der-body": body,
    }


FORMS = _forms()


def _fragments(secret: str) -> Iterator[str]:
    """Every 8-character piece of the key's base64 (a leak of any part shows up)."""
    text = secret.replace("\\n", "\n")
    lines = [line for line in text.splitlines() if line and not line.startswith("-----")]
    for line in lines or [text]:
        line = line.removeprefix("file:")
        for i in range(0, max(len(line) - 8, 1), 4):
            yield line[i : i + 8]


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def _assert_refused(result: CliResult, secret: str) -> None:
    output = result.stdout + result.stderr
    assert result.code == 2, output
    assert "digestgate: error: the key reference looks like key material" in result.stderr
    assert "(not shown)" in result.stderr
    assert "hint: put the key in a file and pass file:PATH" in result.stderr
    assert "BEGIN" not in output
    leaked = [piece for piece in _fragments(secret) if piece in output]
    assert not leaked, leaked


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_key_text_as_an_argument_is_refused_unseen(world: World, command: str, form: str) -> None:
    build, flag, _ = COMMANDS[command]
    secret = FORMS[form]
    _assert_refused(run_cli(*build(world, [flag, secret])), secret)


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_key_text_in_the_option_variable_is_refused_unseen(
    world: World, command: str, form: str
) -> None:
    build, _, variable = COMMANDS[command]
    secret = FORMS[form]
    env = {variable: secret, "DIGESTGATE_KEY_PASSWORD": PASSWORD}
    _assert_refused(run_cli(*build(world, []), env=env), secret)


def test_the_documented_env_form_still_signs(world: World) -> None:
    pem = world.keys["tests"].read_text()
    result = run_cli(
        *_attest_test_result(world, ["--key", "env:TESTS_KEY"]), env={"TESTS_KEY": pem}
    )
    assert result.code == 0, result.stderr
    assert "lane e2e: PASSED" in result.stderr


def test_a_wrong_password_is_not_echoed(world: World) -> None:
    encrypted = generate_keypair(password=PASSWORD.encode()).private_pem.decode()
    wrong = "hunter2-wrong-password"
    env = {"TESTS_KEY": encrypted, "DIGESTGATE_KEY_PASSWORD": wrong}
    result = run_cli(*_attest_test_result(world, ["--key", "env:TESTS_KEY"]), env=env)
    assert result.code == 2
    assert "cannot decrypt private key in env:TESTS_KEY" in result.stderr
    assert wrong not in result.stdout + result.stderr
    assert not [p for p in _fragments(encrypted) if p in result.stdout + result.stderr]


@pytest.mark.parametrize("split", ["whole-pem", "pem-without-end-line", "stray-body"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_key_split_into_arguments_is_not_quoted_back_by_click(
    world: World, command: str, split: str
) -> None:
    # An unquoted $KEY in a workflow: the shell turns the PEM's lines into arguments, and
    # click quotes unexpected arguments and unknown options back in its message.
    build, flag, _ = COMMANDS[command]
    secret = FORMS["pem"]
    words = secret.split()
    key = {
        "whole-pem": [flag, *words],
        "pem-without-end-line": [flag, *words[:-3]],
        "stray-body": [flag, "keys/gate.key", _body(secret)],
    }[split]
    result = run_cli(*build(world, key))
    output = result.stdout + result.stderr
    assert result.code == 2, output
    assert result.stderr.startswith(
        "digestgate: error: the command line holds what looks like key material; "
        "click's message is not shown\n  hint: pass keys as file:PATH or env:VAR"
    )
    assert not [piece for piece in _fragments(secret) if piece in output]


def test_other_usage_errors_keep_clicks_message(world: World) -> None:
    result = run_cli(*_gate(world, ["--vsa-key", "keys/gate.key", "stray"]))
    assert result.code == 2
    assert result.stderr.startswith("digestgate: error: Got unexpected extra argument (stray)")


def _body(pem: str) -> str:
    return "".join(line for line in pem.splitlines() if not line.startswith("-----"))
