"""Split shell text (``run:`` blocks, repository scripts) into simple commands.

Only what classification needs: line continuations, heredoc bodies skipped, comments
dropped, ``&&``/``||``/``;``/``|``/``&`` and ``$(...)``/backtick substitutions split into
separate commands, ``VAR=value`` prefixes and ``export`` kept as assignments, and
``bash -c "..."`` bodies parsed again. Quoted words stay single words, so
``echo "docker build"`` is an ``echo``. Actions expressions (``${{ ... }}``) are kept
intact as one word. Never raises on odd input.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from types import MappingProxyType
from typing import Final

from digestgate.linting.shellwords import restore, substitutions, tokenize

_EXPR: Final = re.compile(r"\$\{\{.*?\}\}")
_HEREDOC: Final = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")
_ASSIGN: Final = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.S)
_KEYWORDS: Final = frozenset(
    {"if", "then", "do", "else", "elif", "while", "until", "!", "{", "}", "fi", "done", "time"}
)
_DECLARE: Final = frozenset({"export", "local", "readonly", "declare", "typeset"})
_MAX_DEPTH: Final = 4
_POSITIONAL: Final = re.compile(r"\$\{?([1-9])\}?")
#: ``name() {``, ``name () {``, ``function name {``, ``function name() {`` (brace optional)
_FUNCTION: Final = re.compile(
    r"\s*(?:function\s+([A-Za-z_][\w:.-]*)\s*(?:\(\s*\))?|([A-Za-z_][\w:.-]*)\s*\(\s*\))"
    r"\s*(\{.*|)$",
    re.S,
)
_SHELLS: Final = frozenset({"bash", "sh", "zsh", "dash", "ksh"})
#: ssh options that take a value (the first operand after them is the host)
_SSH_VALUES: Final = frozenset(
    {"-B", "-b", "-c", "-D", "-E", "-e", "-F", "-I", "-i", "-J", "-L", "-l", "-m", "-O",
     "-o", "-p", "-Q", "-R", "-S", "-W", "-w"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Command:
    """One simple command: its words, the variables it assigns, and its 0-based line."""

    argv: tuple[str, ...]
    assigns: tuple[tuple[str, str], ...]
    line: int
    text: str
    remote: bool = False


def logical_lines(text: str) -> list[tuple[int, str]]:
    """``(first line index, text)`` per logical line: continuations joined, heredocs skipped."""
    return [(start, logical) for start, logical, _ in _logical(text)]


def _logical(text: str) -> list[tuple[int, str, list[tuple[int, str]]]]:
    """Logical lines with the heredoc bodies they open: ``(start, text, [(start, body)])``."""
    out: list[tuple[int, str, list[tuple[int, str]]]] = []
    pending: list[tuple[str, bool]] = []  # delimiters still to read, with <<- tab stripping
    body: list[str] = []
    body_start = 0
    buf = ""
    start: int | None = None
    for idx, raw in enumerate(text.split("\n")):
        if pending:
            delim, strip_tabs = pending[0]
            if (raw.lstrip("\t") if strip_tabs else raw).strip() == delim:
                out[-1][2].append((body_start, "\n".join(body)))
                pending.pop(0)
                body, body_start = [], idx + 1
            else:
                body.append(raw)
            continue
        if start is None:
            start = idx
        stripped = raw.rstrip()
        if stripped.endswith("\\") and not stripped.endswith("\\\\"):
            buf += stripped[:-1] + " "
            continue
        buf += raw
        out.append((start, buf, []))
        pending = _heredocs(buf)
        body, body_start = [], idx + 1
        buf = ""
        start = None
    if pending and body:  # an unterminated heredoc runs to the end of the text
        out[-1][2].append((body_start, "\n".join(body)))
    if start is not None and buf.strip():
        out.append((start, buf, []))
    return out


def _heredocs(line: str) -> list[tuple[str, bool]]:
    """The heredoc delimiters a line opens, in order, each with whether ``<<-`` strips tabs.

    ``<<`` inside quotes opens nothing; the delimiter itself may be quoted (``<< 'EOF'``).
    """
    found: list[tuple[str, bool]] = []
    if "<<" not in line:
        return found
    quote = ""
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif line.startswith("<<", i) and not line.startswith("<<<", i):
            match = _HEREDOC.match(line, i)
            if match:
                found.append((match.group(2), "<<-" in match.group(0)))
                i = match.end()
                continue
            i += 2
            continue
        i += 1
    return found


Lines = list[tuple[int, str, list[tuple[int, str]]]]


@dataclass(frozen=True)
class Parsed:
    """A shell text's commands in the order they run, and the functions it defines.

    ``commands`` are the top-level commands, each call of a function defined in the text
    followed by the commands of its body (a function that is never called runs nothing).
    ``functions`` maps each defined name to its body, for scripts that others ``source``.
    Parsed texts are cached, so both are immutable.
    """

    commands: tuple[Command, ...]
    functions: Mapping[str, tuple[Command, ...]]


def commands(text: str, *, remote: bool = False) -> list[Command]:
    """Every simple command that a shell text runs, in order; ``remote``: it runs over ssh."""
    return list(parse(text, remote=remote).commands)


@lru_cache(maxsize=2048)
def parse(text: str, *, remote: bool = False) -> Parsed:
    """The commands a shell text runs and the functions it defines (cached by text)."""
    return _parse(_logical(text), 0, remote, 0)


def _parse(lines: Lines, offset: int, remote: bool, depth: int) -> Parsed:
    top, defined = _split_functions(lines)
    bodies = {name: _run(body, offset, remote, depth) for name, body in defined.items()}
    out: list[Command] = []
    for command in _run(top, offset, remote, depth):
        out.append(command)
        expand(command, bodies, out, frozenset())
    return Parsed(tuple(out), MappingProxyType({n: tuple(b) for n, b in bodies.items()}))


def expand(
    command: Command, bodies: dict[str, list[Command]], out: list[Command], active: frozenset[str]
) -> None:
    """Append the body of the function ``command`` calls (and of the calls in it) to ``out``."""
    name = command.argv[0] if command.argv else ""
    if name not in bodies or name in active or len(active) >= _MAX_DEPTH:
        return
    for inner in bodies[name]:
        called = with_arguments(inner, command.argv[1:])
        out.append(called)
        expand(called, bodies, out, active | {name})


def with_arguments(command: Command, args: tuple[str, ...]) -> Command:
    """A function body command with ``$1``..``$9`` and ``"$@"`` replaced by the call's words."""

    def one(match: re.Match[str]) -> str:
        index = int(match.group(1)) - 1
        return args[index] if index < len(args) else match.group(0)

    argv: list[str] = []
    for word in command.argv:
        if word in ("$@", "$*", "${@}", "${*}"):
            argv.extend(args)
        else:
            argv.append(_POSITIONAL.sub(one, word))
    return replace(command, argv=tuple(argv))


def _split_functions(lines: Lines) -> tuple[Lines, dict[str, Lines]]:
    """Logical lines outside function definitions, and each function's body lines."""
    top: Lines = []
    defined: dict[str, Lines] = {}
    name: str | None = None
    depth = 0
    opened = False
    for line, logical, bodies in lines:
        if name is None:
            found = _FUNCTION.match(logical)
            if not found:
                top.append((line, logical, bodies))
                continue
            name, logical = found.group(1) or found.group(2), found.group(3)
            defined[name], depth, opened = [], 0, False
        text = logical
        if not opened and text.strip().startswith("{"):
            text, opened = text.strip()[1:], True
            depth = 1
        if not opened:
            continue
        depth += _braces(text)
        if depth <= 0:
            text = text.rstrip().rstrip(";").rstrip()
            text = text[: text.rfind("}")] if text.endswith("}") else text
            name = None
        if text.strip():
            defined[next(reversed(defined))].append((line, text, bodies))
    return top, defined


def _braces(text: str) -> int:
    """Opening minus closing brace words of a line (``{ ...; }`` groups), quotes skipped."""
    words = re.split(r"[\s;&|()]+", re.sub(r"'[^']*'|\"(?:[^\"\\]|\\.)*\"", "q", text))
    return words.count("{") - words.count("}")


def _run(lines: Lines, offset: int, remote: bool, depth: int) -> list[Command]:
    out: list[Command] = []
    for line, logical, bodies in lines:
        first = len(out)
        _split_line(logical, offset + line, out, depth, remote)
        if not bodies or depth >= _MAX_DEPTH:
            continue
        consumer = next((c for c in reversed(out[first:]) if _reads_script(c.argv)), None)
        if consumer is None:
            continue
        inner = remote or _ssh_command(consumer.argv) is not None
        for start, body in bodies:
            out += _parse(_logical(body), offset + start, inner, depth + 1).commands
    return out


def _split_line(logical: str, line: int, out: list[Command], depth: int, remote: bool) -> None:
    table: list[str] = []

    def protect(match: re.Match[str]) -> str:
        table.append(match.group(0))
        return f"DGXPR{len(table) - 1}X"

    protected = _EXPR.sub(protect, logical)
    outer, inner = substitutions(protected)
    for words in tokenize(outer):
        _emit(words, table, line, out, depth, remote)
    if depth < _MAX_DEPTH:
        for body in inner:
            _split_line(restore(body, table), line, out, depth + 1, remote)


def _emit(
    words: list[str], table: list[str], line: int, out: list[Command], depth: int, remote: bool
) -> None:
    argv = [restore(w, table).replace("DGSUB", "$(...)") for w in words]
    while argv and argv[0] in _KEYWORDS:
        argv.pop(0)
    assigns: list[tuple[str, str]] = []
    while argv:
        match = _ASSIGN.fullmatch(argv[0])
        if not match:
            break
        assigns.append((match.group(1), match.group(2)))
        argv.pop(0)
    if argv and argv[0] in _DECLARE:
        for word in argv[1:]:
            match = _ASSIGN.fullmatch(word)
            if match:
                assigns.append((match.group(1), match.group(2)))
        argv = []
    if not argv and not assigns:
        return
    text = " ".join(argv) if argv else " ".join(f"{k}={v}" for k, v in assigns)
    out.append(Command(tuple(argv), tuple(assigns), line, text, remote))
    if depth >= _MAX_DEPTH:
        return
    script = _inline_script(argv)
    if script is not None:  # ``bash -c "..."``: the argument is a script
        _split_line(script, line, out, depth + 1, remote)
        return
    ssh = _ssh_command(argv)
    if ssh:  # ``ssh host "cmd ..."``: the words after the host run on the remote host
        _split_line(" ".join(ssh), line, out, depth + 1, True)


def _inline_script(argv: list[str]) -> str | None:
    """The script of ``bash -c SCRIPT`` (also behind other words: ``sudo sh -c``)."""
    for start, head in enumerate(argv):
        if basename(head) not in _SHELLS:
            continue
        for i in range(start + 1, len(argv) - 1):
            word = argv[i]
            if word.startswith("-") and "c" in word[1:] and not word.startswith("--"):
                return argv[i + 1]
        return None
    return None


def _ssh_command(argv: tuple[str, ...] | list[str]) -> list[str] | None:
    """The remote command words of an ``ssh`` invocation ([] when it reads stdin), or None."""
    words = list(argv)
    while words and basename(words[0]) in ("sudo", "sshpass", "timeout", "env"):
        head = basename(words.pop(0))
        while words and words[0].startswith("-"):
            option = words.pop(0)
            if head == "sshpass" and option in ("-p", "-f", "-d", "-P") and words:
                words.pop(0)
        if head == "timeout" and words:
            words.pop(0)
    if not words or basename(words[0]) != "ssh":
        return None
    rest = _positionals_after_options(words[1:], _SSH_VALUES)
    return rest[1:] if rest else None


def _positionals_after_options(args: list[str], values: frozenset[str]) -> list[str]:
    """The words from the first operand on (options, and values of ``values``, skipped)."""
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in values else 1
    return args[i:]


def _reads_script(argv: tuple[str, ...]) -> bool:
    """Whether a command runs the heredoc fed to it as a script (ssh, bash -s, sh)."""
    ssh = _ssh_command(argv)
    if ssh is not None:
        return not ssh or _reads_script(tuple(ssh))
    words = [w for w in argv if w not in ("sudo", "-E", "env")]
    if not words or basename(words[0]) not in _SHELLS:
        return False
    operands = [w for w in words[1:] if not w.startswith("-")]
    return not operands or "-s" in words


def basename(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def quote(argv: tuple[str, ...]) -> str:
    """A readable one-line rendering of a command for messages."""
    text = " ".join(shlex.quote(w) if w and not _EXPR.search(w) else w for w in argv)
    return text if len(text) <= 120 else text[:117] + "..."
