"""Every `digestgate` command shown in the README names a real subcommand and real flags."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click

from digestgate.cli.main import cli

README = Path(__file__).resolve().parents[2] / "README.md"


def _commands() -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for command in block.replace("\\\n", " ").splitlines():
            command = command.split("#", 1)[0].strip()
            if command.startswith("digestgate "):
                found.append(shlex.split(command.replace("…", "x"))[1:])
    return found


def _resolve(words: list[str]) -> tuple[click.Command, list[str]]:
    ctx = click.Context(cli)
    command: click.Command = cli
    rest = list(words)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        sub = command.get_command(ctx, rest[0])
        assert sub is not None, f"unknown subcommand {rest[0]!r}"
        command, rest = sub, rest[1:]
    return command, rest


def test_readme_shows_commands() -> None:
    assert len(_commands()) >= 9


def test_readme_commands_use_real_flags() -> None:
    for words in _commands():
        command, rest = _resolve(words)
        known = {opt for param in command.params for opt in getattr(param, "opts", [])}
        for word in rest:
            if word.startswith("--"):
                assert word.split("=", 1)[0] in known, f"{shlex.join(words)}: no {word}"
