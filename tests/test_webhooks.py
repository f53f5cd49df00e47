"""Webhooks: subscriptions, declared effects, Standard Webhooks signatures verified
by the `standardwebhooks` library on a real HTTP server, retries and timeouts."""

from __future__ import annotations

import json
import time
from datetime import UTC
from pathlib import Path

import pytest

from conftest import raw_connect, snapshot
from outside_servers import Receiver, free_port, new_secret

T0 = "2030-01-01T09:00:00Z"


def at(minutes: float) -> dict[str, str]:
    """An env pinning the clock `minutes` after T0."""
    from datetime import datetime, timedelta

    t = datetime(2030, 1, 1, 9, tzinfo=UTC) + timedelta(minutes=minutes)
    return {"CASECTL_NOW": t.strftime("%Y-%m-%dT%H:%M:%SZ")}


@pytest.fixture(autouse=True)
def pinned(monkeypatch):
    monkeypatch.setenv("CASECTL_NOW", T0)


def rows(db_path, sql="SELECT * FROM outbox ORDER BY id", params=()):
    conn = raw_connect(db_path)
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def stored_anywhere(db, text: str) -> bool:
    """Whether `text` is anywhere in the database: in the SQLite file's bytes, or in a row on PostgreSQL."""
    if isinstance(db, Path):
        return text.encode() in db.read_bytes()
    return text in repr(snapshot(db))


def test_subscription_is_signed_and_verified_by_the_standardwebhooks_library(cli, db, monkeypatch):
    secret = new_secret()
    monkeypatch.setenv("RECEIVER_SECRET", secret)
    with Receiver(secret=secret) as rx:
        assert (
            cli("hooks", "add", rx.url, "--event", "case.decided", "--secret-env", "RECEIVER_SECRET").stdout.strip()
            == "H-1"
        )
        case = cli(
            "create",
            "-w",
            "simple",
            "--subject-name",
            "Ada",
            "--subject-email",
            "ada@example.com",
            "--data",
            '{"amount": 12}',
        ).stdout.strip()
        cli("reject", case, "--reason", "documents forged")
        out = cli("outbox", "deliver")
        assert "delivered 1, will retry 0, failed 0" in out.stdout
        assert len(rx.requests) == 1
        req = rx.requests[0]
        assert req.answered == 200 and req.verified is not None
        body = req.verified
        event_id = rows(db, "SELECT max(id) AS id FROM events")[0]["id"]
        [instance] = [r["value"] for r in rows(db, "SELECT value FROM settings WHERE key = 'instance_id'")]
        assert req.headers["webhook-id"].startswith(f"msg_{instance}_E-{event_id}_")
        assert body["event_id"] == f"E-{event_id}"
        assert abs(int(req.headers["webhook-timestamp"]) - time.time()) < 60
        assert req.headers["webhook-signature"].startswith("v1,")
        assert body["type"] == "case.decided" and body["case_id"] == case
        assert body["timestamp"] == T0
        assert body["data"]["case"]["status"] == "declined"
        assert body["data"]["decision"] == "declined" and body["data"]["reason"] == "documents forged"
        assert body["data"]["case"]["data"] == {"amount": 12}
        assert body["data"]["case"]["subject"]["name"] == "Ada"
    listed = cli.json("outbox", "list", "--json")
    assert [(r["status"], r["attempts"], r["what"]) for r in listed] == [("delivered", 1, "case.decided")]
    # The secret's value is nowhere in the database, only its variable's name.
    assert not stored_anywhere(db, secret)
    assert cli.json("hooks", "list", "--json")[0]["secret_env"] == "RECEIVER_SECRET"


def test_a_receiver_with_another_secret_rejects_the_signature(cli, db, monkeypatch):
    monkeypatch.setenv("OUR_SECRET", new_secret())
    with Receiver(secret=new_secret()) as rx:
        cli("hooks", "add", rx.url, "--secret-env", "OUR_SECRET")
        cli("create", "-w", "simple", "--subject-name", "Bo")
        out = cli("outbox", "deliver")
        assert "delivered 0, will retry 1" in out.stdout
        assert "answered HTTP 401" in out.stderr
        assert rx.requests[0].answered == 401 and rx.requests[0].verified is None


def test_missing_secret_variable_is_an_error_that_names_the_variable(cli, db, monkeypatch):
    monkeypatch.delenv("NOT_SET_SECRET", raising=False)
    with Receiver() as rx:
        cli("hooks", "add", rx.url, "--secret-env", "NOT_SET_SECRET")
        cli("create", "-w", "simple")
        cli("outbox", "deliver")
        assert rx.requests == []  # nothing unsigned leaves when a secret was asked for
    [row] = rows(db)
    assert row["status"] == "pending" and "NOT_SET_SECRET" in row["last_error"]


def test_fails_three_times_then_succeeds_delivered_once(cli, db):
    with Receiver(fail_first=3) as rx:
        cli("hooks", "add", rx.url, "--event", "case.created")
        cli("create", "-w", "simple")
        assert "will retry 1" in cli("outbox", "deliver").stdout  # attempt 1 at T0
        # Backoff: not due again 10 seconds later.
        assert "delivered 0, will retry 0" in cli("outbox", "deliver", env=at(0.2)).stdout
        assert len(rx.requests) == 1
        cli("outbox", "deliver", env=at(1))  # attempt 2 (due after 30s)
        assert len(rx.requests) == 2
        cli("outbox", "deliver", env=at(1.5))  # next is due after 1 more minute: nothing
        assert len(rx.requests) == 2
        cli("outbox", "deliver", env=at(3))  # attempt 3
        out = cli("outbox", "deliver", env=at(10))  # attempt 4 succeeds
        assert "delivered 1" in out.stdout
        assert [r.answered for r in rx.requests] == [500, 500, 500, 200]
        assert len({r.headers["webhook-id"] for r in rx.requests}) == 1  # one idempotency key throughout
        assert len(rx.ok()) == 1
        cli("outbox", "deliver", env=at(60))
        assert len(rx.requests) == 4  # delivered messages are never sent again
    [row] = rows(db)
    assert (row["status"], row["attempts"], row["last_error"]) == ("delivered", 4, None)


def test_receiver_down_nothing_lost_delivered_when_it_comes_up(cli, db):
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    cli("hooks", "add", url)
    case = cli("create", "-w", "simple", "--subject-name", "Cy").stdout.strip()
    cli("approve", case)
    out = cli("outbox", "deliver")
    assert "will retry 2" in out.stdout and "cannot connect" in out.stderr
    errors = cli.json("errors", "--json")
    assert errors[0]["case"] == case and errors[0]["retrying"] == 2 and "cannot connect" in errors[0]["last_error"]
    with Receiver(port=port) as rx:
        out = cli("outbox", "deliver", env=at(5))
        assert "delivered 2" in out.stdout
        assert [r.json()["type"] for r in rx.requests] == ["case.created", "case.decided"]
    assert cli.json("errors", "--json") == []


def test_hanging_receiver_times_out_and_is_retried(cli, db):
    with Receiver(hang_first=1, hang_for=4) as rx:
        cli("hooks", "add", rx.url)
        cli("create", "-w", "simple")
        started = time.monotonic()
        out = cli("outbox", "deliver", "--timeout", "1")
        assert time.monotonic() - started < 3.5
        assert "did not answer within 1s" in out.stderr and "will retry 1" in out.stdout
        out = cli("outbox", "deliver", "--timeout", "1", env=at(1))
        assert "delivered 1" in out.stdout
        # The receiver may have processed the hung request too: the same webhook-id lets it de-duplicate.
        assert len({r.headers["webhook-id"] for r in rx.requests}) == 1
        assert len(rx.delivered()) == 1


def test_gives_up_after_max_attempts_then_retry_by_hand(cli, db):
    port = free_port()
    cli("hooks", "add", f"http://127.0.0.1:{port}/x")
    case = cli("create", "-w", "simple").stdout.strip()
    cli("outbox", "deliver", "--max-attempts", "2")
    out = cli("outbox", "deliver", "--max-attempts", "2", env=at(1))
    assert "failed 1" in out.stdout and "gave up" in out.stderr
    failed = cli.json("outbox", "list", "--failed", "--json")
    assert [(r["id"], r["case"], r["status"], r["attempts"]) for r in failed] == [("O-1", case, "failed", 2)]
    assert cli.json("errors", "--json")[0]["failed"] == 1
    assert "delivered 0, will retry 0, failed 0" in cli("outbox", "deliver", env=at(600)).stdout
    assert cli("outbox", "retry", "--all-failed").stdout.strip() == "queued again: O-1"
    with Receiver(port=port) as rx:
        cli("outbox", "deliver", env=at(601))
        assert len(rx.ok()) == 1
    assert rows(db)[0]["status"] == "delivered"


def test_subscriptions_filter_by_event_and_workflow(cli, db):
    with Receiver() as rx:
        cli("hooks", "add", rx.url, "--event", "case.action.approve", "--workflow", "simple")
        cli("hooks", "add", rx.url + "?kyb", "--workflow", "kyb")
        a = cli("create", "-w", "simple").stdout.strip()
        b = cli("create", "-w", "simple").stdout.strip()
        cli("approve", a)
        cli("reject", b, "--reason", "no")
        cli("outbox", "deliver")
        assert [(r.json()["type"], r.json()["case_id"], r.path) for r in rx.requests] == [
            ("case.action.approve", a, "/hook")
        ]


def test_declared_webhook_and_crm_effects(cli, db, tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_TOKEN", "tok-SECRET-123")
    with Receiver() as rx:
        wf = {
            "name": "onboard",
            "initial": "open",
            "statuses": [{"name": "open"}, {"name": "done", "final": True}],
            "actions": [
                {
                    "name": "finish",
                    "from": ["open"],
                    "to": "done",
                    "decision": "approved",
                    "effects": [
                        {
                            "type": "crm",
                            "method": "PUT",
                            "url": rx.url + "/accounts/{data.account}?case={case.id}",
                            "headers": {"Authorization": "Bearer {env.CRM_TOKEN}", "X-Case": "{case.id}"},
                            "secret_env": "CRM_TOKEN",  # the one variable this effect may read
                            "body": {"status": "{case.status}", "name": "{subject.name}", "note": "{nope}"},
                        },
                    ],
                }
            ],
            "effects": [{"type": "webhook", "url": rx.url + "/wf", "on": ["done"]}],
        }
        path = tmp_path / "onboard.json"
        path.write_text(json.dumps(wf))
        cli("workflows", "add", str(path))
        case = cli("create", "-w", "onboard", "--subject-name", "Dee", "--data", '{"account": "a b/c"}').stdout.strip()
        cli("act", case, "finish")
        assert "delivered 2" in cli("outbox", "deliver").stdout
        crm = next(r for r in rx.requests if r.method == "PUT")
        assert crm.path == f"/hook/accounts/a%20b%2Fc?case={case}"
        assert crm.headers["authorization"] == "Bearer tok-SECRET-123"
        assert crm.headers["x-case"] == case and crm.headers["idempotency-key"].startswith("msg_")
        assert crm.json() == {"status": "done", "name": "Dee", "note": "{nope}"}
        hook = next(r for r in rx.requests if r.method == "POST")
        assert hook.path == "/hook/wf" and hook.json()["type"] == "case.decided"
    assert not stored_anywhere(db, "tok-SECRET-123")


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["ftp://example.com/x"], 6, "is not an http:// or https:// address"),
        (["http://example.com", "--event", "case.exploded"], 6, "unknown event 'case.exploded'"),
        (["http://example.com", "--event", "case.action.fly"], 6, "no action 'fly' in any workflow"),
        (
            ["http://example.com", "--event", "case.action.request_reuploads", "--workflow", "simple"],
            6,
            "no action 'request_reuploads' in workflow simple",
        ),
        (["http://example.com", "--workflow", "nosuch"], 3, "unknown workflow 'nosuch'"),
        (["http://example.com", "--secret-env", "whsec_c2VjcmV0"], 6, "NAME of an environment variable"),
        (["http://example.com", "--secret-env", "bad name"], 6, "NAME of an environment variable"),
    ],
)
def test_hooks_add_refuses_bad_input_and_writes_nothing(cli, db, args, code, message):
    result = cli("hooks", "add", *args, expect=code)
    assert message in result.stderr
    assert "c2VjcmV0" not in result.stderr  # a pasted secret is never echoed
    assert cli.json("hooks", "list", "--json") == []


def test_hooks_list_and_rm(cli, db):
    cli("hooks", "add", "https://a.example.com/x", "--event", "case.created", "--event", "case.decided")
    assert cli.json("hooks", "list", "--json")[0]["events"] == ["case.created", "case.decided"]
    assert cli("hooks", "rm", "H-1").stdout.strip() == "removed H-1"
    assert "no hook 'H-1'" in cli("hooks", "rm", "H-1", expect=3).stderr
    assert cli.json("hooks", "list", "--json") == []
