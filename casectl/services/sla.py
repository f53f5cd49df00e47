"""SLA time: how long a workflow gives a case to reach a decision, counted in
business hours when the workflow says so, and paused while the case waits
on its subject.

Pure functions of (sla definition, times): no I/O, so they are easy to test
against a calendar.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from ..errors import InvalidInput

# Never search further than this for business time (a calendar with no
# working day at all would otherwise loop forever).
_MAX_DAYS = 3660


@dataclass(frozen=True)
class Calendar:
    """When the SLA clock runs: always, or only in business hours."""

    start: time | None = None
    end: time | None = None
    days: frozenset[int] = frozenset(range(1, 8))  # ISO weekdays, 1 = Monday
    tz: Any = UTC
    holidays: frozenset[date] = frozenset()

    @property
    def always(self) -> bool:
        return self.start is None and not self.holidays and len(self.days) == 7

    @classmethod
    def of(cls, sla: Mapping[str, Any]) -> Calendar:
        found = problems(sla)
        if found:  # a definition stored before these checks: one line, not a traceback
            path, msg = found[0]
            raise InvalidInput(f"the workflow's {path}: {msg}; fix the definition (`casectl workflows add`)")
        bh = sla.get("business_hours") or {}
        tz: Any = UTC
        if bh.get("timezone"):
            from zoneinfo import ZoneInfo

            tz = ZoneInfo(bh["timezone"])
        start = time.fromisoformat(bh["start"]) if bh.get("start") else (time(9) if bh else None)
        end = time.fromisoformat(bh["end"]) if bh.get("end") else (time(17) if bh else None)
        days = frozenset(bh.get("days") or (range(1, 6) if bh else range(1, 8)))
        holidays = frozenset(date.fromisoformat(d) for d in sla.get("holidays") or ())
        return cls(start, end, days, tz, holidays)

    def windows(self, since: datetime):
        """Working intervals (UTC) from `since` on, in order."""
        local = since.astimezone(self.tz)
        day = local.date()
        for _ in range(_MAX_DAYS):
            if day.isoweekday() in self.days and day not in self.holidays:
                lo = datetime.combine(day, self.start or time(0), tzinfo=self.tz).astimezone(UTC)
                if self.end is None or self.end == time(0):
                    hi = datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.tz).astimezone(UTC)
                else:
                    hi = datetime.combine(day, self.end, tzinfo=self.tz).astimezone(UTC)
                lo = max(lo, since)
                if hi > lo:
                    yield lo, hi
            day += timedelta(days=1)


def budget_seconds(sla: Mapping[str, Any] | None) -> int | None:
    """The SLA's allowance in seconds of (business) time, or None without an SLA."""
    if not sla or not sla.get("hours"):
        return None
    return int(round(float(sla["hours"]) * 3600))


def add(sla: Mapping[str, Any], start: datetime, seconds: int) -> datetime:
    """The time at which `seconds` of SLA time have run from `start`."""
    cal = Calendar.of(sla)
    if cal.always:
        return start + timedelta(seconds=seconds)
    left = timedelta(seconds=seconds)
    last = start
    for lo, hi in cal.windows(start):
        if hi - lo >= left:
            return lo + left
        left -= hi - lo
        last = hi
    return last + left  # no working time in ten years: fall back to wall time


def between(sla: Mapping[str, Any], a: datetime, b: datetime) -> int:
    """Seconds of SLA time from a to b (negative when b is before a)."""
    if b < a:
        return -between(sla, b, a)
    cal = Calendar.of(sla)
    if cal.always:
        return int((b - a).total_seconds())
    total = timedelta()
    for lo, hi in cal.windows(a):
        if lo >= b:
            break
        total += min(hi, b) - lo
    return int(total.total_seconds())


def describe(seconds: int) -> str:
    """3d 4h, 5h 30m, 12m."""
    seconds = abs(int(seconds))
    d, rem = divmod(seconds, 86400)
    h, rem = divmod(rem, 3600)
    m = rem // 60
    if d:
        return f"{d}d {h}h" if h else f"{d}d"
    if h:
        return f"{h}h {m}m" if m else f"{h}h"
    return f"{m}m"


def problems(sla: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(JSON path, problem) for business hours and holidays the clock could not use."""
    if not sla:
        return []
    out: list[tuple[str, str]] = []
    bh = sla.get("business_hours") or {}
    if not isinstance(bh, Mapping):
        return [("$.sla.business_hours", "must be an object")]
    times: dict[str, time] = {}
    for key in ("start", "end"):
        value = bh.get(key)
        if value is None:
            continue
        try:
            if not isinstance(value, str) or len(value) != 5:
                raise ValueError
            times[key] = time.fromisoformat(value)
        except ValueError:
            out.append((f"$.sla.business_hours.{key}", f"{value!r} is not a time of day (HH:MM, 00:00 to 23:59)"))
    if "start" in times and "end" in times and times["end"] != time(0) and times["end"] <= times["start"]:
        out.append(("$.sla.business_hours.end", "must be after start (or 00:00 for midnight)"))
    days = bh.get("days")
    if days is not None and (
        not isinstance(days, list) or not days or any(not isinstance(d, int) or not 1 <= d <= 7 for d in days)
    ):
        out.append(("$.sla.business_hours.days", "must list weekdays 1 (Monday) to 7 (Sunday)"))
    zone = bh.get("timezone")
    if zone is not None:
        from zoneinfo import ZoneInfo

        try:
            if not isinstance(zone, str) or not zone or zone.startswith("/") or ".." in zone:
                raise ValueError
            ZoneInfo(zone)
        except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError; bad names a ValueError
            out.append(("$.sla.business_hours.timezone", f"{zone!r} is not a known time zone (e.g. Europe/London)"))
    for i, day in enumerate(sla.get("holidays") or ()):
        try:
            date.fromisoformat(day)
        except (TypeError, ValueError):
            out.append((f"$.sla.holidays[{i}]", f"{day!r} is not a date (YYYY-MM-DD)"))
    return out
