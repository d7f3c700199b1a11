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
from dataclasses import dataclass
from typing import Final

_EXPR: Final = re.compile(r"\$\{\{.*?\}\}")
_MARK: Final = re.compile(r"DGXPR(\d+)X")
_HEREDOC: Final = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")
_ASSIGN: Final = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.S)
_SEPARATORS: Final = frozenset({";", "&&", "||", "|", "&", "|&", ";;", "(", ")", "((", "))"})
_REDIRECT: Final = re.compile(r"^[0-9]*[<>]+&?$|^&>>?$|^>&$")
_KEYWORDS: Final = frozenset(
    {"if", "then", "do", "else", "elif", "while", "until", "!", "{", "}", "fi", "done", "time"}
)
_DECLARE: Final = frozenset({"export", "local", "readonly", "declare", "typeset"})
_MAX_DEPTH: Final = 4
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


def commands(text: str, *, remote: bool = False) -> list[Command]:
    """Every simple command of a shell text, in order; ``remote``: it runs over ssh."""
    result: list[Command] = []
    _commands(text, 0, remote, result, 0)
    return result


def _commands(text: str, offset: int, remote: bool, out: list[Command], depth: int) -> None:
    for line, logical, bodies in _logical(text):
        first = len(out)
        _split_line(logical, offset + line, out, depth, remote)
        if not bodies or depth >= _MAX_DEPTH:
            continue
        consumer = next((c for c in reversed(out[first:]) if _reads_script(c.argv)), None)
        if consumer is None:
            continue
        inner = remote or _ssh_command(consumer.argv) is not None
        for start, body in bodies:
            _commands(body, offset + start, inner, out, depth + 1)


def _split_line(logical: str, line: int, out: list[Command], depth: int, remote: bool) -> None:
    table: list[str] = []

    def protect(match: re.Match[str]) -> str:
        table.append(match.group(0))
        return f"DGXPR{len(table) - 1}X"

    protected = _EXPR.sub(protect, logical)
    outer, inner = _substitutions(protected)
    for words in _tokenize(outer):
        _emit(words, table, line, out, depth, remote)
    if depth < _MAX_DEPTH:
        for body in inner:
            _split_line(_restore(body, table), line, out, depth + 1, remote)


def _restore(text: str, table: list[str]) -> str:
    return _MARK.sub(lambda m: table[int(m.group(1))] if int(m.group(1)) < len(table) else "", text)


def _substitutions(text: str) -> tuple[str, list[str]]:
    """Cut ``$(...)`` and backtick bodies out of ``text`` (outside single quotes)."""
    outer: list[str] = []
    inner: list[str] = []
    i, n = 0, len(text)
    in_single = False
    while i < n:
        ch = text[i]
        if ch == "'" and not in_single:
            end = text.find("'", i + 1)
            if end < 0:
                outer.append(text[i:])
                break
            outer.append(text[i : end + 1])
            i = end + 1
            continue
        if text.startswith("$(", i) and not text.startswith("$((", i):
            depth, j = 1, i + 2
            while j < n and depth:
                depth += {"(": 1, ")": -1}.get(text[j], 0)
                j += 1
            inner.append(text[i + 2 : j - 1] if depth == 0 else text[i + 2 :])
            outer.append("DGSUB")
            i = j
            continue
        if ch == "`":
            end = text.find("`", i + 1)
            inner.append(text[i + 1 : end] if end >= 0 else text[i + 1 :])
            outer.append("DGSUB")
            i = end + 1 if end >= 0 else n
            continue
        outer.append(ch)
        i += 1
    return "".join(outer), inner


def _drop_fd_numbers(text: str) -> str:
    """``text`` without the file-descriptor numbers of redirections (``2>&1``, ``1>out``).

    Outside quotes only: a run of digits that starts a word and is followed by ``<`` or
    ``>`` names a descriptor, not an argument.
    """
    out: list[str] = []
    quote = ""
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if quote:
            if ch == "\\" and quote == '"' and i + 1 < n:
                out.append(text[i : i + 2])
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch.isdigit() and (i == 0 or text[i - 1] in " \t;&|("):
            j = i
            while j < n and text[j].isdigit():
                j += 1
            if j < n and text[j] in "<>":
                i = j
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def _tokenize(text: str) -> list[list[str]]:
    """Words of each simple command in ``text`` (quotes removed, comments dropped)."""
    text = _drop_fd_numbers(text)
    try:
        lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|()<>")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: fall back to plain words
        tokens = re.findall(r"&&|\|\||[;|&()]|[^\s;|&()]+", text.split(" #")[0])
    groups: list[list[str]] = [[]]
    skip_next = False
    for token in tokens:
        if skip_next:
            skip_next = False
            continue
        if token in _SEPARATORS:
            groups.append([])
        elif _REDIRECT.match(token):
            skip_next = True
        else:
            groups[-1].append(token)
    return [g for g in groups if g]


def _emit(
    words: list[str], table: list[str], line: int, out: list[Command], depth: int, remote: bool
) -> None:
    argv = [_restore(w, table).replace("DGSUB", "$(...)") for w in words]
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
        if _base(head) not in _SHELLS:
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
    while words and _base(words[0]) in ("sudo", "sshpass", "timeout", "env"):
        head = _base(words.pop(0))
        while words and words[0].startswith("-"):
            option = words.pop(0)
            if head == "sshpass" and option in ("-p", "-f", "-d", "-P") and words:
                words.pop(0)
        if head == "timeout" and words:
            words.pop(0)
    if not words or _base(words[0]) != "ssh":
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
    if not words or _base(words[0]) not in _SHELLS:
        return False
    operands = [w for w in words[1:] if not w.startswith("-")]
    return not operands or "-s" in words


def _base(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def quote(argv: tuple[str, ...]) -> str:
    """A readable one-line rendering of a command for messages."""
    text = " ".join(shlex.quote(w) if w and not _EXPR.search(w) else w for w in argv)
    return text if len(text) <= 120 else text[:117] + "..."
