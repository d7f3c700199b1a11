"""JUnit XML reports (pytest, Playwright, Jest/jest-junit, ...) read with a hardened parser.

Reports come from test jobs and are untrusted input: DTDs, entities and external references
are refused (defusedxml), size and element counts are capped before and during parsing, and
the document is streamed into counters without building a tree.

Counting fails closed. A ``<testcase>`` failed when a ``<failure>``, ``<error>``,
``<rerunFailure>`` or ``<rerunError>`` element appears anywhere inside it (also under
``<system-out>`` or ``<properties>``), or when its ``status``/``result`` attribute says so
(googletest, CTest, Catch2 write these); Surefire's ``<flakyFailure>``/``<flakyError>`` mark
earlier attempts of a test that then passed. A failure or error element outside any test
case (a suite that crashed: a ``<testsuite>``-level ``<error>``) counts as an error of its
suite, and a suite that declares more failures or errors than its test cases show adds the
difference, so attributes can only make a result worse. Shapes with no single reading are
refused: a test case or suite nested inside a test case, an element spelled like a JUnit
element in another case, a status value this module does not know. A malformed, empty or
unsafe report is an :class:`InputError`, never a pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

from digestgate.errors import InputError

#: Largest report accepted (checked before parsing).
MAX_REPORT_SIZE: Final = 32 * 1024 * 1024
#: Most XML elements read from one report.
MAX_ELEMENTS: Final = 2_000_000
#: Failed test names kept per report.
MAX_NAMES: Final = 1000
_MAX_NAME_LENGTH: Final = 500
_MAX_COUNT_DIGITS: Final = 18

_SUITE_TAGS: Final = frozenset({"testsuites", "testsuite"})
_STRUCTURE_TAGS: Final = frozenset({"testsuites", "testsuite", "testcase"})
_HINT: Final = "pass the JUnit XML file your test runner wrote (pytest --junitxml, jest-junit, ...)"

Outcome = Literal["failure", "error", "skipped", "ran"]

#: Child elements (compared case-insensitively) and what they say about their test case.
_ELEMENT_OUTCOMES: Final[dict[str, Outcome]] = {
    "failure": "failure",
    "rerunfailure": "failure",
    "error": "error",
    "rerunerror": "error",
    "skipped": "skipped",
}
#: ``status``/``result`` attribute values of a test case (compared case-insensitively):
#: googletest ``status="run|notrun"`` and ``result="completed|skipped|suppressed"``; CTest
#: ``run|fail|notrun|disabled``; Catch2 ``run``; generic passed/failed/skipped spellings.
_STATUS_OUTCOMES: Final[dict[str, Outcome]] = {
    **dict.fromkeys(("run", "ran", "completed", "pass", "passed", "success", "ok"), "ran"),
    **dict.fromkeys(("fail", "failed", "failure"), "failure"),
    **dict.fromkeys(("error", "errored", "broken"), "error"),
    **dict.fromkeys(
        ("notrun", "skip", "skipped", "disabled", "suppressed", "ignored", "pending"), "skipped"
    ),
}


@dataclass(frozen=True, slots=True)
class JUnitSummary:
    """Totals of one report. ``tests`` includes skipped tests; ``failed_names`` is capped."""

    tests: int
    failures: int
    errors: int
    skipped: int
    failed_names: tuple[str, ...] = ()


@dataclass(slots=True)
class _Suite:
    name: str
    declared_failures: int
    declared_errors: int
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    stray: int = 0  # failure/error elements outside any test case


@dataclass(slots=True)
class _Case:
    name: str
    depth: int
    failure: bool = False
    error: bool = False
    skipped: bool = False

    def mark(self, outcome: Outcome) -> None:
        if outcome == "failure":
            self.failure = True
        elif outcome == "error":
            self.error = True
        elif outcome == "skipped":
            self.skipped = True


class _Malformed(Exception):
    """Raised inside parser callbacks; turned into InputError at the edge."""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _count_attribute(attrib: dict[str, str], key: str, tag: str) -> int:
    raw = attrib.get(key)
    if raw is None or raw.strip() == "":
        return 0
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > _MAX_COUNT_DIGITS:
        problem = "is negative" if text.startswith("-") else "is not a count"
        raise _Malformed(f"<{tag}> attribute {key}={raw[:20]!r} {problem}")
    return int(text)


def _status_outcomes(attrib: dict[str, str], case: str) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for key in ("status", "result"):
        raw = attrib.get(key)
        if raw is None or not raw.strip():
            continue
        outcome = _STATUS_OUTCOMES.get(raw.strip().lower())
        if outcome is None:
            raise _Malformed(
                f"<testcase {case[:80]!r}> has {key}={raw[:40]!r}, which digestgate cannot "
                "interpret as passed, failed or skipped"
            )
        outcomes.append(outcome)
    return outcomes


@dataclass(slots=True)
class _Collector:
    """An expat target: counts test cases per suite without keeping the document."""

    elements: int = 0
    depth: int = 0
    root: str | None = None
    suites: list[_Suite] = field(default_factory=list)
    case: _Case | None = None
    totals: _Suite = field(default_factory=lambda: _Suite("", 0, 0))
    failed_names: list[str] = field(default_factory=list)

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self.elements += 1
        if self.elements > MAX_ELEMENTS:
            raise _Malformed(f"more than {MAX_ELEMENTS} XML elements")
        self.depth += 1
        name = _local(tag)
        lowered = name.lower()
        if self.root is None:
            if name not in _SUITE_TAGS:
                raise _Malformed(f"root element is <{name[:40]}>, not <testsuites> or <testsuite>")
            self.root = name
        if lowered in _STRUCTURE_TAGS and name != lowered:
            raise _Malformed(f"<{name[:40]}> is not a JUnit element (element names are lowercase)")
        if self.case is not None:
            if lowered in _STRUCTURE_TAGS:
                raise _Malformed(
                    f"<{name}> inside <testcase {self.case.name[:80]!r}>: nested test cases "
                    "cannot be interpreted"
                )
            outcome = _ELEMENT_OUTCOMES.get(lowered)
            if outcome is not None:
                self.case.mark(outcome)
            return
        if name in _SUITE_TAGS:
            self.suites.append(
                _Suite(
                    attrib.get("name", "")[:_MAX_NAME_LENGTH] or "(unnamed suite)",
                    _count_attribute(attrib, "failures", name),
                    _count_attribute(attrib, "errors", name),
                )
            )
        elif name == "testcase":
            test = attrib.get("name", "") or "(unnamed test)"
            classname = attrib.get("classname", "")
            full = f"{classname}::{test}" if classname else test
            self.case = _Case(full[:_MAX_NAME_LENGTH], self.depth)
            for outcome in _status_outcomes(attrib, full):
                self.case.mark(outcome)
        elif _ELEMENT_OUTCOMES.get(lowered) in ("failure", "error"):
            self.suites[-1].stray += 1

    def end(self, tag: str) -> None:
        self.depth -= 1
        if self.case is not None:
            if self.depth < self.case.depth:
                self._finish_case(self.case)
                self.case = None
            return
        if _local(tag) in _SUITE_TAGS and self.suites:
            self._finish_suite(self.suites.pop())

    def _finish_case(self, case: _Case) -> None:
        suite = self.suites[-1]
        suite.tests += 1
        # A case both failed and skipped counts as failed: fail closed.
        if case.error:
            suite.errors += 1
        elif case.failure:
            suite.failures += 1
        elif case.skipped:
            suite.skipped += 1
        if (case.error or case.failure) and len(self.failed_names) < MAX_NAMES:
            self.failed_names.append(case.name)

    def _finish_suite(self, suite: _Suite) -> None:
        suite.errors += suite.stray
        missing_failures = max(0, suite.declared_failures - suite.failures)
        missing_errors = max(0, suite.declared_errors - suite.errors)
        suite.failures += missing_failures
        suite.errors += missing_errors
        if (missing_failures or missing_errors) and len(self.failed_names) < MAX_NAMES:
            self.failed_names.append(f"{suite.name} (failures reported by the suite)")
        if suite.stray and len(self.failed_names) < MAX_NAMES:
            self.failed_names.append(f"{suite.name} (an error outside any test case)")
        target = self.suites[-1] if self.suites else self.totals
        target.tests += suite.tests
        target.failures += suite.failures
        target.errors += suite.errors
        target.skipped += suite.skipped

    def close(self) -> None:
        """Called by the parser at the end of the document."""


def parse_junit(data: bytes, *, name: str) -> JUnitSummary:
    """Count the test cases of one JUnit XML report; :class:`InputError` when unusable."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import DefusedXMLParser, ParseError

    def bad(problem: str) -> InputError:
        return InputError(f"JUnit report {name}: {problem}", hint=_HINT)

    if len(data) > MAX_REPORT_SIZE:
        raise bad(f"larger than {MAX_REPORT_SIZE // (1024 * 1024)} MiB")
    if not data.strip():
        raise bad("the file is empty")
    collector = _Collector()
    parser = DefusedXMLParser(
        target=collector, forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    try:
        parser.feed(data)
        parser.close()
    except _Malformed as exc:
        raise bad(str(exc)) from None
    except DefusedXmlException as exc:
        raise bad(
            f"refused unsafe XML ({type(exc).__name__}: DTDs and entities are not allowed)"
        ) from None
    except ParseError as exc:
        raise bad(f"not well-formed XML ({exc})") from None
    totals = collector.totals
    if totals.tests == 0 and totals.failures == 0 and totals.errors == 0:
        raise bad("the report contains no test cases")
    return JUnitSummary(
        tests=totals.tests,
        failures=totals.failures,
        errors=totals.errors,
        skipped=totals.skipped,
        failed_names=tuple(collector.failed_names),
    )


def lane_result(summaries: Iterable[JUnitSummary]) -> Literal["PASSED", "FAILED"]:
    """PASSED only when at least one test ran (not skipped) and none failed or errored."""
    ran = failed = 0
    for summary in summaries:
        ran += summary.tests - summary.skipped
        failed += summary.failures + summary.errors
    return "PASSED" if ran > 0 and failed == 0 else "FAILED"
