"""Test runners: the commands that make a job or step a validation (pytest, go test, ...).

A runner is recognised on its own, after wrappers (:func:`~digestgate.lint.argv.normalize`),
or inside ``docker run IMAGE ...`` / ``compose run SERVICE ...``.
"""

from __future__ import annotations

import re
from typing import Final

from digestgate.lint.argv import _base, normalize
from digestgate.lint.match import Kind, Match

_SIMPLE_RUNNERS: Final = frozenset(
    {
        "pytest",
        "py.test",
        "tox",
        "nox",
        "jest",
        "vitest",
        "mocha",
        "ava",
        "karma",
        "rspec",
        "phpunit",
        "ctest",
        "bats",
        "behave",
        "robot",
        "newman",
        "k6",
    }
)
_SUB_RUNNERS: Final = {
    "go": ("test",),
    "cargo": ("test", "nextest"),
    "playwright": ("test",),
    "cypress": ("run",),
    "dotnet": ("test",),
    "deno": ("test",),
    "bun": ("test",),
    "swift": ("test",),
    "mix": ("test",),
}
_PY_MODULES: Final = frozenset({"pytest", "unittest", "tox", "nox"})


def _is_runner(words: list[str]) -> str | None:
    if not words:
        return None
    head = _base(words[0])
    args = words[1:]
    if head in _SIMPLE_RUNNERS:
        return head
    if head in _SUB_RUNNERS and args[:1] and args[0] in _SUB_RUNNERS[head]:
        return f"{head} {args[0]}"
    if re.fullmatch(r"python[0-9.]*", head) and len(args) >= 2 and args[0] == "-m":
        return f"python -m {args[1]}" if args[1] in _PY_MODULES else None
    if head in ("npm", "yarn", "pnpm"):
        if args[:1] in (["test"], ["t"]) or (
            args[:1] == ["run"] and len(args) > 1 and args[1].startswith("test")
        ):
            return f"{head} {' '.join(args[:2])}".strip()
        if head != "npm" and args[:1] and args[0].startswith("test"):
            return f"{head} {args[0]}"
        return None
    if head == "make":
        targets = [a for a in args if not a.startswith("-") and "=" not in a]
        if any(t.startswith("test") or t == "check" for t in targets):
            return "make " + " ".join(targets)
        return None
    if head in ("gradle", "gradlew", "mvn", "mvnw"):
        goals = {a.split(":")[-1] for a in args if not a.startswith("-")}
        if goals & {"test", "check", "verify", "integrationTest"}:
            return f"{head} {' '.join(sorted(goals & {'test', 'check', 'verify'}))}".strip()
    return None


def _validation(words: list[str]) -> list[Match]:
    runner = _is_runner(words)
    return [Match(Kind.VALIDATION, runner)] if runner else []


def _validation_inside(words: list[str]) -> list[Match]:
    """A test runner anywhere inside ``docker run IMAGE ...`` / ``compose run SERVICE ...``."""
    for i in range(len(words)):
        runner = _is_runner(list(normalize(tuple(words[i:]))))
        if runner:
            return [Match(Kind.VALIDATION, runner)]
    return []
