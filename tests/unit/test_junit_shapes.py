"""JUnit shapes that once signed a false PASSED: failures anywhere count, odd shapes are refused.

Dialects checked (their writers or schemas): pytest (failure/error/skipped children, error
for setup and collection errors), jest-junit and Playwright (failure children, suites that
declare errors without cases), Maven Surefire / the Jenkins junit-10 schema (rerunFailure,
rerunError, flakyFailure, flakyError), go-junit-report (a build or runtime error as an extra
test case with an error child), googletest and CTest (``status``/``result`` attributes).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digestgate.attesting.junit import JUnitSummary, lane_result, parse_junit
from digestgate.errors import ExitCode, InputError


def _summary(body: str) -> JUnitSummary:
    return parse_junit(body.encode(), name="r.xml")


def _result(body: str) -> str:
    return lane_result([_summary(body)])


PASSING = '<testcase name="ok"/>'


@pytest.mark.parametrize(
    ("body", "failures", "errors"),
    [
        # A failure under <system-out> (or any element inside the case) still fails the case.
        (f'<testsuite>{PASSING}<testcase name="t"><system-out><failure/></system-out>'
         "</testcase></testsuite>", 1, 0),
        (f'<testsuite>{PASSING}<testcase name="t"><properties><error/></properties>'
         "</testcase></testsuite>", 0, 1),
        # A suite-level <error> (a crashed suite: no test case holds it).
        (f"<testsuite>{PASSING}<error message='suite crashed'/></testsuite>", 0, 1),
        (f"<testsuites><testsuite>{PASSING}</testsuite><failure/></testsuites>", 0, 1),
        (f"<testsuite>{PASSING}<system-out><failure/></system-out></testsuite>", 0, 1),
        # Surefire: a test that failed every rerun.
        (f'<testsuite>{PASSING}<testcase name="t"><rerunFailure type="x"/></testcase>'
         "</testsuite>", 1, 0),
        (f'<testsuite>{PASSING}<testcase name="t"><rerunError type="x"/></testcase>'
         "</testsuite>", 0, 1),
        # Element names in another case or namespace still count (fail closed).
        (f'<testsuite>{PASSING}<testcase name="t"><Failure/></testcase></testsuite>', 1, 0),
        (f'<testsuite xmlns:j="urn:x">{PASSING}<testcase name="t"><j:error/></testcase>'
         "</testsuite>", 0, 1),
        # Status attributes: googletest/CTest spellings, any case.
        (f'<testsuite>{PASSING}<testcase name="t" status="fail"/></testsuite>', 1, 0),
        (f'<testsuite>{PASSING}<testcase name="t" status="FAILED"/></testsuite>', 1, 0),
        (f'<testsuite>{PASSING}<testcase name="t" result="failed"/></testsuite>', 1, 0),
        (f'<testsuite>{PASSING}<testcase name="t" status="error"/></testsuite>', 0, 1),
        # A status claiming success does not hide a failure child.
        (f'<testsuite>{PASSING}<testcase name="t" status="passed"><failure/></testcase>'
         "</testsuite>", 1, 0),
    ],
)  # fmt: skip
def test_failures_count_wherever_they_appear(body: str, failures: int, errors: int) -> None:
    summary = _summary(body)
    assert (summary.failures, summary.errors) == (failures, errors)
    assert lane_result([summary]) == "FAILED"


def test_suite_level_error_is_named_and_not_counted_twice() -> None:
    body = f'<testsuite name="api" errors="1">{PASSING}<error message="boom"/></testsuite>'
    summary = _summary(body)
    assert (summary.tests, summary.errors) == (1, 1)
    assert summary.failed_names == ("api (an error outside any test case)",)


@pytest.mark.parametrize(
    ("attributes", "skipped"),
    [
        ('status="run" result="completed"', 0),  # googletest, passed
        ('status="run" result="skipped"', 1),  # googletest GTEST_SKIP
        ('status="notrun" result="suppressed"', 1),  # googletest DISABLED_
        ('status="run"', 0),  # CTest, Catch2
        ('status="disabled"', 1),  # CTest
        ('status="notrun"', 1),  # CTest
        ('status=""', 0),  # go-junit-report leaves it empty
    ],
)
def test_known_passing_and_skipping_statuses(attributes: str, skipped: int) -> None:
    summary = _summary(f"<testsuite>{PASSING}<testcase name='t' {attributes}/></testsuite>")
    assert (summary.tests, summary.failures, summary.errors) == (2, 0, 0)
    assert summary.skipped == skipped
    assert lane_result([summary]) == "PASSED"


def test_flaky_markers_of_a_test_that_passed_do_not_fail_it() -> None:
    body = (
        '<testsuite><testcase name="t"><flakyFailure type="x"><stackTrace>s</stackTrace>'
        '<system-out>o</system-out></flakyFailure><flakyError type="y"/></testcase></testsuite>'
    )
    assert _result(body) == "PASSED"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('<testsuite><testcase name="a"><testcase name="b"/></testcase></testsuite>',
         "<testcase> inside <testcase 'a'>: nested test cases cannot be interpreted"),
        ('<testsuite><testcase name="a"><x><testcase name="b"/></x></testcase></testsuite>',
         "nested test cases cannot be interpreted"),
        ('<testsuite><testcase name="a"><testsuite><testcase name="b"><failure/></testcase>'
         "</testsuite></testcase></testsuite>", "<testsuite> inside <testcase 'a'>"),
        ('<testsuite><testcase name="a" status="flaky"/></testsuite>',
         "<testcase 'a'> has status='flaky', which digestgate cannot interpret"),
        ('<testsuite><testcase name="a" result="unknown"/></testsuite>',
         "has result='unknown'"),
        ('<testsuite><TestCase name="a"/><testcase name="b"/></testsuite>',
         "<TestCase> is not a JUnit element (element names are lowercase)"),
        ('<testSuites><testsuite><testcase name="b"/></testsuite></testSuites>',
         "root element is <testSuites>"),
        ('<testsuite><testcase name="b"/><TESTSUITE/></testsuite>',
         "<TESTSUITE> is not a JUnit element"),
        ('<testsuite failures="\u0663"><testcase name="a"/></testsuite>', "is not a count"),
        (f'<testsuite failures="{"9" * 5000}"><testcase name="a"/></testsuite>',
         "is not a count"),
    ],
)  # fmt: skip
def test_shapes_without_one_reading_are_refused(body: str, problem: str) -> None:
    with pytest.raises(InputError) as caught:
        _summary(body)
    assert problem in caught.value.message
    assert caught.value.message.startswith("JUnit report r.xml: ")
    assert caught.value.exit_code == ExitCode.USAGE


# Where a failure marker can hide: (prefix, suffix) around the marker inside one suite.
_HIDING_PLACES = [
    ('<testcase name="f">', "</testcase>"),
    ('<testcase name="f"><system-out>', "</system-out></testcase>"),
    ('<testcase name="f"><properties><property name="p" value="v"/>', "</properties></testcase>"),
    ('<testcase name="f"><system-err>text', "</system-err></testcase>"),
    ("", ""),  # suite level
    ("<system-out>", "</system-out>"),
    ("<properties>", "</properties>"),
]
_MARKERS = ["<failure/>", "<error/>", "<failure message='m'>trace</failure>", "<rerunFailure/>"]


@settings(max_examples=150, deadline=None)
@given(
    passing=st.integers(1, 5),
    place=st.sampled_from(_HIDING_PLACES),
    marker=st.sampled_from(_MARKERS),
    nested=st.booleans(),
    before=st.booleans(),
)
def test_a_failure_marker_anywhere_never_passes(
    passing: int, place: tuple[str, str], marker: str, nested: bool, before: bool
) -> None:
    cases = "".join(f'<testcase name="p{i}"/>' for i in range(passing))
    hidden = place[0] + marker + place[1]
    inner = hidden + cases if before else cases + hidden
    suite = f'<testsuite name="s">{inner}</testsuite>'
    body = (
        f"<testsuites><testsuite name='outer'>{suite}</testsuite></testsuites>" if nested else suite
    )
    assert _result(body) == "FAILED"
