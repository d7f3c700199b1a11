"""RFC 3339 timestamps (UTC, ``Z``) and durations such as ``7d`` (pure)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final

_DURATION_RE: Final = re.compile(r"([0-9]{1,9})([smhd])")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RFC3339_RE: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def parse_duration(text: str) -> timedelta:
    """Parse ``30s``, ``15m``, ``12h``, ``7d``; raise ValueError otherwise."""
    match = _DURATION_RE.fullmatch(str(text).strip())
    if match is None:
        raise ValueError(f"invalid duration {str(text)[:40]!r}: use a number and s, m, h or d")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def parse_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 timestamp with an explicit offset into an aware UTC datetime."""
    if not isinstance(text, str) or not _RFC3339_RE.fullmatch(text):
        raise ValueError(f"invalid RFC 3339 timestamp {str(text)[:40]!r}")
    normal = text.upper().replace("Z", "+00:00")
    head, dot, frac = normal.partition(".")
    if dot:
        digits = re.match(r"[0-9]+", frac)
        assert digits is not None
        frac_digits = digits.group(0)
        normal = f"{head}.{frac_digits[:6].ljust(6, '0')}{frac[len(frac_digits) :]}"
    try:
        return datetime.fromisoformat(normal).astimezone(UTC)
    except OverflowError:
        # A valid-looking local time whose UTC equivalent leaves years 1-9999.
        raise ValueError(f"timestamp {text[:40]!r} is out of range") from None


def format_timestamp(moment: datetime) -> str:
    """UTC RFC 3339 with ``Z`` and whole seconds, e.g. ``2026-11-26T10:00:00Z``."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    utc = moment.astimezone(UTC)
    if utc.year < 1000:  # strftime's %Y is not zero-padded on every platform
        return utc.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"{utc.year}-{utc.month:02d}-{utc.day:02d}T"
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}Z"
    )


def utcnow() -> datetime:
    """The current time, aware, in UTC (the default clock)."""
    return datetime.now(UTC)
