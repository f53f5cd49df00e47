"""Times: stored as UTC ISO 8601 strings (second precision, 'Z'), parsed leniently."""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime, timedelta

from .errors import UsageError

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def clock(pinned: str | None = None) -> datetime:
    """The time now, to the second; `pinned` (CASECTL_NOW: tests, back-dated imports) stops the clock."""
    if pinned:
        return parse_time(pinned, "CASECTL_NOW")
    return datetime.now(UTC).replace(microsecond=0)


def now() -> datetime:
    """The clock with CASECTL_NOW read from the environment, for code that has no settings
    (scripts, tests, services/queue.py's SLA section for now). Commands use their settings' clock."""
    return clock(os.environ.get("CASECTL_NOW"))


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
