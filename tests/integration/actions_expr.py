"""GitHub Actions expressions, exactly the forms the shipped workflows use, and output files.

``${{ }}`` substitution and ``if:`` conditions over ``||``, ``&&``, ``!``, ``==``/``!=``
(strings compared case-insensitively, as runners do), string literals, ``true``/``false``,
context paths, ``startsWith()`` and the status functions. Anything else, and any path that
does not exist, raises ExpressionError: nothing silently becomes an empty string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

STATUS_FUNCTIONS = frozenset({"success", "failure", "cancelled", "always"})


class ExpressionError(AssertionError):
    """An expression the evaluator does not understand, or a reference to nothing."""


Value = str | bool

_TOKEN_RE = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<op>&&|\|\||==|!=|[!(),])"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*))"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if not text[pos:].strip():
            break
        match = _TOKEN_RE.match(text, pos)
        if match is None or match.end() == pos:
            raise ExpressionError(f"cannot read expression at {text[pos:]!r} in {text!r}")
        kind = match.lastgroup
        assert kind is not None
        found.append((kind, match.group(kind)))
        pos = match.end()
    return found


def uses_status_function(text: str) -> bool:
    """True when the expression calls success(), failure(), cancelled() or always()."""
    toks = _tokens(text)
    return any(
        kind == "name" and value in STATUS_FUNCTIONS and toks[i + 1 : i + 2] == [("op", "(")]
        for i, (kind, value) in enumerate(toks)
    )


def _truthy(value: Value) -> bool:
    return value if isinstance(value, bool) else value != ""


class _Evaluator:
    """Recursive descent over ``||``, ``&&``, ``!``, ``==``/``!=``, calls, paths, literals."""

    def __init__(self, text: str, context: Mapping[str, Any], failed: bool) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.pos = 0
        self.context = context
        self.failed = failed

    def fail(self, message: str) -> ExpressionError:
        return ExpressionError(f"{message} in ${{{{ {self.text.strip()} }}}}")

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def take(self, op: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (op is not None and tok != ("op", op)):
            raise self.fail(f"expected {op or 'more'}, found {tok}")
        self.pos += 1
        return tok

    def evaluate(self) -> Value:
        value = self.or_()
        if self.peek() is not None:
            raise self.fail(f"unexpected {self.peek()}")
        return value

    def or_(self) -> Value:
        value = self.and_()
        while self.peek() == ("op", "||"):
            self.take()
            right = self.and_()
            value = value if _truthy(value) else right
        return value

    def and_(self) -> Value:
        value = self.not_()
        while self.peek() == ("op", "&&"):
            self.take()
            right = self.not_()
            value = right if _truthy(value) else value
        return value

    def not_(self) -> Value:
        if self.peek() == ("op", "!"):
            self.take()
            return not _truthy(self.not_())
        return self.comparison()

    def comparison(self) -> Value:
        left = self.primary()
        tok = self.peek()
        if tok in (("op", "=="), ("op", "!=")):
            self.take()
            right = self.primary()
            if type(left) is not type(right):
                raise self.fail(f"comparing {left!r} with {right!r}")
            # Expressions compare strings case-insensitively (GitHub docs, "Operators").
            same = (
                left.lower() == right.lower()
                if isinstance(left, str) and isinstance(right, str)
                else left == right
            )
            return same if tok == ("op", "==") else not same
        return left

    def primary(self) -> Value:
        kind, value = self.take()
        if kind == "str":
            return value[1:-1].replace("''", "'")
        if (kind, value) == ("op", "("):
            inner = self.or_()
            self.take(")")
            return inner
        if kind != "name":
            raise self.fail(f"unexpected {value!r}")
        if value in ("true", "false"):
            return value == "true"
        if self.peek() == ("op", "("):
            return self.call(value)
        return self.lookup(value)

    def call(self, name: str) -> Value:
        self.take("(")
        args: list[Value] = []
        while self.peek() != ("op", ")"):
            if args:
                self.take(",")
            args.append(self.or_())
        self.take(")")
        if name in STATUS_FUNCTIONS and not args:
            return {
                "success": not self.failed,
                "failure": self.failed,
                "cancelled": False,  # nothing is ever cancelled here
                "always": True,
            }[name]
        if name == "startsWith" and len(args) == 2 and all(isinstance(a, str) for a in args):
            return str(args[0]).lower().startswith(str(args[1]).lower())
        raise self.fail(f"unsupported function {name}({len(args)} arguments)")

    def lookup(self, path: str) -> Value:
        node: Any = self.context
        walked: list[str] = []
        for part in path.split("."):
            if not isinstance(node, Mapping) or part not in node:
                have = sorted(node) if isinstance(node, Mapping) else type(node).__name__
                raise self.fail(f"{'.'.join([*walked, part])} does not exist (have {have})")
            node = node[part]
            walked.append(part)
        if not isinstance(node, str | bool):
            raise self.fail(f"{path} is not a string")
        return node


def evaluate(text: str, context: Mapping[str, Any], *, failed: bool = False) -> Value:
    """The value of one expression (without ``${{ }}``)."""
    return _Evaluator(text, context, failed).evaluate()


_EXPR_RE = re.compile(r"\$\{\{(.*?)\}\}", re.S)


def substitute(text: str, context: Mapping[str, Any]) -> str:
    """``text`` with every ``${{ expr }}`` replaced by its value."""

    def value(match: re.Match[str]) -> str:
        result = evaluate(match.group(1), context)
        return ("true" if result else "false") if isinstance(result, bool) else result

    return _EXPR_RE.sub(value, text)


def condition(text: Any, context: Mapping[str, Any], *, failed: bool) -> bool:
    """An ``if:`` value, with the implicit ``success() &&`` when it calls no status function."""
    source = "success()" if text is None else str(text).strip()
    whole = _EXPR_RE.fullmatch(source)
    if whole is not None:
        source = whole.group(1)
    elif "${{" in source:
        # A runner treats this as a (truthy) string: the condition would always hold.
        raise ExpressionError(f"if: mixes text and expressions: {source!r}")
    if not uses_status_function(source):
        source = f"success() && ({source})"
    return _truthy(evaluate(source, context, failed=failed))


def resolve(value: Any, context: Mapping[str, Any]) -> Any:
    """Substitute expressions in every string of a YAML value (keys stay as written)."""
    if isinstance(value, str):
        return substitute(value, context)
    if isinstance(value, Mapping):
        return {k: resolve(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, context) for v in value]
    return value


def scalar(value: Any) -> str:
    """A YAML scalar as a runner hands it to an input or a variable (``true``, not ``True``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    assert isinstance(value, str | int | float), f"not a scalar: {value!r}"
    return str(value)


def parse_output_file(text: str) -> dict[str, str]:
    """``name=value`` and ``name<<DELIM`` ... ``DELIM`` lines of ``$GITHUB_OUTPUT`` (specs 9.1)."""
    outputs: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if not line:
            continue
        heredoc = re.fullmatch(r"([^=<]+)<<(.+)", line)
        if heredoc:
            name, delimiter = heredoc.groups()
            body: list[str] = []
            for part in lines:
                if part == delimiter:
                    break
                body.append(part)
            else:
                raise AssertionError(f"unterminated output {name!r}")
            outputs[name] = "\n".join(body)
        else:
            name, sep, value = line.partition("=")
            assert sep, f"not an output line: {line!r}"
            outputs[name] = value
    return outputs
