"""casectl payment: exact decimal amounts, ISO 4217 currencies, the workflow's payment event,
once per reference, shown in show, list --fields and the history, and erased by redact."""

from __future__ import annotations

import json

import pytest

from conftest import snapshot


def screening(cli, status="pending_payment", name="Ada Lovelace"):
    return cli("create", "-w", "screening", "--status", status, "--subject-name", name).stdout.strip()


def payment_events(cli, cid):
    return [e for e in cli.json("history", cid, "--json")["events"] if e["kind"] == "payment"]


def test_a_payment_fires_payment_received_and_is_recorded_in_the_history(run, db):
    cid = screening_run(run)
    r = run("payment", cid, "--amount", "42.5", "--currency", "gbp", "--reference", "INV-2041")
    assert r.returncode == 0, r.stderr
    event = r.stdout.split(" as ")[1].split(";")[0]
    assert r.stdout.strip() == (
        f"{cid}: recorded payment 42.50 GBP by subject (ref INV-2041) as {event}; "
        "payment_received: pending_payment -> pending"
    )
    show = json.loads(run("show", cid, "--json").stdout)
    assert show["status"] == "pending"
    assert show["payments"] == [
        {
            "event": event,
            "at": show["payments"][0]["at"],
            "actor": "tester",
            "amount": "42.50",
            "currency": "GBP",
            "by": "subject",
            "reference": "INV-2041",
        }
    ]
    history = json.loads(run("history", cid, "--json").stdout)["events"]
    kinds = [(e["kind"], e.get("action")) for e in history][-2:]
    assert kinds == [("payment", None), ("system", "payment_received")]
    assert history[-1]["data"]["payment"] == event
    text = run("show", cid).stdout
    assert "payments (paid 42.50 GBP):" in text and "42.50 GBP by subject, ref INV-2041 (recorded by tester)" in text
    assert run("db", "check").returncode == 0


def screening_run(run):
    r = run("create", "-w", "screening", "--status", "pending_payment", "--subject-name", "Ada Lovelace")
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_the_customer_pays_by_default_in_pending_customer_payment(cli, db):
    cid = screening(cli, status="pending_customer_payment")
    out = cli.json("payment", cid, "--amount", "120", "--currency", "EUR", "--json")
    assert out["payment"]["by"] == "customer" and out["payment"]["amount"] == "120.00"
    assert (
        out["fired"] == "payment_received"
        and out["status"] == "pending"
        and out["previous_status"] == ("pending_customer_payment")
    )
    other = screening(cli, status="pending_customer_payment")
    assert cli.json("payment", other, "--amount", "1", "--currency", "EUR", "--by", "subject", "--json")["payment"][
        "by"
    ] == ("subject")


def test_amounts_keep_the_currencys_minor_units_and_are_never_rounded(cli, db):
    cid = cli("create", "-w", "simple", "--subject-name", "Ada").stdout.strip()
    for amount, currency, expected in [
        ("42.5", "GBP", "42.50"),
        ("42.500", "GBP", "42.50"),
        ("1000", "JPY", "1000"),
        ("1.250", "KWD", "1.250"),
        ("0.01", "USD", "0.01"),
        ("999999999999.99", "EUR", "999999999999.99"),
    ]:
        out = cli.json("payment", cid, "--amount", amount, "--currency", currency, "--json")
        assert (out["payment"]["amount"], out["payment"]["currency"]) == (expected, currency)
    assert cli("list", "--fields", "id,paid").stdout.strip() == (
        f"{cid}\t999999999999.99 EUR; 85.00 GBP; 1000 JPY; 1.250 KWD; 0.01 USD"
    )


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--amount", "1.005", "--currency", "GBP"], 6, "more decimal places than GBP has (2)"),
        (["--amount", "10.5", "--currency", "JPY"], 6, "more decimal places than JPY has (0)"),
        (["--amount", "0", "--currency", "GBP"], 6, "must be more than zero"),
        (["--amount", "-3", "--currency", "GBP"], 6, "must be more than zero"),
        (["--amount", "1e3", "--currency", "GBP"], 6, "is not a decimal amount"),
        (["--amount", "NaN", "--currency", "GBP"], 6, "is not a decimal amount"),
        (["--amount", "12,50", "--currency", "GBP"], 6, "is not a decimal amount"),
        (["--amount", "١٢", "--currency", "GBP"], 6, "is not a decimal amount"),
        (["--amount", "1" + "0" * 16, "--currency", "GBP"], 6, "is too large"),
        (["--amount", "5", "--currency", "ZZZ"], 6, "not an ISO 4217 currency code"),
        (["--amount", "5", "--currency", "XAU"], 6, "not an ISO 4217 currency code"),
        (["--amount", "5", "--currency", "pounds"], 6, "not a three-letter ISO 4217 code"),
        (["--amount", "5", "--currency", "GBP", "--by", "bank"], 2, "not one of subject, customer"),
        (["--amount", "5", "--currency", "GBP", "--reference", "a\nb"], 6, "one line"),
        (["--currency", "GBP"], 2, "--amount"),
    ],
)
def test_a_bad_payment_is_one_line_with_its_exit_code_and_writes_nothing(cli, db, db_path, args, code, message):
    cid = screening(cli)
    before = snapshot(db_path)
    r = cli("payment", cid, *args, expect=code)
    assert message in r.stderr and len(r.stderr.strip().splitlines()) <= 2, r.stderr
    assert r.stderr.startswith("casectl: error:")
    assert snapshot(db_path) == before


def test_a_reference_is_recorded_once_so_a_retrying_script_does_not_pay_twice(cli, db, db_path):
    cid = screening(cli)
    first = cli.json("payment", cid, "--amount", "10", "--currency", "GBP", "--reference", "R-1", "--json")
    before = snapshot(db_path)
    r = cli("payment", cid, "--amount", "10", "--currency", "GBP", "--reference", "R-1", expect=5)
    assert f"already has payment R-1 (10.00 GBP, {first['event']}" in r.stderr
    assert snapshot(db_path) == before
    cli("payment", cid, "--amount", "10", "--currency", "GBP", "--reference", "R-2")
    assert [p["data"].get("reference") for p in payment_events(cli, cid)] == ["R-1", "R-2"]


def test_a_closed_case_takes_no_payment_and_an_unknown_case_is_exit_3(cli, db, db_path):
    cid = cli("create", "-w", "simple", "--subject-name", "Ada").stdout.strip()
    cli("approve", cid)
    before = snapshot(db_path)
    r = cli("payment", cid, "--amount", "10", "--currency", "GBP", expect=4)
    assert "closed" in r.stderr
    cli("payment", "C-999", "--amount", "10", "--currency", "GBP", expect=3)
    assert snapshot(db_path) == before


def test_where_the_workflow_has_no_payment_event_the_payment_is_only_recorded(cli, db):
    cid = cli("create", "-w", "simple", "--subject-name", "Ada").stdout.strip()
    out = cli.json("payment", cid, "--amount", "5", "--currency", "USD", "--json")
    assert out["fired"] is None and "no payment_received" in out["not_fired"] and out["status"] == "open"
    text = cli("payment", cid, "--amount", "6", "--currency", "USD").stdout
    assert text.strip().endswith("; status stays open")
    # Screening, but past the payment states: recorded, not fired, and the history says nothing moved.
    later = screening(cli, status="pending")
    out = cli.json("payment", later, "--amount", "5", "--currency", "GBP", "--json")
    assert out["fired"] is None and "not allowed in status pending" in out["not_fired"]
    assert [e["kind"] for e in cli.json("history", later, "--json")["events"]][-1] == "payment"


def test_dry_run_and_ids_from_stdin_are_all_or_nothing(cli, db, db_path):
    a, b = screening(cli, name="A"), screening(cli, name="B")
    before = snapshot(db_path)
    dry = cli("payment", a, "--amount", "3", "--currency", "GBP", "--dry-run")
    assert dry.stdout.startswith(f"{a}: would record payment 3.00 GBP by subject")
    cli("payment", "-", "--amount", "3", "--currency", "GBP", input=f"{a}\nC-99\n", expect=3)
    assert snapshot(db_path) == before
    out = cli.json("payment", "-", "--amount", "3", "--currency", "GBP", "--json", input=f"{a}\n{b}\n")
    assert [r["status"] for r in out["results"]] == ["pending", "pending"]


def test_list_fields_reads_payments_only_when_asked(cli, db):
    a, b = screening(cli, name="A"), screening(cli, name="B")
    cli("payment", a, "--amount", "7.25", "--currency", "GBP", "--reference", "X")
    cli("payment", a, "--amount", "2.75", "--currency", "GBP")
    rows = {r["id"]: r for r in cli.json("list", "--fields", "id,paid,payments", "--json")}
    assert rows[a]["paid"] == "10.00 GBP" and [p["amount"] for p in rows[a]["payments"]] == ["7.25", "2.75"]
    assert rows[b]["paid"] is None and rows[b]["payments"] == []
    plain = cli.json("list", "--json")
    assert all("paid" not in r and "payments" not in r for r in plain)
    bad = cli("list", "--fields", "id,payed", expect=2)
    assert "payed" in bad.stderr


def test_redact_erases_the_payment_reference_and_keeps_the_amount(cli, db):
    cid = screening(cli)
    cli("payment", cid, "--amount", "42.50", "--currency", "GBP", "--reference", "Ada Lovelace card 4242")
    subject = cli.json("show", cid, "--json")["subject"]["id"]
    cli("redact", subject)
    [p] = cli.json("show", cid, "--json")["payments"]
    assert p["reference"] == "[erased]" and (p["amount"], p["currency"]) == ("42.50", "GBP")
    assert "4242" not in cli("history", cid).stdout
    cli("db", "check")
