"""Email effects and the re-upload email, delivered to a real aiosmtpd server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import outbox, snapshot
from outside_servers import SmtpServer, free_port, parts

T0 = "2030-01-01T09:00:00Z"


@pytest.fixture(autouse=True)
def pinned(monkeypatch):
    monkeypatch.setenv("CASECTL_NOW", T0)


def stored_anywhere(db, text: str) -> bool:
    """Whether `text` is anywhere in the database: in the SQLite file's bytes, or in a row on PostgreSQL."""
    if isinstance(db, Path):
        return text.encode() in db.read_bytes()
    return text in repr(snapshot(db))


def add_workflow(cli, tmp_path, effects_on_action, workflow_effects=()):
    wf = {
        "name": "mailer",
        "initial": "open",
        "statuses": [{"name": "open"}, {"name": "done", "final": True}],
        "actions": [
            {
                "name": "finish",
                "from": ["open"],
                "to": "done",
                "decision": "approved",
                "effects": list(effects_on_action),
            }
        ],
        "effects": list(workflow_effects),
    }
    path = tmp_path / "mailer.json"
    path.write_text(json.dumps(wf))
    cli("workflows", "add", str(path))


def test_email_effect_has_text_and_html_parts(cli, db, smtp, tmp_path):
    add_workflow(
        cli,
        tmp_path,
        [
            {
                "type": "email",
                "to": ["{subject.email}", "ops@example.com"],
                "subject": "Case {case.id} is {case.status}",
                "body": "Hello {subject.name}, your case {case.id} was {case.decision}.",
                "html": "<p>Hello <b>{subject.name}</b>, case {case.id}: {case.decision}</p>",
            }
        ],
    )
    case = cli(
        "create", "-w", "mailer", "--subject-name", "Ada <script>", "--subject-email", "ada@example.com"
    ).stdout.strip()
    cli("act", case, "finish")
    assert "delivered 1" in cli("outbox", "deliver").stdout
    [(rcpts, msg)] = smtp.messages
    assert rcpts == ["ada@example.com", "ops@example.com"]
    assert msg["Subject"] == f"Case {case} is done"
    assert msg["From"] == "casectl@example.com"
    assert msg.get_content_type() == "multipart/alternative"
    body = parts(msg)
    assert body["text/plain"].strip() == f"Hello Ada <script>, your case {case} was approved."
    # Case fields are escaped inside the HTML template.
    assert "<b>Ada &lt;script&gt;</b>" in body["text/html"] and "<script>" not in body["text/html"]
    [row] = outbox(db)
    key = json.loads(row["payload"])["message_id"]  # given when queued: stable across retries
    assert key.startswith("msg_") and f"_E-{row['event_id']}_" in key
    assert msg["Message-ID"] == f"<{key}@example.com>" and msg["X-Casectl-Id"] == key


def test_workflow_email_on_created_gets_an_html_part_from_the_text(cli, db, smtp, tmp_path):
    add_workflow(
        cli,
        tmp_path,
        [],
        [
            {
                "type": "email",
                "to": ["intake@example.com"],
                "on": ["case.created"],
                "subject": "New case {case.id}",
                "body": "Amount: {data.amount} & more",
            }
        ],
    )
    case = cli("create", "-w", "mailer", "--data", '{"amount": 5}').stdout.strip()
    cli("act", case, "finish")  # a status change: this effect listens to case.created only
    cli("outbox", "deliver")
    [(rcpts, msg)] = smtp.messages
    assert msg["Subject"] == f"New case {case}"
    body = parts(msg)
    assert body["text/plain"].strip() == "Amount: 5 & more"
    assert "Amount: 5 &amp; more" in body["text/html"]


def test_reupload_email_from_the_blocks_work_goes_through_the_outbox(cli, db, smtp):
    case = cli(
        "create",
        "-w",
        "kyb",
        "--subject-name",
        "Bo",
        "--subject-email",
        "bo@example.com",
        "--block",
        "document:passport",
    ).stdout.strip()
    cli("event", case, "collection_completed")
    cli("block", case, "passport", "reupload", "--reason", "blurry scan")
    cli("act", case, "request_reuploads", env={"CASECTL_NO_DELIVER": ""})  # delivered right after the command
    [(rcpts, msg)] = smtp.messages
    assert rcpts == ["bo@example.com"]
    assert "passport" in parts(msg)["text/plain"]
    assert set(parts(msg)) == {"text/plain", "text/html"}
    assert [r["status"] for r in outbox(db)] == ["delivered"]


def test_smtp_login_password_only_from_the_environment(cli, db, tmp_path, monkeypatch):
    with SmtpServer(password="pa55-word-XYZ") as server:
        for k, v in server.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("CASECTL_SMTP_USER", "casectl")
        monkeypatch.setenv("CASECTL_SMTP_PASSWORD", "wrong-guess-QQQ")
        add_workflow(cli, tmp_path, [{"type": "email", "to": ["a@example.com"]}])
        case = cli("create", "-w", "mailer").stdout.strip()
        cli("act", case, "finish")
        out = cli("outbox", "deliver")
        assert "SMTP login as casectl refused (535)" in out.stderr
        assert "wrong-guess-QQQ" not in out.stderr + out.stdout
        assert "wrong-guess-QQQ" not in json.dumps(cli.json("errors", "--json"))
        assert server.messages == []
        monkeypatch.setenv("CASECTL_SMTP_PASSWORD", "pa55-word-XYZ")
        assert "delivered 1" in cli("outbox", "deliver", env={"CASECTL_NOW": "2030-01-01T10:00:00Z"}).stdout
        assert len(server.messages) == 1
    assert not stored_anywhere(db, "pa55-word-XYZ") and not stored_anywhere(db, "wrong-guess-QQQ")


def test_config_file_instead_of_environment(cli, db, tmp_path, monkeypatch):
    with SmtpServer() as server:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[smtp]\nhost = "127.0.0.1"\nport = {server.port}\nfrom = "desk@example.org"\ntls = "none"\n'
        )
        # No config file from the configuration directory (the database's chain key goes along).
        shutil.copytree(tmp_path / "xdg-config" / "casectl" / "keys", tmp_path / "nothing-here" / "casectl" / "keys")
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "nothing-here"))
        monkeypatch.setenv("CASECTL_CONFIG", str(config))
        add_workflow(cli, tmp_path, [{"type": "email", "to": ["a@example.com"]}])
        cli("act", cli("create", "-w", "mailer").stdout.strip(), "finish")
        cli("outbox", "deliver")
        [(_, msg)] = server.messages
        assert msg["From"] == "desk@example.org"


def test_a_password_in_the_config_file_is_refused(cli, db, tmp_path, monkeypatch):
    config = tmp_path / "config.toml"
    config.write_text('[smtp]\nhost = "127.0.0.1"\npassword = "hunter2-secret"\n')
    monkeypatch.setenv("CASECTL_CONFIG", str(config))
    add_workflow(cli, tmp_path, [{"type": "email", "to": ["a@example.com"]}])
    cli("act", cli("create", "-w", "mailer").stdout.strip(), "finish")
    out = cli("outbox", "deliver")
    assert "password is not allowed there" in out.stderr and "hunter2-secret" not in out.stderr
    assert outbox(db)[0]["status"] == "pending"


def test_no_smtp_server_configured_keeps_the_email_queued(cli, db, tmp_path):
    add_workflow(cli, tmp_path, [{"type": "email", "to": ["a@example.com"]}])
    cli("act", cli("create", "-w", "mailer").stdout.strip(), "finish")
    cli("outbox", "deliver")
    [row] = outbox(db)
    assert row["status"] == "pending" and "no SMTP server configured" in row["last_error"]


def test_smtp_server_down_then_up(cli, db, tmp_path, monkeypatch):
    port = free_port()
    monkeypatch.setenv("CASECTL_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CASECTL_SMTP_PORT", str(port))
    add_workflow(cli, tmp_path, [{"type": "email", "to": ["a@example.com"]}])
    cli("act", cli("create", "-w", "mailer").stdout.strip(), "finish")
    out = cli("outbox", "deliver")
    assert f"cannot send through SMTP server 127.0.0.1:{port}" in out.stderr
    with SmtpServer(port=port) as server:
        cli("outbox", "deliver", env={"CASECTL_NOW": "2030-01-01T09:05:00Z"})
        assert len(server.messages) == 1
