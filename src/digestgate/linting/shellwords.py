"""Words of one shell line: quotes, substitutions, redirections and separators.

The tokenizer behind :mod:`digestgate.linting.shell`: ``$(...)``/backtick bodies are cut out
(and parsed as commands of their own), file-descriptor numbers of redirections are dropped,
and each simple command's words are returned with its separators removed.
"""

from __future__ import annotations

import re
import shlex
from typing import Final

_MARK: Final = re.compile(r"DGXPR(\d+)X")
_SEPARATORS: Final = frozenset({";", "&&", "||", "|", "&", "|&", ";;", "(", ")", "((", "))"})
_FD: Final = re.compile(r"\d[<>]")
_REDIRECT: Final = re.compile(r"^[0-9]*[<>]+&?$|^&>>?$|^>&$")


def restore(text: str, table: list[str]) -> str:
    """Put the protected ``${{ }}`` expressions (``DGXPR<n>X`` marks) back into ``text``."""
    return _MARK.sub(lambda m: table[int(m.group(1))] if int(m.group(1)) < len(table) else "", text)


def substitutions(text: str) -> tuple[str, list[str]]:
    """Cut ``$(...)`` and backtick bodies out of ``text`` (outside single quotes)."""
    if "$(" not in text and "`" not in text:
        return text, []
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
    if not _FD.search(text):
        return text
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


def tokenize(text: str) -> list[list[str]]:
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
