"""JUnit reports: counts from real tools' shapes, hostile XML refused, never a false pass."""

from __future__ import annotations

import time
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digestgate.attesting import junit
from digestgate.attesting.junit import JUnitSummary, lane_result, parse_junit
from digestgate.errors import ExitCode, InputError

DATA = Path(__file__).resolve().parent.parent / "data" / "junit"


def _parse_file(name: str) -> JUnitSummary:
    return parse_junit((DATA / name).read_bytes(), name=name)


@pytest.mark.parametrize(
    ("name", "tests", "failures", "errors", "skipped", "result"),
    [
        ("pytest-mixed.xml", 6, 1, 1, 2, "FAILED"),
        ("pytest-pass.xml", 4, 0, 0, 1, "PASSED"),
        ("pytest-legacy.xml", 2, 0, 0, 0, "PASSED"),
        ("playwright.xml", 5, 1, 0, 1, "FAILED"),
        ("jest-junit.xml", 6, 1, 0, 1, "FAILED"),
        ("jest-junit-pass.xml", 2, 0, 0, 0, "PASSED"),
    ],
)
def test_sample_reports_are_counted_from_their_test_cases(
    name: str, tests: int, failures: int, errors: int, skipped: int, result: str
) -> None:
    summary = _parse_file(name)
    assert (summary.tests, summary.failures, summary.errors, summary.skipped) == (
        tests,
        failures,
        errors,
        skipped,
    )
    assert lane_result([summary]) == result


def test_failed_names_name_the_failing_cases() -> None:
    assert _parse_file("pytest-mixed.xml").failed_names == (
        "tests.test_api::test_login",
        "tests.test_db::test_migrate",
    )
    assert _parse_file("playwright.xml").failed_names == (
        "checkout.spec.ts::checkout › rejects an expired card",
    )


def test_one_failing_report_fails_the_lane() -> None:
    passing = _parse_file("pytest-pass.xml")
    failing = _parse_file("jest-junit.xml")
    assert lane_result([passing, passing]) == "PASSED"
    assert lane_result([passing, failing]) == "FAILED"


def test_no_report_or_only_skipped_tests_never_pass() -> None:
    assert lane_result([]) == "FAILED"
    assert lane_result([JUnitSummary(tests=3, failures=0, errors=0, skipped=3)]) == "FAILED"


def test_suite_declaring_failures_without_failing_cases_fails() -> None:
    # A suite that crashed before reporting its cases: attributes can only make it worse.
    data = (
        b'<testsuites><testsuite name="src/broken.test.js" tests="0" failures="0" errors="1">'
        b"</testsuite>"
        b'<testsuite name="ok" tests="1"><testcase name="a"/></testsuite></testsuites>'
    )
    summary = parse_junit(data, name="jest.xml")
    assert (summary.tests, summary.errors) == (1, 1)
    assert lane_result([summary]) == "FAILED"
    assert summary.failed_names == ("src/broken.test.js (failures reported by the suite)",)


def test_attributes_claiming_success_do_not_hide_failing_cases() -> None:
    data = (
        b'<testsuite name="s" tests="2" failures="0" errors="0">'
        b'<testcase name="a"/><testcase name="b"><failure message="boom"/></testcase>'
        b"</testsuite>"
    )
    summary = parse_junit(data, name="r.xml")
    assert summary.failures == 1
    assert lane_result([summary]) == "FAILED"


def test_nested_suites_are_counted_once() -> None:
    data = (
        b'<testsuites failures="1"><testsuite name="outer" failures="1">'
        b'<testsuite name="inner" failures="1"><testcase name="x"><failure/></testcase>'
        b'<testcase name="y"/></testsuite></testsuite></testsuites>'
    )
    summary = parse_junit(data, name="r.xml")
    assert (summary.tests, summary.failures) == (2, 1)


def test_failed_and_skipped_case_counts_as_failed() -> None:
    data = b'<testsuite name="s"><testcase name="a"><skipped/><error/></testcase></testsuite>'
    summary = parse_junit(data, name="r.xml")
    assert (summary.errors, summary.skipped) == (1, 0)


def test_rerun_markers_are_not_failures() -> None:
    # Maven surefire's flaky-test markers describe earlier attempts of a passing test.
    data = (
        b'<testsuite name="s" tests="1"><testcase name="a">'
        b'<flakyFailure message="first try"/></testcase></testsuite>'
    )
    assert lane_result([parse_junit(data, name="r.xml")]) == "PASSED"


_BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<testsuite name="&lol9;"><testcase name="a"/></testsuite>
"""

_EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE testsuite [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<testsuite name="s"><testcase name="&secret;"/></testsuite>
"""

_PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE testsuite [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>
<testsuite name="s"><testcase name="a"/></testsuite>
"""

_EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE testsuite SYSTEM "http://127.0.0.1:9/junit.dtd">
<testsuite name="s"><testcase name="a"/></testsuite>
"""


@pytest.mark.parametrize(
    "data",
    [_BILLION_LAUGHS, _EXTERNAL_ENTITY, _PARAMETER_ENTITY, _EXTERNAL_DTD],
    ids=["billion-laughs", "external-entity", "parameter-entity", "external-dtd"],
)
def test_hostile_xml_is_refused_quickly(data: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(InputError) as caught:
        parse_junit(data, name="evil.xml")
    assert time.perf_counter() - started < 1.0
    assert "evil.xml" in caught.value.message
    assert "unsafe XML" in caught.value.message
    assert caught.value.exit_code == ExitCode.USAGE
    assert "root:" not in caught.value.message  # nothing from /etc/passwd


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"not xml at all", "not well-formed"),
        (b'<testsuite name="s"><testcase name="a">', "not well-formed"),
        (b"<html><body>502 Bad Gateway</body></html>", "root element is <html>"),
        (b'<testsuites name="jest tests" tests="0"></testsuites>', "no test cases"),
        (b'<testsuite name="s" tests="3"/>', "no test cases"),
        (b'<testsuite failures="many"><testcase name="a"/></testsuite>', "not a count"),
        (b'<testsuite errors="-1"><testcase name="a"/></testsuite>', "negative"),
        (b"\xff\xfe<\x00t\x00", "not well-formed"),
    ],
)
def test_unusable_reports_are_input_errors(data: bytes, problem: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_junit(data, name="reports/junit.xml")
    assert "reports/junit.xml" in caught.value.message
    assert problem in caught.value.message
    assert caught.value.hint


def test_size_cap_is_checked_before_parsing() -> None:
    data = b"<testsuite>" + b" " * junit.MAX_REPORT_SIZE + b"</testsuite>"
    started = time.perf_counter()
    with pytest.raises(InputError, match="larger than 32 MiB"):
        parse_junit(data, name="big.xml")
    assert time.perf_counter() - started < 0.5


def test_element_count_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(junit, "MAX_ELEMENTS", 50)
    data = b"<testsuite>" + b'<testcase name="a"/>' * 60 + b"</testsuite>"
    with pytest.raises(InputError, match="more than 50 XML elements"):
        parse_junit(data, name="many.xml")


def test_failed_names_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(junit, "MAX_NAMES", 3)
    data = b"<testsuite>" + b'<testcase name="a"><failure/></testcase>' * 10 + b"</testsuite>"
    summary = parse_junit(data, name="r.xml")
    assert summary.failures == 10
    assert len(summary.failed_names) == 3


_OUTCOMES = st.sampled_from(["pass", "failure", "error", "skipped"])


@given(suites=st.lists(st.lists(_OUTCOMES, max_size=8), min_size=1, max_size=5))
def test_counts_match_generated_reports(suites: list[list[str]]) -> None:
    parts = ['<testsuites name="gen">']
    for i, cases in enumerate(suites):
        parts.append(f"<testsuite name={quoteattr(f'suite {i}')}>")
        for j, outcome in enumerate(cases):
            child = "" if outcome == "pass" else f"<{outcome} message='m'/>"
            parts.append(f'<testcase classname="c{i}" name="t{j}">{child}</testcase>')
        parts.append("</testsuite>")
    parts.append("</testsuites>")
    data = "".join(parts).encode()
    flat = [outcome for cases in suites for outcome in cases]
    if not flat:
        with pytest.raises(InputError):
            parse_junit(data, name="gen.xml")
        return
    summary = parse_junit(data, name="gen.xml")
    assert summary.tests == len(flat)
    assert summary.failures == flat.count("failure")
    assert summary.errors == flat.count("error")
    assert summary.skipped == flat.count("skipped")
    expected = "PASSED" if flat.count("pass") and set(flat) <= {"pass", "skipped"} else "FAILED"
    assert lane_result([summary]) == expected
