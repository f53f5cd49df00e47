"""Times: stored as UTC ISO 8601 strings (second precision, 'Z'), parsed leniently."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

from .errors import UsageError

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def clock_allowed(environ: Mapping[str, str]) -> bool:
    """CASECTL_ALLOW_CLOCK=1: the clock override is switched on (tests, documented back-dated batch work)."""
    return environ.get("CASECTL_ALLOW_CLOCK", "").strip().lower() in ("1", "true", "yes")


def clock(pinned: str | None = None, *, allowed: bool = True) -> datetime:
    """The time now, to the second; `pinned` (CASECTL_NOW) stops the clock where the override is allowed.

    Pinning without CASECTL_ALLOW_CLOCK is refused rather than ignored: a user who set the clock
    would otherwise believe the events carry it.
    """
    if pinned:
        if not allowed:
            raise UsageError(
                "CASECTL_NOW is set but the clock override is off; it pins the clock only with "
                "CASECTL_ALLOW_CLOCK=1 (for tests and back-dated batch work)"
            )
        return parse_time(pinned, "CASECTL_NOW")
    return datetime.now(UTC).replace(microsecond=0)


def now() -> datetime:
    """The clock as the environment says, for code that has no settings (scripts, tests).
    Commands use their settings' clock."""
    return clock(os.environ.get("CASECTL_NOW"), allowed=clock_allowed(os.environ))


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime(FORMAT)


def parse_time(text: str, what: str = "time", *, end_of_day: bool = False) -> datetime:
    """A date (YYYY-MM-DD) or an ISO 8601 time; naive times are UTC."""
    text = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            d = datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
            return d + timedelta(days=1) - timedelta(seconds=1) if end_of_day else d
        t = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(f"{what}: '{text}' is not a date (YYYY-MM-DD) or an ISO 8601 time") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).replace(microsecond=0)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str, what: str = "duration") -> timedelta:
    """'90m', '24h', '3d', '2w'."""
    m = _DURATION.match(text or "")
    if not m:
        raise UsageError(f"{what}: '{text}' is not a duration like 30m, 24h, 3d or 2w")
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])


def valid_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
        return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", text))
    except ValueError:
        return False
