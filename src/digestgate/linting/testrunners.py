"""Test runners: the commands that make a job or step a validation (pytest, go test, ...).

A runner is recognised on its own, after wrappers (:func:`~digestgate.linting.argv.normalize`),
or inside ``docker run IMAGE ...`` / ``compose run SERVICE ...``. Package managers count when
they run a project script named like a test (``npm -w api test``, ``yarn workspace web
test``, ``pnpm -F api run test:unit``, ``hatch run test:all``). Build tools count for their
test goals only, never when tests are skipped (``gradle build -x test``, ``mvn -DskipTests``).
"""

from __future__ import annotations

import re
from typing import Final

from digestgate.linting.argv import (
    after_globals,
    basename,
    is_test_script_name,
    normalize,
    positionals,
)
from digestgate.linting.match import Kind, Match

# fmt: off
_SIMPLE_RUNNERS: Final = frozenset(
    {
        "pytest", "py.test", "tox", "nox", "jest", "vitest", "mocha", "ava", "karma",
        "rspec", "phpunit", "pest", "paratest", "ctest", "bats", "behave", "robot",
        "newman", "k6", "gotestsum", "ginkgo", "nose2", "trial", "codeceptjs",
    }
)
_SUB_RUNNERS: Final = {
    "go": ("test",),
    "richgo": ("test",),
    "cargo": ("test", "nextest"),
    "playwright": ("test",),
    "cypress": ("run",),
    "dotnet": ("test",),
    "deno": ("test",),
    "bun": ("test",),
    "swift": ("test",),
    "mix": ("test",),
    "hatch": ("test",),
    "rye": ("test",),
    "meson": ("test",),
    "ng": ("test", "e2e"),
    "rails": ("test", "spec"),
    "rake": ("test", "spec"),
    "artisan": ("test", "dusk"),
    "manage.py": ("test",),
    "django-admin": ("test",),
    "setup.py": ("test",),
}
_PY_MODULES: Final = frozenset({"pytest", "unittest", "tox", "nox", "behave", "robot", "nose2"})
#: Options of ``python`` and ``coverage run`` that take a value.
_PY_VALUES: Final = frozenset(
    {"-X", "-W", "--source", "--rcfile", "--omit", "--include", "--data-file",
     "--concurrency", "--context"}
)
#: Package managers: their options that take a value before the script or subcommand.
_PACKAGE_VALUES: Final = {
    "npm": frozenset({"-w", "--workspace", "--prefix", "-C"}),
    "pnpm": frozenset({"-F", "--filter", "-C", "--dir", "--filter-prod", "--test-pattern"}),
    "yarn": frozenset({"--cwd"}),
    "bun": frozenset({"--cwd", "-F", "--filter"}),
    "composer": frozenset({"-d", "--working-dir"}),
}
_TEST_ALIASES: Final = frozenset({"t", "tst", "it", "cit", "install-test", "install-ci-test"})
_YARN_FOREACH: Final = frozenset({"--include", "--exclude", "--from", "-j", "--jobs"})
_GRADLE_VALUES: Final = frozenset(
    {"-x", "--exclude-task", "-p", "--project-dir", "-b", "--build-file", "-c",
     "--settings-file", "-g", "--gradle-user-home", "-I", "--init-script", "--tests",
     "-D", "-P", "--max-workers", "--console"}
)
_MAVEN_VALUES: Final = frozenset(
    {"-pl", "--projects", "-f", "--file", "-s", "--settings", "-gs", "--global-settings",
     "-P", "--activate-profiles", "-T", "--threads", "-rf", "--resume-from", "-l",
     "--log-file", "-t", "--toolchains", "-D", "-e"}
)
_MAVEN_GOALS: Final = frozenset({"test", "verify", "integration-test"})
_SKIP_TESTS: Final = re.compile(r"-D\s*(skipTests|maven\.test\.skip)(=true)?(\s|$)")
_GRADLE_TEST: Final = re.compile(r"test|check|connectedCheck|\w*[tT]ests?")
# fmt: on
_MAKE_VALUES: Final = frozenset({"-C", "-f", "--file", "-j", "--jobs", "-I", "-o", "-W"})
_MONOREPO_VALUES: Final = frozenset({"--filter", "-F", "--scope", "--concurrency", "-c"})


def _package_script(head: str, args: list[str]) -> str | None:
    """A test script run by npm/pnpm/yarn/bun/composer/hatch/pdm/rye, if any."""
    rest = after_globals(args, _PACKAGE_VALUES.get(head, frozenset()))
    if head == "yarn" and rest[:1] == ["workspace"] and len(rest) > 2:
        rest = rest[2:]
    elif head == "yarn" and rest[:2] == ["workspaces", "foreach"]:
        rest = after_globals(rest[2:], _YARN_FOREACH)
    if not rest:
        return None
    if rest[0] in ("run", "run-script", "run-s", "run-p") and len(rest) > 1:
        script = after_globals(rest[1:], _PACKAGE_VALUES.get(head, frozenset()))[:1]
        return f"{head} run {script[0]}" if script and is_test_script_name(script[0]) else None
    if head in ("npm", "pnpm", "yarn") and rest[0] in _TEST_ALIASES:
        return f"{head} test"
    if head in ("npm", "pnpm", "yarn", "composer") and is_test_script_name(rest[0]):
        return f"{head} {rest[0]}"
    if head in ("pnpm", "yarn", "bun"):
        return _is_runner(rest)  # a package binary: 'yarn jest', 'pnpm vitest run'
    return None


def _python(args: list[str]) -> str | None:
    """``python [-X v] -m pytest``, ``python manage.py test``, ``coverage run -m pytest``."""
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] not in ("-m", "-c"):
        i += 2 if args[i] in _PY_VALUES else 1
    rest = args[i:]
    if rest[:1] == ["-m"] and len(rest) > 1:
        module, after = rest[1], rest[2:]
        if module in _PY_MODULES:
            return f"python -m {module}"
        if module == "coverage" and after[:1] == ["run"]:
            return _python(after[1:])
        if module == "django" and after[:1] == ["test"]:
            return "python -m django test"
        return None
    if not rest or rest[0] == "-c":
        return None
    if basename(rest[0]) in ("manage.py", "setup.py") and rest[1:2] == ["test"]:
        return f"{basename(rest[0])} test"
    if re.search(r"(^|/)(run_?)?tests?[\w-]*\.py$", rest[0]):
        return f"python {rest[0]}"
    return None


def _jvm_tests(head: str, args: list[str]) -> str | None:
    """Gradle test tasks / Maven test phases, unless the tests are skipped."""
    if head in ("gradle", "gradlew"):
        tasks = [a.rsplit(":", 1)[-1] for a in positionals(args, _GRADLE_VALUES)]
        found = [t for t in tasks if _GRADLE_TEST.fullmatch(t)]
        if "--tests" in args:
            found.append("test")
        return f"{head} {' '.join(found)}" if found else None
    if _SKIP_TESTS.search(" ".join(args)):
        return None
    goals = [g.rsplit(":", 1)[-1] for g in positionals(args, _MAVEN_VALUES)]
    found = [g for g in goals if g in _MAVEN_GOALS]
    return f"{head} {' '.join(found)}" if found else None


def _monorepo(head: str, args: list[str]) -> str | None:
    """``nx test app``, ``nx run app:test``, ``nx run-many -t test``, ``turbo run test``."""
    if not args:
        return None
    targets: list[str] = []
    if args[0] == "run":
        named = positionals(args[1:], _MONOREPO_VALUES)
        targets = [n.split(":")[1] if head == "nx" and ":" in n else n for n in named[:3]]
    elif head == "nx" and args[0] in ("run-many", "affected"):
        for i, word in enumerate(args):
            if word in ("-t", "--target", "--targets") and i + 1 < len(args):
                targets += args[i + 1].split(",")
            elif word.startswith(("--target=", "--targets=")):
                targets += word.split("=", 1)[1].split(",")
    else:
        targets = args[:1]
    found = [t for t in targets if is_test_script_name(t)]
    return f"{head} {found[0]}" if found else None


def _is_runner(words: list[str]) -> str | None:
    if not words:
        return None
    head = basename(words[0])
    args = words[1:]
    if head in _SIMPLE_RUNNERS:
        return head
    if head in ("php", "ruby") and args:
        return _is_runner(args)
    if head in _SUB_RUNNERS and args[:1] and args[0] in _SUB_RUNNERS[head]:
        return f"{head} {args[0]}"
    if re.fullmatch(r"python[0-9.]*|py", head):
        return _python(args)
    if head == "coverage" and args[:1] == ["run"]:
        return _python(args[1:])
    if head in ("npm", "yarn", "pnpm", "bun", "composer", "hatch", "pdm", "rye"):
        return _package_script(head, args)
    if head == "make":
        targets = [a for a in positionals(args, _MAKE_VALUES) if "=" not in a]
        if any(t.startswith("test") or t == "check" for t in targets):
            return "make " + " ".join(targets)
        return None
    if head in ("gradle", "gradlew", "mvn", "mvnw"):
        return _jvm_tests(head, args)
    if head in ("nx", "turbo", "lerna"):
        return _monorepo(head, args)
    return None


def validation_matches(words: list[str]) -> list[Match]:
    runner = _is_runner(words)
    return [Match(Kind.VALIDATION, runner)] if runner else []


def validation_inside(words: list[str]) -> list[Match]:
    """A test runner anywhere inside ``docker run IMAGE ...`` / ``compose run SERVICE ...``."""
    for i in range(len(words)):
        runner = _is_runner(list(normalize(tuple(words[i:]))))
        if runner:
            return [Match(Kind.VALIDATION, runner)]
    return []
