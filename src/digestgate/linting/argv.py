"""Words of a simple command: wrappers dropped, options told from operands, scripts named.

Helpers every command classifier shares; pure, like the rest of classification (the words
come from :mod:`digestgate.linting.shell`).
"""

from __future__ import annotations

import re
from typing import Final

_WRAPPERS: Final = frozenset({"sudo", "env", "time", "nice", "nohup", "command", "exec", "stdbuf"})
#: Commands that run another command after their own options (``poetry -C dir run pytest``):
#: each with its options that take a value.
# fmt: off
_RUNNERS: Final[dict[str, frozenset[str]]] = {
    "poetry": frozenset({"-C", "--directory", "-P", "--project"}),
    "pipenv": frozenset({"--python"}),
    "uv": frozenset(
        {
            "--directory", "--project", "--python", "-p", "--with", "--with-requirements",
            "--with-editable", "--extra", "--group", "--only-group", "--package",
            "--env-file", "--index", "--index-url", "--cache-dir",
        }
    ),
    "pdm": frozenset({"-p", "--project"}),
    "hatch": frozenset({"-e", "--env"}),
    "rye": frozenset(),
    "bundle": frozenset({"--gemfile"}),
    "npx": frozenset({"-p", "--package"}),
    "pnpx": frozenset(),
    "bunx": frozenset(),
    "xvfb-run": frozenset(
        {"-s", "--server-args", "-n", "--server-num", "-e", "--error-file", "-f",
         "--auth-file", "-p", "--xauth-protocol", "-w", "--wait"}
    ),
    "conda": frozenset({"-n", "--name", "-p", "--prefix", "--cwd"}),
    "mamba": frozenset({"-n", "--name", "-p", "--prefix", "--cwd"}),
    "micromamba": frozenset({"-n", "--name", "-p", "--prefix", "--cwd"}),
    "cross-env": frozenset(),
}
# fmt: on
#: Runners whose ``run`` names a project script: ``hatch run test:all``, ``pdm run test``.
_SCRIPT_RUNNERS: Final = frozenset({"hatch", "pdm", "rye"})
_SCRIPT_SUFFIXES: Final = (".sh", ".bash", ".ksh", ".zsh")


def basename(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def normalize(argv: tuple[str, ...]) -> tuple[str, ...]:
    """Drop wrappers that only change how a command runs (sudo, env, timeout, uv run...)."""
    words = list(argv)
    changed = True
    while words and changed:
        changed = False
        head = basename(words[0])
        if head in _WRAPPERS:
            words.pop(0)
            while words and (words[0].startswith("-") or re.fullmatch(r"\w+=.*", words[0])):
                option = words.pop(0)
                if head == "sudo" and option in ("-u", "-g", "-C") and words:
                    words.pop(0)
            changed = True
        elif head == "timeout":
            words.pop(0)
            while words and words[0].startswith("-"):
                words.pop(0)
            if words:
                words.pop(0)  # the duration
            changed = True
        elif head in _RUNNERS:
            values = _RUNNERS[head]
            rest = after_globals(words[1:], values)
            if rest[:1] in (["run"], ["exec"]):
                rest = after_globals(rest[1:], values)
            if head in _SCRIPT_RUNNERS and rest and is_test_script_name(rest[0]):
                return (head, "run", *rest)  # a project script, not a program
            while rest and re.fullmatch(r"\w+=.*", rest[0]):
                rest.pop(0)  # cross-env VAR=value
            words = rest
            changed = True
        elif head in ("yarn", "pnpm") and len(words) > 1 and words[1] in ("exec", "dlx"):
            del words[:2]
            changed = True
    return tuple(words)


def is_test_script_name(word: str) -> bool:
    """A project script named like a test (``test``, ``test:unit``, ``ci:test``)."""
    return bool(re.fullmatch(r"(?:[\w.-]+:)?test[\w:.-]*", word))


def positionals(args: list[str], value_options: frozenset[str] = frozenset()) -> list[str]:
    out: list[str] = []
    skip = False
    for word in args:
        if skip:
            skip = False
            continue
        if word.startswith("-") and word != "-":
            if word in value_options:
                skip = True
            continue
        out.append(word)
    return out


def after_globals(args: list[str], value_options: frozenset[str]) -> list[str]:
    """``args`` with leading global options (and their values) removed."""
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in value_options else 1
    return args[i:]


def asks_help(args: list[str]) -> bool:
    return any(a in ("--help", "-h", "help") for a in args)


def script_ref(argv: tuple[str, ...]) -> str | None:
    """The repository script a command runs, if it names one by relative path.

    ``./ci/build.sh``, ``ci/build.sh``, ``bash ci/build.sh``, ``source ./env.sh``: the path
    as written. Absolute paths, variables and bare command names are not repository scripts.
    """
    words = normalize(argv)
    if not words:
        return None
    head = basename(words[0])
    if head in _SHELLS:
        if any(w.startswith("-") and "c" in w[1:] and not w.startswith("--") for w in words):
            return None
        rest = [w for w in words[1:] if not w.startswith("-")]
        candidate = rest[0] if rest else ""
    else:
        candidate = words[0]
        if not (candidate.startswith("./") or candidate.endswith(_SCRIPT_SUFFIXES)):
            return None
    if not candidate or candidate.startswith(("/", "~", "$")) or "${{" in candidate:
        return None
    return candidate


_SHELLS: Final = frozenset({"bash", "sh", "zsh", "dash", "ksh", "source", "."})
