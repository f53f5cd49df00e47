"""http effects (Ballerine's API plugins): a request built from the case goes out through the
outbox, its JSON answer is mapped with JMESPath into the case, and its success_event or
error_event moves the case on. A real HTTP server on 127.0.0.1 answers."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from conftest import casectl_bin, outbox, raw_connect, snapshot
from outside_servers import free_port, wait_for

T0 = "2030-01-01T09:00:00Z"
TOKEN = "tok-REGISTRY-s3cr3t"
ANSWER = {
    "company": {"name": "Acme Ltd", "status": "active", "internal_ref": "zz-never-stored"},
    "officers": [{"role": "director", "since": 2019}],
}


def at(minutes: float) -> dict[str, str]:
    """An env pinning the clock `minutes` after T0."""
    t = datetime(2030, 1, 1, 9, tzinfo=UTC) + timedelta(minutes=minutes)
    return {"CASECTL_NOW": t.strftime("%Y-%m-%dT%H:%M:%SZ")}


@pytest.fixture(autouse=True)
def pinned(monkeypatch):
    monkeypatch.setenv("CASECTL_NOW", T0)
    monkeypatch.setenv("REGISTRY_TOKEN", TOKEN)


# --- a registry that answers JSON ----------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    status: int = 0


class Registry:
    """An HTTP server answering each request with the next of `answers` (status, JSON or bytes);
    the last one is repeated. `before_answer(n)` runs before the n-th (1-based) answer goes out."""

    def __init__(self, answers: list[tuple[int, Any]], before_answer: Callable[[int], None] | None = None):
        self.answers = answers
        self.before_answer = before_answer
        self.port = free_port()
        self.requests: list[Seen] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Registry:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
                with registry.lock:
                    registry.requests.append(seen)
                    n = len(registry.requests)
                status, body = registry.answers[min(n, len(registry.answers)) - 1]
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                if registry.before_answer:
                    registry.before_answer(n)
                # Noted before the answer goes out: once the deliverer has it, the test may look.
                seen.status = status
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_POST = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()

    def answered(self) -> list[int]:
        return [r.status for r in self.requests if r.status]


# --- the workflow ------------------------------------------------------------------


def workflow(url: str, **effect: Any) -> dict[str, Any]:
    """Entering collection_flow asks the registry; its answer moves the case to review (registry_ok)
    or, when the call fails for good, to manual (registry_failed)."""
    http = {
        "type": "http",
        "name": "registry_lookup",
        "on": ["collection_flow"],
        "method": "GET",
        "url": url + "/companies/{data.company.reg_no}",
        "headers": {"Authorization": "Bearer {env.REGISTRY_TOKEN}"},
        "secret_env": "REGISTRY_TOKEN",
        "response": {
            "registry_data": "{name: company.name, status: company.status}",
            "block": {"name": "company_registry", "data": "{officers: officers}"},
        },
        "success_event": "registry_ok",
        "error_event": "registry_failed",
        **effect,
    }
    return {
        "name": "registry_check",
        "initial": "new",
        "statuses": [
            {"name": "new"},
            {"name": "collection_flow"},
            {"name": "review"},
            {"name": "manual"},
            {"name": "approved", "final": True},
            {"name": "rejected", "final": True},
        ],
        "actions": [
            {"name": "start", "from": ["new"], "to": "collection_flow"},
            {"name": "registry_ok", "trigger": "system", "from": ["collection_flow"], "to": "review"},
            {"name": "registry_failed", "trigger": "system", "from": ["collection_flow"], "to": "manual"},
            {"name": "skip", "from": ["collection_flow"], "to": "manual"},
            {"name": "approve", "from": ["review", "manual"], "to": "approved"},
            {"name": "reject", "from": ["new", "collection_flow", "review", "manual"], "to": "rejected"},
        ],
        "effects": [http],
    }


def add_workflow(cli, tmp_path, url: str, **effect: Any) -> None:
    path = tmp_path / "registry_check.json"
    path.write_text(json.dumps(workflow(url, **effect)))
    cli("workflows", "add", path)


def new_case(cli, reg_no: str = "12 345/6") -> str:
    data = json.dumps({"company": {"reg_no": reg_no}})
    return cli("create", "-w", "registry_check", "--subject-name", "Acme", "--data", data).stdout.strip()


def integration_events(cli, case: str) -> list[dict[str, Any]]:
    return [e for e in cli.json("history", case, "--json")["events"] if e["kind"] == "integration"]


def actions_done(cli, case: str) -> list[str]:
    return [e["action"] for e in cli.json("history", case, "--json")["events"] if e["action"]]


outbox_rows = outbox  # conftest's: the outbox table's rows, oldest first


# --- (1) success ---------------------------------------------------------------------


def test_the_answer_is_mapped_into_registry_data_and_a_block_and_fires_the_success_event(
    cli, db, tmp_path, monkeypatch
):
    monkeypatch.delenv("CASECTL_NO_DELIVER")  # the command that queued the call sends it at once
    with Registry([(200, ANSWER)]) as registry:
        add_workflow(cli, tmp_path, registry.url)
        case = new_case(cli)
        assert registry.requests == []  # nothing is asked before the case enters collection_flow
        cli("act", case, "start")
        [request] = registry.requests
    assert request.method == "GET" and request.path == "/companies/12%20345%2F6"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["idempotency-key"].startswith("msg_")
    shown = cli.json("show", case, "--json")
    assert shown["status"] == "review"
    assert shown["registry_data"] == {"name": "Acme Ltd", "status": "active"}
    assert shown["data"] == {"company": {"reg_no": "12 345/6"}}  # untouched: no data mapping
    [block] = [b for b in shown["blocks"] if b["name"] == "company_registry"]
    assert block["kind"] == "enriched" and block["data"] == {"officers": [{"role": "director", "since": 2019}]}
    [delivery] = shown["deliveries"]
    assert (delivery["kind"], delivery["what"], delivery["status"]) == ("http", "registry_lookup", "delivered")
    [event] = integration_events(cli, case)
    assert event["actor"] == "http:registry_lookup"
    assert {k: v for k, v in event["data"].items() if k != "summary"} == {
        "effect": "registry_lookup",
        "http_status": 200,
        "outbox": delivery["id"],
        "mapped": {"registry_data": ["name", "status"], "block": "company_registry", "block_keys": ["officers"]},
        "fired": "registry_ok",
    }
    assert "fired registry_ok" in event["data"]["summary"]
    assert actions_done(cli, case) == ["start", "registry_ok"]
    history = cli("history", case).stdout
    assert history.index("integration") < history.index("registry_ok: collection_flow -> review")
    # Neither the token nor what the mapping left out of the answer is kept anywhere.
    if isinstance(db, str):  # PostgreSQL: every value of every table
        stored = repr(snapshot(db)).encode()
    else:  # the SQLite file and its WAL
        stored = db.read_bytes() + (db.with_name(db.name + "-wal").read_bytes() if os.path.exists(f"{db}-wal") else b"")
    assert TOKEN.encode() not in stored and b"zz-never-stored" not in stored
    cli("outbox", "deliver", env=at(60))
    assert actions_done(cli, case) == ["start", "registry_ok"]  # delivered once, applied once


def test_data_mapping_merges_into_the_case_data_and_an_existing_block(cli, db, tmp_path):
    answers = [(200, {"company": {"name": "Acme Ltd", "status": "active"}, "officers": [], "vat": "GB1"})]
    with Registry(answers) as registry:
        add_workflow(
            cli,
            tmp_path,
            registry.url,
            response={
                "data": "{company: {vat: vat}}",
                "block": {"name": "company_registry", "data": "{officers: officers}"},
            },
        )
        case = new_case(cli)
        cli("block", case, "add", "enriched", "company_registry", "--data", '{"source": "manual"}')
        cli("act", case, "start")
        assert "delivered 1" in cli("outbox", "deliver").stdout
    shown = cli.json("show", case, "--json")
    assert shown["data"] == {"company": {"reg_no": "12 345/6", "vat": "GB1"}}  # merged, the reg_no kept
    [block] = shown["blocks"]
    assert (block["name"], block["data"]) == ("company_registry", {"source": "manual", "officers": []})
    assert shown["status"] == "review"
    [event] = integration_events(cli, case)
    assert event["data"]["mapped"] == {"data": ["company"], "block": "company_registry", "block_keys": ["officers"]}


def test_an_answer_for_a_block_of_another_kind_fails_the_message_and_fires_the_error_event(cli, db, tmp_path):
    with Registry([(200, ANSWER)]) as registry:
        add_workflow(cli, tmp_path, registry.url)
        case = new_case(cli)
        cli("block", case, "add", "user_data", "company_registry")
        cli("act", case, "start")
        out = cli("outbox", "deliver")
        assert "failed 1" in out.stdout and "is a user_data block" in out.stderr
    shown = cli.json("show", case, "--json")
    assert shown["status"] == "manual" and shown["registry_data"] == {}  # nothing of the answer applied
    [event] = integration_events(cli, case)
    assert "could not be applied" in event["data"]["error"] and event["data"]["fired"] == "registry_failed"
    assert event["data"]["http_status"] == 200
    assert shown["deliveries"][0]["status"] == "failed"


# --- (2) retried -----------------------------------------------------------------------


def test_a_500_is_retried_with_the_same_key_then_the_answer_is_applied(cli, db, tmp_path):
    with Registry([(500, {"error": "busy"}), (200, ANSWER)]) as registry:
        add_workflow(cli, tmp_path, registry.url)
        case = new_case(cli)
        cli("act", case, "start")
        out = cli("outbox", "deliver")
        assert "will retry 1" in out.stdout and "answered HTTP 500" in out.stderr
        assert cli.json("show", case, "--json")["status"] == "collection_flow"
        assert integration_events(cli, case) == []  # a failure that will be retried is not history yet
        assert cli.json("errors", "--json")[0]["retrying"] == 1
        assert "delivered 0, will retry 0" in cli("outbox", "deliver", env=at(0.2)).stdout  # backoff
        assert "delivered 1" in cli("outbox", "deliver", env=at(1)).stdout
        assert registry.answered() == [500, 200]
        assert len({r.headers["idempotency-key"] for r in registry.requests}) == 1
    assert cli.json("show", case, "--json")["status"] == "review"
    assert [e["data"]["http_status"] for e in integration_events(cli, case)] == [200]
    assert cli.json("errors", "--json") == []


# --- (3) gives up ---------------------------------------------------------------------


def test_a_permanent_4xx_fails_at_once_and_fires_the_error_event(cli, db, tmp_path):
    with Registry([(404, {"error": "no such company"})]) as registry:
        add_workflow(cli, tmp_path, registry.url)
        case = new_case(cli)
        cli("act", case, "start")
        out = cli("outbox", "deliver")
        assert "failed 1" in out.stdout and "answered HTTP 404" in out.stderr
        assert registry.answered() == [404]
        cli("outbox", "deliver", env=at(600))
        assert registry.answered() == [404]  # never asked again
    shown = cli.json("show", case, "--json")
    assert shown["status"] == "manual" and shown["registry_data"] == {}
    assert shown["deliveries"][0]["status"] == "failed"
    [event] = integration_events(cli, case)
    assert event["data"]["http_status"] == 404 and event["data"]["fired"] == "registry_failed"
    assert "answered HTTP 404" in event["data"]["error"]
    assert actions_done(cli, case) == ["start", "registry_failed"]
    assert cli.json("errors", "--json")[0]["failed"] == 1


def test_attempts_spent_on_500s_fire_the_error_event(cli, db, tmp_path):
    with Registry([(503, {"error": "down"})]) as registry:
        add_workflow(cli, tmp_path, registry.url)
        case = new_case(cli)
        cli("act", case, "start")
        cli("outbox", "deliver", "--max-attempts", "2")
        assert cli.json("show", case, "--json")["status"] == "collection_flow"
        out = cli("outbox", "deliver", "--max-attempts", "2", env=at(1))
        assert "failed 1" in out.stdout
        assert registry.answered() == [503, 503]
    assert cli.json("show", case, "--json")["status"] == "manual"
    [event] = integration_events(cli, case)
    assert event["data"]["http_status"] == 503 and event["data"]["fired"] == "registry_failed"


@pytest.mark.parametrize(
    "answer, mapping, error",
    [
        ((200, b"<html>not json</html>"), None, "is not JSON"),
        ((200, {"company": "Acme"}), "company", "response.registry_data (company) yields a string, not an object"),
        ((200, {"company": None}), "company", "yields null, not an object"),
        ((200, {"company": [1]}), "company", "yields a list, not an object"),
        ((200, b"x" * (1024 * 1024 + 1)), None, "more than 1024 KiB"),
    ],
)
def test_an_answer_that_does_not_fit_the_mapping_is_a_permanent_error(cli, db, tmp_path, answer, mapping, error):
    with Registry([answer]) as registry:
        if mapping is None:
            add_workflow(cli, tmp_path, registry.url)
        else:
            response = {"registry_data": mapping, "block": {"name": "company_registry", "data": "{all: @}"}}
            add_workflow(cli, tmp_path, registry.url, response=response)
        case = new_case(cli)
        cli("act", case, "start")
        out = cli("outbox", "deliver")
        assert "failed 1" in out.stdout and error in out.stderr
        assert len(registry.requests) == 1
    shown = cli.json("show", case, "--json")
    assert shown["status"] == "manual" and shown["registry_data"] == {}
    assert "company_registry" not in [b["name"] for b in shown["blocks"]]
    [event] = integration_events(cli, case)
    assert error in event["data"]["error"] and event["data"]["fired"] == "registry_failed"


# --- (4) the case moved on ------------------------------------------------------------


def test_an_event_the_case_no_longer_allows_is_recorded_not_fired(cli, db, tmp_path):
    with Registry([(200, ANSWER)]) as registry:
        add_workflow(cli, tmp_path, registry.url)
        moved, closed = new_case(cli, "1"), new_case(cli, "2")
        for case in (moved, closed):
            cli("act", case, "start")
        cli("act", moved, "skip")  # to manual, before the registry answered
        cli("act", closed, "reject", "--reason", "withdrawn")
        assert "delivered 2, will retry 0, failed 0" in cli("outbox", "deliver").stdout
        assert len(registry.requests) == 2
        assert "delivered 0, will retry 0, failed 0" in cli("outbox", "deliver", env=at(600)).stdout
        assert len(registry.requests) == 2  # done with: not tried again
    shown = cli.json("show", moved, "--json")
    assert shown["status"] == "manual"
    assert shown["registry_data"] == {"name": "Acme Ltd", "status": "active"}  # still an open case: recorded
    [event] = integration_events(cli, moved)
    assert event["data"]["not_fired"] == "registry_ok" and "fired" not in event["data"]
    assert "not allowed in status manual" in event["data"]["why_not"]
    assert "registry_ok not fired" in event["data"]["summary"]
    assert actions_done(cli, moved) == ["start", "skip"]
    shown = cli.json("show", closed, "--json")
    assert shown["status"] == "rejected" and shown["registry_data"] == {}  # nothing in a final case changes
    [event] = integration_events(cli, closed)
    assert "rejected (final)" in event["data"]["not_applied"] and event["data"]["not_fired"] == "registry_ok"
    assert "mapped" not in event["data"]
    assert actions_done(cli, closed) == ["start", "reject"]


# --- (5) lint -------------------------------------------------------------------------


def test_validate_reports_bad_mappings_and_events_by_their_json_path(cli, db, tmp_path):
    wf = workflow(
        "https://registry.example",
        response={"registry_data": "{name: company.name", "block": {"name": "registry", "data": ""}},
        success_event="registry_okay",
        error_event="approve",
    )
    wf["effects"].append({"type": "http", "url": "https://{data.host}/x"})
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(wf))
    result = cli("workflows", "validate", path, expect=6)
    lines = result.stderr
    assert "$.effects[0].response.registry_data: not a valid JMESPath expression" in lines
    assert "$.effects[0].success_event: no action 'registry_okay' in workflow registry_check" in lines
    assert "system events: registry_ok, registry_failed" in lines
    assert "$.effects[0].error_event: 'approve' is an agent action" in lines
    assert "$.effects[0].response.block.name: 'registry' is the case's own data" in lines
    assert "$.effects[0].response.block.data: an empty mapping" in lines
    assert "$.effects[1].name: an http effect needs a name" in lines
    assert "$.effects[1].on: say when an http effect calls" in lines  # not on every status change
    assert "$.effects[1].url: url: 'https://{data.host}/x'" in lines  # target rules cover http too
    cli("workflows", "add", path, expect=6)
    assert "registry_check" not in cli("workflows", "list").stdout
    wf = workflow("https://registry.example", response={"registry": "{a: b}"})
    path.write_text(json.dumps(wf))
    assert "Additional properties are not allowed ('registry' was unexpected)" in (
        cli("workflows", "validate", path, expect=6).stderr
    )
    wf = workflow("https://registry.example")
    wf["block_kinds"] = ["user_data", "document"]
    path.write_text(json.dumps(wf))
    assert "$.effects[0].response.block: the answer goes into an enriched block" in (
        cli("workflows", "validate", path, expect=6).stderr
    )
    path.write_text(json.dumps(workflow("https://registry.example")))
    assert "valid workflow 'registry_check'" in cli("workflows", "validate", path).stdout


# --- (6) crash safety -------------------------------------------------------------------


def test_a_deliverer_killed_between_send_and_mark_leaves_it_to_the_next_which_applies_it_once(cli, db, tmp_path):
    """The registry answers while this test holds the database's write lock, so the deliverer
    (a real process) has sent the call and got its answer but cannot mark it; it is killed there."""
    if isinstance(db, str):  # PostgreSQL: BEGIN IMMEDIATE takes the writers' lock (store/pg.py)
        lock = raw_connect(db)
    else:
        lock = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    held = threading.Event()

    def hold_the_lock(n: int) -> None:
        if n == 1:
            lock.execute("BEGIN IMMEDIATE")
            held.set()

    with Registry([(200, ANSWER)], before_answer=hold_the_lock) as registry:
        add_workflow(cli, tmp_path, registry.url)
        case = new_case(cli)
        cli("act", case, "start")
        env = {**os.environ, "CASECTL_NOW": T0, "CASECTL_BUSY_TIMEOUT": "120"}
        deliverer = subprocess.Popen(
            [casectl_bin(), "outbox", "deliver"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            assert wait_for(lambda: registry.answered() == [200], timeout=60)
            assert held.is_set()
            assert deliverer.poll() is None  # still waiting for the lock, to mark the message
        finally:
            deliverer.send_signal(signal.SIGKILL)
            deliverer.wait(timeout=30)
            lock.execute("ROLLBACK")
            lock.close()
        [row] = outbox_rows(db)
        assert (row["status"], row["attempts"]) == ("sending", 1)  # claimed, sent, never marked
        assert cli.json("show", case, "--json")["status"] == "collection_flow"
        assert integration_events(cli, case) == []
        # Its claim holds until its lease runs out: nobody sends it meanwhile.
        assert "delivered 0, will retry 0, failed 0" in cli("outbox", "deliver", env=at(0.5)).stdout
        assert len(registry.requests) == 1
        assert "delivered 1" in cli("outbox", "deliver", env=at(5)).stdout
        assert registry.answered() == [200, 200]
        assert len({r.headers["idempotency-key"] for r in registry.requests}) == 1
        cli("outbox", "deliver", env=at(60))
        assert len(registry.requests) == 2
    assert cli.json("show", case, "--json")["status"] == "review"
    assert len(integration_events(cli, case)) == 1
    assert actions_done(cli, case) == ["start", "registry_ok"]
    assert [b["name"] for b in cli.json("show", case, "--json")["blocks"]] == ["company_registry"]


def test_a_deliverer_whose_claim_was_taken_over_applies_nothing(cli, db, tmp_path, monkeypatch):
    """The slow deliverer comes back after another one took the message over and applied it:
    its mark finds the claim gone, so the answer is not applied a second time."""
    from casectl.services import integrations, notify
    from casectl.services import outbox as outbox_service
    from casectl.store import connect, write
    from casectl.store import outbox as store

    with Registry([(200, ANSWER)]) as registry:
        add_workflow(cli, tmp_path, registry.url)
        case = new_case(cli)
        cli("act", case, "start")
        conn = connect(db)
        try:
            with write(conn):
                [row] = store.claim(
                    conn, worker="slow", now=T0, until="2030-01-01T09:01:00Z", limit=1, ids=None, kinds=None
                )
            out = notify.Outbound(policy=notify.TargetPolicy(allow_private=True), secrets=dict(os.environ))
            answer = notify.send_http(row["target"], row["payload"], "msg-slow", timeout=5, out=out)
            mapped = integrations.read(row["payload"], answer)
            assert "delivered 1" in cli("outbox", "deliver", env=at(5)).stdout  # the lease ran out: taken over
            now = datetime(2030, 1, 1, 9, 6, tzinfo=UTC)
            with write(conn):
                ok, error = outbox_service._mark_delivered(conn, row, mapped, worker="slow", now=now)
            assert (ok, error) == (False, None)
        finally:
            conn.close()
        assert len(registry.requests) == 2
    assert len(integration_events(cli, case)) == 1
    assert actions_done(cli, case) == ["start", "registry_ok"]
    assert cli.json("show", case, "--json")["registry_data"] == {"name": "Acme Ltd", "status": "active"}
