"""The outbox: delivery after each command, a killed deliverer, concurrent
deliverers, listing and retrying; with real receivers on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from conftest import casectl_bin, outbox
from outside_servers import Receiver, free_port, wait_for

T0 = "2030-01-01T09:00:00Z"
DELIVER_ON = {"CASECTL_NO_DELIVER": ""}


@pytest.fixture(autouse=True)
def pinned(monkeypatch):
    monkeypatch.setenv("CASECTL_NOW", T0)


def test_each_command_delivers_what_it_queued(cli, db):
    with Receiver() as rx:
        cli("hooks", "add", rx.url)
        case = cli("create", "-w", "simple", env=DELIVER_ON).stdout.strip()
        assert [r.json()["type"] for r in rx.ok()] == ["case.created"]
        cli("approve", case, env=DELIVER_ON)
        assert [r.json()["type"] for r in rx.ok()] == ["case.created", "case.decided"]
        # --no-deliver (and the tests' default CASECTL_NO_DELIVER=1) leave messages queued.
        cli("--no-deliver", "create", "-w", "simple", env=DELIVER_ON)
        cli("create", "-w", "simple")
        assert len(rx.requests) == 2
        assert [r["status"] for r in outbox(db)] == ["delivered", "delivered", "pending", "pending"]


def test_a_down_receiver_never_fails_the_command(cli, db):
    cli("hooks", "add", f"http://127.0.0.1:{free_port()}/x")
    result = cli("create", "-w", "simple", env=DELIVER_ON)
    assert result.stdout.strip() == "C-1"
    assert "1 message(s) not delivered yet" in result.stderr
    [row] = outbox(db)
    assert row["status"] == "pending" and "cannot connect" in row["last_error"]
    # The failure is visible where seed 001 looks for it.
    assert cli.json("errors", "--json")[0]["case"] == "C-1"
    shown = cli("show", "C-1").stdout
    assert "Deliveries:" in shown and "cannot connect" in shown
    assert cli.json("show", "C-1", "--json")["deliveries"][0]["status"] == "pending"


def test_nothing_queued_costs_no_heavy_import(cli, db, tmp_path):
    """After a command that queued nothing: no requests, no smtplib in the process, even with
    another command's message due; a command that queues one loads them to send it."""
    probe = (
        "import sys\n"
        "from casectl.cli.app import app\n"
        "try:\n"
        "    app(sys.argv[1:], standalone_mode=False)\n"
        "finally:\n"
        "    print(sorted(m for m in ('requests', 'smtplib', 'casectl.services.notify') if m in sys.modules))\n"
    )
    env = {**os.environ, "CASECTL_NO_DELIVER": ""}

    def loaded(*args: str) -> str:
        out = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip().splitlines()[-1]

    assert loaded("list") == "[]"
    cli("hooks", "add", f"http://127.0.0.1:{free_port()}/x")
    cli("create", "-w", "simple")  # queued, not delivered (the tests' CASECTL_NO_DELIVER=1)
    assert loaded("list") == "[]"
    # The same probe sees requests loaded when the command queued a message, so the check above means something.
    assert loaded("create", "-w", "simple") == "['casectl.services.notify', 'requests']"


def test_killed_deliver_loses_nothing(cli, db):
    with Receiver(hang_first=1, hang_for=30) as rx:
        cli("hooks", "add", rx.url)
        cli("create", "-w", "simple")
        env = {**os.environ, "CASECTL_NOW": T0}
        proc = subprocess.Popen(
            [casectl_bin(), "outbox", "deliver", "--timeout", "60"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert wait_for(lambda: len(rx.requests) == 1, timeout=20)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
        [row] = outbox(db)
        assert row["status"] == "sending" and row["claimed_by"]
        # The claim's lease still holds: nobody else sends it meanwhile.
        assert "delivered 0, will retry 0" in cli("outbox", "deliver").stdout
        # After the lease (2 x 60s + 30s) it is claimable again and goes out, with the same id.
        out = cli("outbox", "deliver", env={"CASECTL_NOW": "2030-01-01T09:03:00Z"})
        assert "delivered 1" in out.stdout
        ids = [r.headers["webhook-id"] for r in rx.requests]
        assert len(ids) == 2 and len(set(ids)) == 1
    [row] = outbox(db)
    assert (row["status"], row["attempts"], row["claimed_by"]) == ("delivered", 2, None)


def test_concurrent_deliverers_never_send_one_message_twice(cli, db):
    with Receiver(delay=0.2) as rx:
        cli("hooks", "add", rx.url, "--event", "case.created")
        for _ in range(8):
            cli("create", "-w", "simple")
        env = {**os.environ, "CASECTL_NOW": T0}
        procs = [
            subprocess.Popen(
                [casectl_bin(), "outbox", "deliver"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(3)
        ]
        outs = [p.communicate(timeout=60) for p in procs]
        assert all(p.returncode == 0 for p in procs), outs
        ids = [r.headers["webhook-id"] for r in rx.requests]
        assert len(ids) == 8 and len(set(ids)) == 8
        total = sum(int(o[0].split()[1].rstrip(",")) for o in outs)
        assert total == 8
    assert {r["status"] for r in outbox(db)} == {"delivered"}
    assert {r["attempts"] for r in outbox(db)} == {1}


def test_list_filters_and_formats(cli, db):
    cli("hooks", "add", f"http://127.0.0.1:{free_port()}/x")
    cli("create", "-w", "simple")
    cli("create", "-w", "simple")
    cli("outbox", "deliver", "--max-attempts", "1", "--limit", "1")
    assert [r["status"] for r in cli.json("outbox", "list", "--json")] == ["failed", "pending"]
    assert [r["id"] for r in cli.json("outbox", "list", "--status", "pending", "--json")] == ["O-2"]
    assert [r["id"] for r in cli.json("outbox", "list", "--case", "C-2", "--json")] == ["O-2"]
    csv = cli("outbox", "list", "--format", "csv").stdout.splitlines()
    assert csv[0].startswith("id,case,event,kind") and len(csv) == 3


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["outbox", "retry"], 2, "give one outbox id (O-3) or --all-failed"),
        (["outbox", "retry", "O-1", "--all-failed"], 2, "give one outbox id"),
        (["outbox", "retry", "O-99"], 3, "no outbox message 'O-99'"),
        (["outbox", "retry", "O-2"], 2, "O-2 is pending, not failed"),
        (["outbox", "list", "--status", "lost"], 2, "unknown outbox status 'lost'"),
        (["outbox", "list", "--format", "xml"], 2, "unknown format 'xml'"),
        (["outbox", "list", "--case", "C-77"], 3, "no case"),
        (["outbox", "deliver", "--timeout", "0"], 2, "--timeout must be greater than 0"),
        (["outbox", "deliver", "--max-attempts", "0"], 2, "--max-attempts must be at least 1"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(cli, db, args, code, message):
    cli("hooks", "add", f"http://127.0.0.1:{free_port()}/x")
    cli("create", "-w", "simple")
    cli("create", "-w", "simple")
    cli("outbox", "deliver", "--max-attempts", "1", "--limit", "1")
    before = outbox(db)
    result = cli(*args, expect=code)
    assert message in result.stderr
    assert outbox(db) == before


def test_retry_one_failed_message(cli, db):
    port = free_port()
    cli("hooks", "add", f"http://127.0.0.1:{port}/x")
    cli("create", "-w", "simple")
    cli("outbox", "deliver", "--max-attempts", "1")
    assert cli("outbox", "retry", "o1").stdout.strip() == "queued again: O-1"
    [row] = outbox(db)
    assert (row["status"], row["attempts"], row["next_attempt_at"]) == ("pending", 0, T0)
    with Receiver(port=port) as rx:
        cli("outbox", "retry", "--all-failed", env=DELIVER_ON)  # nothing failed now: nothing queued, nothing sent
        assert rx.requests == []
        cli("outbox", "deliver")
        assert len(rx.ok()) == 1


def test_retry_delivers_what_it_queued_again(cli, db):
    port = free_port()
    cli("hooks", "add", f"http://127.0.0.1:{port}/x")
    cli("create", "-w", "simple")
    cli("outbox", "deliver", "--max-attempts", "1")
    with Receiver(port=port) as rx:
        assert cli("outbox", "retry", "O-1", env=DELIVER_ON).stdout.strip() == "queued again: O-1"
        assert len(rx.ok()) == 1
    assert outbox(db)[0]["status"] == "delivered"


def test_no_deliver_works_after_the_command_too(cli, db):
    """`--no-deliver` may stand before or after the command, like --db and --actor."""
    with Receiver() as receiver:
        cli("hooks", "add", receiver.url, "--event", "case.created")
        cli("create", "--workflow", "simple", "--no-deliver", env=DELIVER_ON)
        assert receiver.requests == [] and outbox(db)[-1]["status"] == "pending"
        cli("--no-deliver", "create", "--workflow", "simple", env=DELIVER_ON)
        assert receiver.requests == []
        cli("list", env=DELIVER_ON)  # a read command delivers nothing, not even what is due
        assert receiver.requests == []
        cli("outbox", "deliver")
        assert wait_for(lambda: len(receiver.requests) == 2)
