"""Times: stored as UTC ISO 8601 strings (second precision, 'Z'), parsed leniently.

What a user types for a time (every time option, CASECTL_NOW) goes through
`parse_time`: a date, an ISO 8601 time (naive ones are local, in the
machine's zone or $TZ), a duration back from now (`7d`, or ahead with `+7d`),
or `now`, `today`, `yesterday`, `tomorrow`. Relative forms count from the
command's clock, so a pinned CASECTL_NOW moves them too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta

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
        # An absolute time only: "7d" ago needs a clock, and this is the clock.
        return _absolute(pinned.strip(), "CASECTL_NOW", end_of_day=False)
    return datetime.now(UTC).replace(microsecond=0)


def now() -> datetime:
    """The clock as the environment says, for code that has no settings (scripts, tests).
    Commands use their settings' clock."""
    return clock(os.environ.get("CASECTL_NOW"), allowed=clock_allowed(os.environ))


_environment_now = now  # parse_time's `now` parameter hides the function


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime(FORMAT)


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# '7d', '-7d', '+7d', '7d ago', '1.5h': a span back from now (ahead with '+').
_RELATIVE = re.compile(r"([+-]?)\s*(\d+(?:\.\d+)?)\s*([smhdw])(\s+ago)?", re.I)
_DAYS = {"today": 0, "yesterday": -1, "tomorrow": 1}


def accepted_forms(*, ahead: bool = False) -> str:
    """The forms `parse_time` reads, for error messages and help."""
    span = "+30m, +12h, +7d, +2w from now" if ahead else "30m, 12h, 7d, 2w ago (+7d ahead)"
    return (
        f"use a date (2026-03-01), an ISO time (2026-03-01T09:30, local unless it ends in Z or +01:00), "
        f"{span}, now, today, yesterday or tomorrow"
    )


def parse_time(
    text: str,
    what: str = "time",
    *,
    end_of_day: bool = False,
    now: datetime | None = None,
    ahead: bool = False,
) -> datetime:
    """A time a user typed, as an aware UTC datetime to the second.

    - `2026-03-01`: local midnight (with `end_of_day`, the day's last second);
    - an ISO 8601 time: naive ones are local time; `Z` or an offset say otherwise;
    - `7d`, `12h`, `30m`, `2w` (also `90s`, `1.5h`): that long before `now`;
      `+7d` after it, `-7d` before it; a bare span counts forward with `ahead`
      (a time in the future, such as an appointment's);
    - `now`; `today`, `yesterday`, `tomorrow`: local midnight of that day (with
      `end_of_day`, its last second).

    `now` defaults to the environment's clock (a pinned CASECTL_NOW included).
    A bad value is a usage error (exit 2) naming `what` and the accepted forms.
    """
    text = (text or "").strip()
    word = text.lower()
    m = _RELATIVE.fullmatch(text)
    if m or word in _DAYS or word == "now":
        base = (now if now is not None else _environment_now()).astimezone(UTC).replace(microsecond=0)
        if word == "now":
            return base
        if m:
            sign, amount, unit, ago = m.groups()
            if sign == "+" and ago:
                raise UsageError(f"{what}: '{text}' is both ahead (+) and ago; {accepted_forms(ahead=ahead)}")
            span = timedelta(seconds=round(float(amount) * _UNITS[unit.lower()]))
            forward = sign == "+" or (ahead and not sign and not ago)
            try:
                return base + span if forward else base - span
            except OverflowError:
                raise UsageError(f"{what}: '{text}' is out of range") from None
        day = base.astimezone().date() + timedelta(days=_DAYS[word])
        return _local_day(day, what, text, end_of_day=end_of_day)
    return _absolute(text, what, end_of_day=end_of_day, ahead=ahead)


def _absolute(text: str, what: str, *, end_of_day: bool, ahead: bool = False) -> datetime:
    """A date or an ISO 8601 time; naive ones in the local zone."""
    try:
        if _DATE.fullmatch(text):
            return _local_day(date.fromisoformat(text), what, text, end_of_day=end_of_day)
        t = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(f"{what}: '{text}' is not a date or a time; {accepted_forms(ahead=ahead)}") from None
    try:
        # A naive time is the local wall clock: astimezone() reads it so (DST included).
        return t.astimezone(UTC).replace(microsecond=0)
    except (OverflowError, ValueError):
        raise UsageError(f"{what}: '{text}' is out of range") from None


def _local_day(day: date, what: str, text: str, *, end_of_day: bool) -> datetime:
    """Local midnight of `day` in UTC; with `end_of_day`, the second before the next midnight."""
    try:
        if end_of_day:
            return datetime.combine(day + timedelta(days=1), time.min).astimezone(UTC) - timedelta(seconds=1)
        return datetime.combine(day, time.min).astimezone(UTC)
    except (OverflowError, ValueError):
        raise UsageError(f"{what}: '{text}' is out of range") from None


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
