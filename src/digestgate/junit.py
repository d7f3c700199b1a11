"""JUnit XML reports (pytest, Playwright, Jest/jest-junit, ...) read with a hardened parser.

Reports come from test jobs and are untrusted input: DTDs, entities and external references
are refused (defusedxml), size and element counts are capped before and during parsing, and
the document is streamed into counters without building a tree. Counts come from the
``<testcase>`` elements and their ``<failure>``/``<error>``/``<skipped>`` children; a suite
that declares more failures or errors than its test cases show (a suite that crashed before
reporting its tests) adds the difference, so attributes can only make a result worse. A
malformed, empty or unsafe report is an :class:`InputError`, never a pass.
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

_SUITE_TAGS: Final = frozenset({"testsuites", "testsuite"})
_HINT: Final = "pass the JUnit XML file your test runner wrote (pytest --junitxml, jest-junit, ...)"


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


@dataclass(slots=True)
class _Case:
    name: str
    failure: bool = False
    error: bool = False
    skipped: bool = False


class _Malformed(Exception):
    """Raised inside parser callbacks; turned into InputError at the edge."""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _count_attribute(attrib: dict[str, str], key: str, tag: str) -> int:
    raw = attrib.get(key)
    if raw is None or raw.strip() == "":
        return 0
    try:
        value = int(raw.strip())
    except ValueError:
        raise _Malformed(f"<{tag}> attribute {key}={raw[:20]!r} is not a count") from None
    if value < 0:
        raise _Malformed(f"<{tag}> attribute {key}={value} is negative")
    return value


@dataclass(slots=True)
class _Collector:
    """An expat target: counts test cases per suite without keeping the document."""

    elements: int = 0
    depth: int = 0
    root: str | None = None
    suites: list[_Suite] = field(default_factory=list)
    case: _Case | None = None
    case_depth: int = 0
    totals: _Suite = field(default_factory=lambda: _Suite("", 0, 0))
    failed_names: list[str] = field(default_factory=list)

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self.elements += 1
        if self.elements > MAX_ELEMENTS:
            raise _Malformed(f"more than {MAX_ELEMENTS} XML elements")
        self.depth += 1
        name = _local(tag)
        if self.root is None:
            if name not in _SUITE_TAGS:
                raise _Malformed(f"root element is <{name[:40]}>, not <testsuites> or <testsuite>")
            self.root = name
        if self.case is not None:
            if self.depth == self.case_depth + 1:
                if name == "failure":
                    self.case.failure = True
                elif name == "error":
                    self.case.error = True
                elif name == "skipped":
                    self.case.skipped = True
            return
        if name in _SUITE_TAGS:
            self.suites.append(
                _Suite(
                    attrib.get("name", "")[:_MAX_NAME_LENGTH] or "(unnamed suite)",
                    _count_attribute(attrib, "failures", name),
                    _count_attribute(attrib, "errors", name),
                )
            )
        elif name == "testcase" and self.suites:
            test = attrib.get("name", "") or "(unnamed test)"
            classname = attrib.get("classname", "")
            full = f"{classname}::{test}" if classname else test
            self.case = _Case(full[:_MAX_NAME_LENGTH])
            self.case_depth = self.depth

    def end(self, tag: str) -> None:
        self.depth -= 1
        if self.case is not None:
            if self.depth < self.case_depth:
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
        missing_failures = max(0, suite.declared_failures - suite.failures)
        missing_errors = max(0, suite.declared_errors - suite.errors)
        suite.failures += missing_failures
        suite.errors += missing_errors
        if (missing_failures or missing_errors) and len(self.failed_names) < MAX_NAMES:
            self.failed_names.append(f"{suite.name} (failures reported by the suite)")
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
