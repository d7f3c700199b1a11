"""Append step outputs to ``$GITHUB_OUTPUT`` (also used by Gitea and Forgejo runners).

Format (GitHub workflow commands, "Setting an output parameter", specs 9.1): one
``name=value`` line per output. A value that contains a newline needs the heredoc form
``name<<DELIM`` with a delimiter that never occurs as a line of the value; by default such
values are refused, since every output digestgate writes is a single line and a newline in
one would mean something injected a second output.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from digestgate.errors import StorageError, UsageError

#: Output names: letters, digits, ``_``, ``-`` and ``.``, not starting with ``-`` or ``.``.
_NAME_RE: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def format_outputs(outputs: Mapping[str, str], *, multiline: bool = False) -> str:
    """The text to append for these outputs, in the order given."""
    lines: list[str] = []
    for name, value in outputs.items():
        if not _NAME_RE.fullmatch(name):
            raise UsageError(
                f"invalid output name {name[:80]!r}",
                hint="output names are letters, digits, '_', '-' and '.'",
            )
        if "\n" not in value and "\r" not in value:
            lines.append(f"{name}={value}\n")
            continue
        if not multiline:
            raise UsageError(
                f"output {name!r} would span several lines; refused",
                hint="an output value must be one line",
            )
        delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
        value_lines = value.replace("\r\n", "\n").split("\n")
        assert delimiter not in value_lines  # 128 random bits
        lines.append(f"{name}<<{delimiter}\n{chr(10).join(value_lines)}\n{delimiter}\n")
    return "".join(lines)


def output_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """The ``$GITHUB_OUTPUT`` file, or None outside a runner step."""
    value = (os.environ if environ is None else environ).get("GITHUB_OUTPUT", "")
    return Path(value) if value else None


def append_outputs(
    outputs: Mapping[str, str],
    *,
    environ: Mapping[str, str] | None = None,
    multiline: bool = False,
) -> Path | None:
    """Append ``outputs`` to ``$GITHUB_OUTPUT`` when set; return the file written, if any.

    Everything is validated before the file is touched, then written in one append.
    """
    path = output_path(environ)
    if path is None:
        return None
    append_runner_file(path, format_outputs(outputs, multiline=multiline), "GITHUB_OUTPUT")
    return path


def append_runner_file(path: Path, text: str, variable: str) -> None:
    """Append ``text`` to a file the runner named in ``variable`` (one write, UTF-8, LF)."""
    try:
        with path.open("a", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    except OSError as exc:
        raise StorageError(
            f"cannot append to ${variable} ({path}): {exc.strerror or exc}",
            hint=f"the runner provides this file; run the step on a runner or unset {variable}",
        ) from exc
