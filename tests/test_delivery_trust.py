"""The outbox under hostile input and the trust model: one bad message never stops the
others, read commands never send, idempotency keys unique across databases and time,
and outbound calls only to http(s) targets the configuration allows, with only declared
secrets. Real commands, a real aiosmtpd server and real receivers on 127.0.0.1."""

from __future__ import annotations

import json
import re
import time

import pytest

from conftest import outbox, raw_connect, snapshot
from outside_servers import Receiver, SilentServer, free_port, new_secret, parts

T0 = "2030-01-01T09:00:00Z"
DELIVER_ON = {"CASECTL_NO_DELIVER": ""}


@pytest.fixture(autouse=True)
def pinned(monkeypatch):
    monkeypatch.setenv("CASECTL_NOW", T0)


def add_workflow(cli, tmp_path, effects, name="trust"):
    wf = {
        "name": name,
        "initial": "open",
        "statuses": [{"name": "open"}, {"name": "done", "final": True}],
        "actions": [{"name": "finish", "from": ["open"], "to": "done", "decision": "approved", "effects": effects}],
    }
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(wf))
    cli("workflows", "add", str(path))


def stored(db) -> bytes:
    """Everything the database holds: the SQLite file's bytes; on PostgreSQL (no file of the
    test's own) every value of every table."""
    if isinstance(db, str):
        return repr(snapshot(db)).encode()
    return db.read_bytes()


def no_traceback(result) -> None:
    assert "Traceback" not in result.stdout + result.stderr


# --- 5. one bad message never stops the outbox ------------------------------------------


def test_an_email_that_cannot_be_built_fails_with_a_reason_and_the_rest_go(cli, db, smtp):
    case = cli("create", "-w", "simple", "--subject-name", "Ada", "--subject-email", "ada@example.com").stdout.strip()
    # An appointment title with a line break becomes the subject line of the notification.
    cli("appointment", case, "add", "2030-01-02T10:00", "Call\nBcc: evil@example.com", "--notify")
    cli("contact", case, "-m", "Please send your passport.", "--subject-line", "Your passport")
    out = cli("outbox", "deliver")
    no_traceback(out)
    assert "delivered 1, will retry 0, failed 1" in out.stdout
    [problem] = out.stderr.strip().splitlines()
    assert problem.startswith("O-1 ") and "subject has a line break" in problem and "gave up" in problem
    [(rcpts, msg)] = smtp.messages
    assert rcpts == ["ada@example.com"] and msg["Subject"] == "Your passport"
    assert [(r["status"], r["attempts"]) for r in outbox(db)] == [("failed", 1), ("delivered", 1)]
    [err] = cli.json("errors", "--json")
    assert err["case"] == case and err["failed"] == 1 and "line break" in err["last_error"]
    assert "\n" not in err["last_error"]


def test_a_bad_message_never_fails_a_command(cli, db, smtp):
    case = cli("create", "-w", "simple", "--subject-email", "bo@example.com").stdout.strip()
    # The command that queued it delivers it right away: it fails, the command does not.
    r = cli("appointment", case, "add", "2030-01-02T10:00", "Call\r\nX-Evil: 1", "--notify", env=DELIVER_ON)
    no_traceback(r)
    assert "1 message(s) not delivered yet" in r.stderr
    assert outbox(db)[0]["status"] == "failed"
    # An unrelated writing command afterwards is not touched by it.
    r = cli("note", case, "all fine", env=DELIVER_ON)
    no_traceback(r)
    assert r.stderr == ""
    assert smtp.messages == []


def test_an_effect_whose_subject_gets_a_line_break_from_the_case_fails_alone(cli, db, smtp, tmp_path):
    add_workflow(cli, tmp_path, [{"type": "email", "to": ["ops@example.com"], "subject": "Case {data.title}"}])
    bad = cli("create", "-w", "trust", "--data", json.dumps({"title": "x\nBcc: evil@example.com"})).stdout.strip()
    good = cli("create", "-w", "trust", "--data", json.dumps({"title": "fine"})).stdout.strip()
    cli("act", bad, "finish")
    cli("act", good, "finish")
    out = cli("outbox", "deliver")
    assert "delivered 1, will retry 0, failed 1" in out.stdout
    [(_, msg)] = smtp.messages
    assert msg["Subject"] == "Case fine" and msg["Bcc"] is None


def test_contact_refuses_a_subject_line_with_a_line_break(cli, db):
    case = cli("create", "-w", "simple", "--subject-email", "cy@example.com").stdout.strip()
    before = snapshot(db)
    r = cli("contact", case, "-m", "hello", "--subject-line", "Hi\nBcc: evil@example.com", expect=6)
    assert r.stderr.strip().splitlines() == ["casectl: error: --subject-line: one line only (it has a line break)"]
    assert snapshot(db) == before


READ_COMMANDS = [
    ["show", "C-1"],
    ["show", "C-1", "--json"],
    ["list"],
    ["search", "Ada"],
    ["history", "C-1"],
    ["blocks", "C-1"],
    ["stats"],
    ["export", "--format", "json"],
    ["subjects", "list"],
    ["views", "list"],
    ["workflows", "list"],
    ["outbox", "list"],
    ["errors"],
    ["hooks", "list"],
    ["appointments"],
]


def test_read_commands_never_deliver_and_do_not_wait_on_a_silent_receiver(cli, db):
    with SilentServer() as silent:
        cli("hooks", "add", silent.url)
        cli("create", "-w", "simple", "--subject-name", "Ada")  # queued, left for `outbox deliver`
        for args in READ_COMMANDS:
            started = time.monotonic()
            cli(*args, env=DELIVER_ON)
            assert time.monotonic() - started < 2, args
        assert silent.connections == 0
    [row] = outbox(db)
    assert (row["status"], row["attempts"]) == ("pending", 0)


def test_a_writing_command_tries_only_the_messages_it_queued(cli, db):
    with Receiver() as rx:
        cli("hooks", "add", rx.url, "--event", "case.created")
        first = cli("create", "-w", "simple").stdout.strip()  # left queued
        cli("note", first, "a note queues nothing", env=DELIVER_ON)
        assert rx.requests == []
        second = cli("create", "-w", "simple", env=DELIVER_ON).stdout.strip()
        assert [r.json()["case_id"] for r in rx.requests] == [second]
        assert [r["status"] for r in outbox(db)] == ["pending", "delivered"]
        cli("outbox", "deliver")
        assert sorted(r.json()["case_id"] for r in rx.requests) == sorted([first, second])


def test_webhook_ids_are_unique_across_databases_and_after_a_purge(cli, db, tmp_path, monkeypatch):
    secret = new_secret()
    monkeypatch.setenv("HOOK_SECRET", secret)
    other = tmp_path / "other.db"
    with Receiver(secret=secret) as rx:
        for path in (db, other):
            cli("--db", path, "init")
            cli("--db", path, "hooks", "add", rx.url, "--secret-env", "HOOK_SECRET")
            case = cli("--db", path, "create", "-w", "simple").stdout.strip()
            cli("--db", path, "approve", case)
            assert "delivered 2" in cli("--db", path, "outbox", "deliver").stdout
        # Purge the first database's case, then make a new one there: its events may take freed ids.
        later = {"CASECTL_NOW": "2030-03-01T09:00:00Z"}
        cli("purge", "--closed-before", "2030-02-01", env=later)
        cli("create", "-w", "simple", env=later)
        assert "delivered 1" in cli("outbox", "deliver", env=later).stdout
        assert len(rx.requests) == 5
        assert all(r.verified is not None for r in rx.requests)  # Standard Webhooks signatures hold
        keys = [r.headers["webhook-id"] for r in rx.requests]
        assert len(set(keys)) == 5 and all(re.fullmatch(r"msg_[0-9a-f]{16}_E-\d+_[0-9a-f]{8}", k) for k in keys)
        # The same event ids in both databases, distinct keys all the same.
        assert [r.json()["event_id"] for r in rx.requests[:4]] == ["E-1", "E-2", "E-1", "E-2"]


def test_the_digest_has_a_valid_message_id(cli, db, smtp):
    cli("create", "-w", "simple")
    cli("digest", "--to", "boss@example.com", env={"CASECTL_NOW": "2030-01-01T11:22:33Z"})
    [(_, msg)] = smtp.messages
    # RFC 5322 msg-id: "<" dot-atom-text "@" dot-atom-text ">", no colon.
    assert re.fullmatch(
        r"<[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9.-]+>", msg["Message-ID"]
    ), msg["Message-ID"]
    assert "20300101T112233Z" in msg["Message-ID"]


def test_the_digest_honours_the_delivery_timeout(cli, db, monkeypatch):
    cli("create", "-w", "simple")
    with SilentServer() as silent:
        for k, v in silent.env().items():
            monkeypatch.setenv(k, v)
        started = time.monotonic()
        r = cli("digest", "--to", "boss@example.com", env={"CASECTL_DELIVERY_TIMEOUT": "1"}, expect=1)
        assert time.monotonic() - started < 5
    assert "digest not sent" in r.stderr and "did not answer within 1s" in r.stderr
    no_traceback(r)


# --- 6. outbound calls go only where intended --------------------------------------------


@pytest.mark.parametrize(
    "url, says",
    [
        ("file:///etc/passwd", "is not an http:// or https:// address"),
        ("gopher://example.com:70/x", "is not an http:// or https:// address"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata address"),
        ("http://[fd00:ec2::254]/latest", "cloud metadata address"),
        ("http://metadata.google.internal./computeMetadata/v1/", "cloud metadata address"),
        ("http://[::ffff:169.254.169.254]/", "cloud metadata address"),
        ("http://169.254.10.1/", "link-local address"),
        ("http://[fe80::1]/", "link-local address"),
        ("http://127.0.0.1:9/x", "loopback address"),
        ("http://127.1:9/x", "loopback address"),
        ("http://0x7f000001/x", "loopback address"),
        ("http://[::1]/x", "loopback address"),
        ("http://10.1.2.3/x", "private address"),
        ("http://192.168.1.1/x", "private address"),
        ("http://0.0.0.0:8080/", "not an address a message can go to"),
        ("https://alice:s3cr3t-pw@crm.example.com/hooks", "has credentials in it"),
    ],
)
def test_hooks_add_refuses_targets_messages_may_not_go_to(cli, db, monkeypatch, url, says):
    monkeypatch.delenv("CASECTL_ALLOW_PRIVATE_TARGETS")
    r = cli("hooks", "add", url, expect=6)
    [line] = r.stderr.strip().splitlines()
    assert line.startswith("casectl: error: URL: ") and says in line
    assert "s3cr3t-pw" not in line
    assert cli.json("hooks", "list", "--json") == []


def test_private_targets_only_as_the_configuration_allows(cli, db, tmp_path, monkeypatch):
    monkeypatch.delenv("CASECTL_ALLOW_PRIVATE_TARGETS")
    cli("hooks", "add", "http://10.1.2.3/x", expect=6)
    cli("hooks", "add", "http://10.1.2.3/x", env={"CASECTL_ALLOW_PRIVATE_TARGETS": "10.0.0.0/8"})
    assert (
        "loopback"
        in cli(
            "hooks", "add", "http://127.0.0.1/x", env={"CASECTL_ALLOW_PRIVATE_TARGETS": "10.0.0.0/8"}, expect=6
        ).stderr
    )
    config = tmp_path / "config.toml"
    config.write_text("[delivery]\nallow_private_targets = true\n")
    cli("hooks", "add", "http://127.0.0.1/x", env={"CASECTL_CONFIG": str(config)})
    # Never link-local or metadata, whatever the configuration says.
    assert (
        "metadata"
        in cli("hooks", "add", "http://169.254.169.254/", env={"CASECTL_CONFIG": str(config)}, expect=6).stderr
    )
    r = cli("hooks", "add", "http://10.1.2.3/x", env={"CASECTL_ALLOW_PRIVATE_TARGETS": "maybe"}, expect=6)
    assert "CASECTL_ALLOW_PRIVATE_TARGETS: 'maybe'" in r.stderr
    assert len(cli.json("hooks", "list", "--json")) == 2


def fake_dns(monkeypatch, name: str, *answers: str) -> None:
    """`name` resolves to each answer in turn (the last one from then on); other names as usual.
    There is no DNS server to point at here: this stands in for one, and for one that changes."""
    import socket

    real = socket.getaddrinfo
    left = list(answers)

    def getaddrinfo(host, port, *args, **kwargs):
        if host != name:
            return real(host, port, *args, **kwargs)
        ip = left.pop(0) if len(left) > 1 else left[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, int(port or 80)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_a_name_that_resolves_to_a_refused_address_fails_at_delivery(cli, db, monkeypatch):
    fake_dns(monkeypatch, "crm.internal.example", "127.0.0.1")
    with Receiver() as rx:
        cli("hooks", "add", f"http://crm.internal.example:{rx.port}/hook")  # a name: judged when resolved
        cli("create", "-w", "simple")
        monkeypatch.delenv("CASECTL_ALLOW_PRIVATE_TARGETS")
        out = cli("outbox", "deliver")
        assert "failed 1" in out.stdout
        assert "crm.internal.example resolves to 127.0.0.1, a loopback address" in out.stderr
        assert rx.requests == []
        assert "loopback" in cli.json("errors", "--json")[0]["last_error"]
        # Allowed by the configuration, the same message goes once it is queued again.
        cli("outbox", "retry", "--all-failed")
        assert "delivered 1" in cli("outbox", "deliver", env={"CASECTL_ALLOW_PRIVATE_TARGETS": "1"}).stdout
        assert len(rx.ok()) == 1


def test_a_name_that_changes_its_answer_is_caught_at_the_connection(cli, db, monkeypatch):
    """DNS rebinding: a public address when checked, a loopback one when connecting."""
    fake_dns(monkeypatch, "rebind.example", "93.184.216.34", "127.0.0.1")
    with Receiver() as rx:
        cli("hooks", "add", f"http://rebind.example:{rx.port}/hook")
        cli("create", "-w", "simple")
        monkeypatch.delenv("CASECTL_ALLOW_PRIVATE_TARGETS")
        out = cli("outbox", "deliver")
        assert "failed 1" in out.stdout and "the connection reached 127.0.0.1, a loopback address" in out.stderr
        assert rx.requests == []


def test_localhost_is_loopback_when_the_hook_is_added(cli, db, monkeypatch):
    monkeypatch.delenv("CASECTL_ALLOW_PRIVATE_TARGETS")
    assert "loopback address" in cli("hooks", "add", "http://localhost:8080/x", expect=6).stderr
    assert "loopback address" in cli("hooks", "add", "http://api.localhost./x", expect=6).stderr


def test_effect_targets_keep_their_scheme_host_and_port(cli, db, tmp_path):
    bad = [
        {"type": "webhook", "url": "http://{data.host}/steal"},
        {"type": "webhook", "url": "file:///etc/passwd"},
    ]
    wf = {
        "name": "leaky",
        "initial": "open",
        "statuses": [{"name": "open"}, {"name": "done", "final": True}],
        "actions": [{"name": "finish", "from": ["open"], "to": "done", "decision": "approved", "effects": bad}],
    }
    path = tmp_path / "leaky.json"
    path.write_text(json.dumps(wf))
    r = cli("workflows", "add", str(path), expect=6)
    assert "cannot come from a template" in r.stderr and "is not an http:// or https:// address" in r.stderr
    with Receiver() as rx:
        add_workflow(
            cli, tmp_path, [{"type": "crm", "url": f"http://127.0.0.1:{rx.port}/a/{{data.host}}?q={{data.host}}"}]
        )
        case = cli("create", "-w", "trust", "--data", json.dumps({"host": f"127.0.0.1:{rx.port}/x#"})).stdout.strip()
        cli("act", case, "finish")
        out = cli("outbox", "deliver")
        no_traceback(out)
        assert "delivered 1, will retry 0, failed 0" in out.stdout
        [req] = rx.requests
        assert req.path == f"/a/127.0.0.1%3A{rx.port}%2Fx%23?q=127.0.0.1%3A{rx.port}%2Fx%23"


def test_header_secrets_come_only_from_declared_variables(cli, db, tmp_path, monkeypatch, smtp):
    monkeypatch.setenv("CASECTL_SMTP_PASSWORD", "smtp-PASSWORD-1")
    monkeypatch.setenv("CRM_TOKEN", "crm-TOKEN-2")
    monkeypatch.setenv("OTHER_SECRET", "other-SECRET-3")
    with Receiver() as rx:
        add_workflow(
            cli,
            tmp_path,
            [
                {"type": "crm", "url": rx.url + "/1", "headers": {"X-Leak": "{env.CASECTL_SMTP_PASSWORD}"}},
                {"type": "crm", "url": rx.url + "/2", "headers": {"X-Other": "{env.OTHER_SECRET}"}},
                {
                    "type": "crm",
                    "url": rx.url + "/3",
                    "secret_env": "CRM_TOKEN",
                    "headers": {"Authorization": "Bearer {env.CRM_TOKEN}", "X-Name": "{data.name}"},
                },
                {"type": "crm", "url": rx.url + "/4", "secret_env": "CASECTL_SMTP_PASSWORD"},
            ],
        )
        # The case's data may name a secret: it is sent as the text it is.
        case = cli("create", "-w", "trust", "--data", json.dumps({"name": "{env.CRM_TOKEN}"})).stdout.strip()
        cli("act", case, "finish")
        out = cli("outbox", "deliver")
        assert "delivered 1, will retry 0, failed 3" in out.stdout
        assert "{env.OTHER_SECRET} is not a declared secret" in out.stderr
        assert out.stderr.count("holds the SMTP password") == 2
        [req] = rx.requests
        assert req.path == "/hook/3"
        assert req.headers["authorization"] == "Bearer crm-TOKEN-2" and req.headers["x-name"] == "{env.CRM_TOKEN}"
        # A variable the configuration lists as a secret may be used.
        cli("outbox", "retry", "O-2")
        cli("outbox", "deliver", env={"CASECTL_SECRET_ENV": "OTHER_SECRET"})
        assert rx.requests[-1].path == "/hook/2" and rx.requests[-1].headers["x-other"] == "other-SECRET-3"
    seen = json.dumps([r.headers for r in rx.requests]) + out.stderr
    assert "smtp-PASSWORD-1" not in seen
    assert b"smtp-PASSWORD-1" not in stored(db) and b"crm-TOKEN-2" not in stored(db)


def test_an_old_style_message_keeps_working(cli, db):
    """Messages queued before idempotency keys were given get a stable one from the database's instance id."""
    with Receiver() as rx:
        conn = raw_connect(db)
        with conn:
            conn.execute(
                "INSERT INTO outbox (kind, target, payload, status, attempts, next_attempt_at, created_at, "
                "updated_at) VALUES ('webhook', ?, '{\"body\": {}}', 'pending', 0, ?, ?, ?)",
                (rx.url, T0, T0, T0),
            )
        conn.close()
        cli("outbox", "deliver")
        [req] = rx.requests
        assert re.fullmatch(r"msg_[0-9a-f]{16}_O-1", req.headers["webhook-id"])


def test_a_receiver_on_a_closed_port_is_still_retried(cli, db):
    """Refusals fail at once; a receiver that is merely down is retried as before."""
    cli("hooks", "add", f"http://127.0.0.1:{free_port()}/x")
    cli("create", "-w", "simple")
    out = cli("outbox", "deliver")
    assert "will retry 1" in out.stdout and "cannot connect" in out.stderr


def test_email_parts_survive_unchanged(cli, db, smtp):
    """The checks on headers leave a normal message as it was."""
    case = cli("create", "-w", "simple", "--subject-email", "dee@example.com").stdout.strip()
    cli("contact", case, "-m", "Line one\nLine two", "--subject-line", "Über uns: ok")
    cli("outbox", "deliver")
    [(_, msg)] = smtp.messages
    assert msg["Subject"] == "Über uns: ok" and parts(msg)["text/plain"].splitlines() == ["Line one", "Line two"]
