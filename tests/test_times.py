"""Time options: ISO dates and times (naive ones local), relative spans (7d, 2w, +2d), today,
yesterday and now, counted from the command's clock (a pinned CASECTL_NOW moves them), and one
line naming the option and the accepted forms when a value is bad."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import pytest
from casectl.errors import UsageError
from casectl.timeutil import clock, iso, parse_time

NOW = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)  # the day Paris moves to summer time


@pytest.fixture
def zone():
    """Set the local zone for this process (TZ and tzset), and put it back afterwards."""
    before = os.environ.get("TZ")

    def set_zone(name: str) -> None:
        os.environ["TZ"] = name
        time.tzset()

    yield set_zone
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


def at(text: str, **kw) -> str:
    return iso(parse_time(text, "--since", now=NOW, **kw))


# --- the parser -------------------------------------------------------------------


def test_spans_count_back_from_now_and_ahead_with_a_plus():
    assert at("30m") == "2026-03-29T11:30:00Z"
    assert at("12h") == "2026-03-29T00:00:00Z"
    assert at("7d") == at("7d ago") == at("-7d") == "2026-03-22T12:00:00Z"
    assert at("2w") == "2026-03-15T12:00:00Z"
    assert at("1.5h") == "2026-03-29T10:30:00Z"
    assert at("+2d") == "2026-03-31T12:00:00Z"
    # A time in the future (an appointment) reads a bare span forward; a sign still says which way.
    assert at("2d", ahead=True) == "2026-03-31T12:00:00Z"
    assert at("-2d", ahead=True) == "2026-03-27T12:00:00Z"
    assert at("now") == at("NOW") == "2026-03-29T12:00:00Z"
    # A span is an instant: end_of_day does not stretch it.
    assert at("7d", end_of_day=True) == "2026-03-22T12:00:00Z"


def test_dates_and_naive_times_are_local(zone):
    zone("Europe/Paris")
    assert at("2026-03-01") == "2026-02-28T23:00:00Z"  # CET midnight
    assert at("2026-03-01", end_of_day=True) == "2026-03-01T22:59:59Z"
    assert at("2026-07-01") == "2026-06-30T22:00:00Z"  # CEST
    assert at("2026-03-01T09:30") == "2026-03-01T08:30:00Z"
    assert at("2026-03-01 09:30:15") == "2026-03-01T08:30:15Z"
    # A zone given in the value wins over the local one.
    assert at("2026-03-01T09:30Z") == "2026-03-01T09:30:00Z"
    assert at("2026-03-01T09:30+05:30") == "2026-03-01T04:00:00Z"


def test_today_yesterday_tomorrow_are_local_days(zone):
    zone("Europe/Paris")
    # 2026-03-29 is 23 hours long in Paris: midnight is +01:00, the end of the day +02:00.
    assert at("today") == "2026-03-28T23:00:00Z"
    assert at("today", end_of_day=True) == "2026-03-29T21:59:59Z"
    assert at("yesterday") == "2026-03-27T23:00:00Z"
    assert at("yesterday", end_of_day=True) == "2026-03-28T22:59:59Z"
    assert at("tomorrow") == "2026-03-29T22:00:00Z"
    zone("Asia/Tokyo")  # already 21:00 on the 29th there
    assert at("today") == "2026-03-28T15:00:00Z"
    zone("America/Los_Angeles")  # 05:00 on the 29th
    assert at("Today") == "2026-03-29T07:00:00Z"
    zone("UTC")
    assert at("today") == "2026-03-29T00:00:00Z" and at("yesterday") == "2026-03-28T00:00:00Z"


@pytest.mark.parametrize("bad", ["soon", "7", "7x", "+7d ago", "2026-02-30", "2026-13-01T00:00", "", "d7"])
def test_a_bad_value_names_the_option_and_the_forms(bad):
    with pytest.raises(UsageError) as e:
        parse_time(bad, "--created-since", now=NOW)
    message = e.value.message
    assert message.startswith(f"--created-since: '{bad}' is ")
    assert "\n" not in message
    if bad != "+7d ago":
        assert "not a date or a time" in message
    for form in ("2026-03-01", "2026-03-01T09:30", "7d", "today", "yesterday", "now"):
        assert form in message


def test_the_pinned_clock_takes_no_relative_value():
    assert clock("2026-03-29T12:00:00Z") == NOW
    with pytest.raises(UsageError) as e:
        clock("7d")
    assert e.value.message.startswith("CASECTL_NOW: '7d' is not a date or a time")


# --- on the command line ----------------------------------------------------------


def make_at(cli, monkeypatch, when: str, n: int = 1, **kw) -> list[str]:
    monkeypatch.setenv("CASECTL_NOW", when)
    out = []
    for _ in range(n):
        args = ["create", "--workflow", "simple"] + [a for k, v in kw.items() for a in (f"--{k}", v)]
        out.append(cli(*args).stdout.strip())
    return out


@pytest.fixture
def dated(cli, db, monkeypatch, zone):
    """C-1 created 20 days, C-2 10 days, C-3 2 days and C-4 1 hour before the clock (2026-03-29 12:00 UTC)."""
    zone("UTC")  # days are local: the machine's zone must not move them
    make_at(cli, monkeypatch, "2026-03-09T12:00:00Z")
    make_at(cli, monkeypatch, "2026-03-19T12:00:00Z")
    make_at(cli, monkeypatch, "2026-03-27T12:00:00Z")
    make_at(cli, monkeypatch, "2026-03-29T11:00:00Z")
    monkeypatch.setenv("CASECTL_NOW", "2026-03-29T12:00:00Z")
    return cli


def ids(cli, *args) -> list[str]:
    return cli("list", "--ids", *args).stdout.split()


def test_created_since_and_until_take_spans_and_days(dated):
    cli = dated
    assert ids(cli, "--created-since", "7d") == ["C-3", "C-4"]
    assert ids(cli, "--created-since", "2w") == ["C-2", "C-3", "C-4"]
    assert ids(cli, "--created-since", "90m") == ["C-4"]
    assert ids(cli, "--created-until", "7d") == ["C-1", "C-2"]
    assert ids(cli, "--created-since", "today") == ["C-4"]
    assert ids(cli, "--created-until", "yesterday") == ["C-1", "C-2", "C-3"]
    assert ids(cli, "--created-since", "3w", "--created-until", "1w") == ["C-1", "C-2"]
    assert ids(cli, "--created-since", "now") == []
    # The same filters through export and take.
    exported = cli("export", "--format", "ndjson", "--created-since", "7d").stdout.splitlines()
    assert [__import__("json").loads(x)["id"] for x in exported] == ["C-3", "C-4"]
    assert cli("take", "--created-until", "15d").stdout.strip() == "C-1"


def test_relative_times_follow_the_pinned_clock(dated, monkeypatch):
    cli = dated
    monkeypatch.setenv("CASECTL_NOW", "2026-03-20T12:00:00Z")  # back to a day after C-2
    assert ids(cli, "--created-since", "7d", "--created-until", "now") == ["C-2"]
    assert ids(cli, "--created-since", "yesterday", "--created-until", "today") == ["C-2"]
    assert ids(cli, "--created-since", "today", "--created-until", "today") == []


def test_naive_times_are_read_in_the_local_zone(dated, monkeypatch, zone):
    cli = dated
    zone("Asia/Tokyo")  # +09:00: 2026-03-19 21:00 there is C-2's 12:00 UTC
    assert ids(cli, "--created-since", "2026-03-19T21:00") == ["C-2", "C-3", "C-4"]
    assert ids(cli, "--created-since", "2026-03-19T21:00:01") == ["C-3", "C-4"]
    assert ids(cli, "--created-since", "2026-03-19T12:00:01Z") == ["C-3", "C-4"]
    # A date is the local day: the 20th in Tokyo starts at 15:00 UTC on the 19th, after C-2.
    assert ids(cli, "--created-since", "2026-03-20", "--created-until", "2026-03-27") == ["C-3"]
    zone("America/New_York")  # -04:00 in March: the 27th ends at 04:00 UTC on the 28th
    assert ids(cli, "--created-until", "2026-03-27") == ["C-1", "C-2", "C-3"]
    assert ids(cli, "--created-until", "2026-03-27T07:59") == ["C-1", "C-2"]


def test_stats_since_takes_a_span(dated):
    cli = dated
    doc = cli.json("stats", "--since", "2w", "--json")
    assert doc["period"]["since"] == "2026-03-15T12:00:00Z" and doc["period"]["opened"] == 3
    doc = cli.json("stats", "--since", "today", "--until", "now", "--json")
    assert doc["period"]["opened"] == 1 and doc["period"]["until"] == "2026-03-29T12:00:00Z"


def test_other_time_options_take_spans(dated, monkeypatch):
    cli = dated
    # purge: nothing closed yet, but the span is read (and a bad one is exit 2).
    out = cli.json("purge", "--closed-before", "30d", "--dry-run", "--json")
    assert out["count"] == 0 and out["closed_before"] == "2026-02-27T12:00:00Z"
    # digest: a span back from the clock.
    assert "2026-03-22T12:00:00Z" in cli("digest", "--since", "7d", "--dry-run").stdout
    # An appointment is in the future: a bare span counts forward.
    cli("appointment", "C-1", "add", "2d", "Call")
    cli("appointment", "C-1", "add", "90m", "Call again")
    starts = [a["starts_at"] for a in cli.json("appointments", "C-1", "--json")]
    assert starts == ["2026-03-29T13:30:00Z", "2026-03-31T12:00:00Z"]


@pytest.mark.parametrize(
    "args, option",
    [
        (["list", "--created-since", "last tuesday"], "--created-since"),
        (["list", "--created-until", "7x"], "--created-until"),
        (["export", "--created-since", "soon"], "--created-since"),
        (["stats", "--since", "a fortnight"], "--since"),
        (["stats", "--until", "2026-02-30"], "--until"),
        (["purge", "--closed-before", "ages ago"], "--closed-before"),
        (["digest", "--since", "whenever", "--dry-run"], "--since"),
    ],
)
def test_a_bad_time_is_exit_2_with_one_line(dated, args, option):
    r = dated(*args, expect=2)
    lines = r.stderr.strip().splitlines()
    assert lines[0].startswith(f"casectl: error: {option}: '") and "is not a date or a time" in lines[0]
    assert "7d" in lines[0] and "today" in lines[0]
    assert r.stdout == "" or r.stdout.startswith("{")  # nothing but an error object with --json


def test_a_relative_pinned_clock_is_refused(cli, db):
    r = cli("list", env={"CASECTL_NOW": "7d"}, expect=2)
    assert "CASECTL_NOW: '7d' is not a date or a time" in r.stderr
