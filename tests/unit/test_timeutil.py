"""RFC 3339 parsing: every input is either a UTC datetime or a ValueError, never a crash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digestgate.timeutil import format_timestamp, parse_timestamp


@pytest.mark.parametrize(
    "text", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "2026-12-31T23:59:60Z"]
)
def test_out_of_range_and_leap_seconds_are_value_errors(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)


def test_offsets_and_extra_precision_normalise_to_utc() -> None:
    assert parse_timestamp("2026-01-01T00:00:00.123456789+14:00") == datetime(
        2025, 12, 31, 10, 0, 0, 123456, tzinfo=UTC
    )


@given(
    st.from_regex(
        r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
        r"(Z|[+-][0-9]{2}:[0-9]{2})\Z"
    )
)
def test_well_shaped_text_parses_or_is_a_value_error(text: str) -> None:
    try:
        moment = parse_timestamp(text)
    except ValueError:
        return
    assert moment.tzinfo is UTC


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.builds(timezone, st.timedeltas(timedelta(hours=-23), timedelta(hours=23))),
    )
)
def test_formatted_timestamps_are_strftime_in_utc_to_the_second(moment: datetime) -> None:
    utc = moment.astimezone(UTC)
    assert format_timestamp(moment) == utc.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
