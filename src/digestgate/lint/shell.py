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
_HEREDOC: Final = re.compile(r"(?<!<)<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")
_ASSIGN: Final = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.S)
_SEPARATORS: Final = frozenset({";", "&&", "||", "|", "&", "|&", ";;", "(", ")", "((", "))"})
_REDIRECT: Final = re.compile(r"^[0-9]*[<>]+&?$|^&>>?$|^>&$")
_KEYWORDS: Final = frozenset(
    {"if", "then", "do", "else", "elif", "while", "until", "!", "{", "}", "fi", "done", "time"}
)
_DECLARE: Final = frozenset({"export", "local", "readonly", "declare", "typeset"})
_MAX_DEPTH: Final = 4


@dataclass(frozen=True, slots=True)
class Command:
    """One simple command: its words, the variables it assigns, and its 0-based line."""

    argv: tuple[str, ...]
    assigns: tuple[tuple[str, str], ...]
    line: int
    text: str


def logical_lines(text: str) -> list[tuple[int, str]]:
    """``(first line index, text)`` per logical line: continuations joined, heredocs skipped."""
    out: list[tuple[int, str]] = []
    heredoc: tuple[str, bool] | None = None
    buf = ""
    start: int | None = None
    for idx, raw in enumerate(text.split("\n")):
        if heredoc is not None:
            delim, strip_tabs = heredoc
            if (raw.lstrip("\t") if strip_tabs else raw).strip() == delim:
                heredoc = None
            continue
        if start is None:
            start = idx
        stripped = raw.rstrip()
        if stripped.endswith("\\") and not stripped.endswith("\\\\"):
            buf += stripped[:-1] + " "
            continue
        buf += raw
        out.append((start, buf))
        found = _HEREDOC.search(_strip_quoted(buf))
        if found:
            heredoc = (found.group(2), "<<-" in found.group(0))
        buf = ""
        start = None
    if start is not None and buf.strip():
        out.append((start, buf))
    return out


def _strip_quoted(text: str) -> str:
    """The text with quoted parts blanked (so a ``<<`` inside quotes is no heredoc)."""
    return re.sub(r"'[^']*'|\"(?:[^\"\\]|\\.)*\"", "''", text)


def commands(text: str) -> list[Command]:
    """Every simple command of a shell text, in order."""
    result: list[Command] = []
    for line, logical in logical_lines(text):
        _split_line(logical, line, result, 0)
    return result


def _split_line(logical: str, line: int, out: list[Command], depth: int) -> None:
    table: list[str] = []

    def protect(match: re.Match[str]) -> str:
        table.append(match.group(0))
        return f"DGXPR{len(table) - 1}X"

    protected = _EXPR.sub(protect, logical)
    outer, inner = _substitutions(protected)
    for words in _tokenize(outer):
        _emit(words, table, line, out, depth)
    if depth < _MAX_DEPTH:
        for body in inner:
            _split_line(_restore(body, table), line, out, depth + 1)


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


def _emit(words: list[str], table: list[str], line: int, out: list[Command], depth: int) -> None:
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
    out.append(Command(tuple(argv), tuple(assigns), line, text))
    # ``bash -c "..."`` and ``sh -c '...'`` run their argument as a script.
    if depth >= _MAX_DEPTH:
        return
    for start, head in enumerate(argv):
        if _base(head) not in {"bash", "sh", "zsh", "dash"}:
            continue
        for i in range(start + 1, len(argv) - 1):
            word = argv[i]
            if word.startswith("-") and "c" in word[1:] and not word.startswith("--"):
                _split_line(argv[i + 1], line, out, depth + 1)
                return
        return


def _base(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def quote(argv: tuple[str, ...]) -> str:
    """A readable one-line rendering of a command for messages."""
    text = " ".join(shlex.quote(w) if w and not _EXPR.search(w) else w for w in argv)
    return text if len(text) <= 120 else text[:117] + "..."
