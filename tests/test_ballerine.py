"""Ballerine's kyb_kyc with its KYC child (examples/workflows/ballerine-*.json), driven through its
main paths against the outside APIs it calls, served on 127.0.0.1: with and without UBOs, a
failed invitation, a revision."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from outside_servers import free_port

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "workflows"
ORIGINS = ("https://email-api.example.com", "https://unified-api.example.com")


class Apis:
    """The email API, the company registry and the KYC vendor, each answering JSON."""

    def __init__(self, *, invitation_status: int = 202):
        self.invitation_status = invitation_status
        self.seen: list[tuple[str, str, dict]] = []
        self.port = free_port()
        apis = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self):
                size = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(size) or b"{}") if size else {}
                apis.seen.append((self.command, self.path, body))
                if self.path.startswith("/v3/mail/send"):
                    status, doc = apis.invitation_status, {"id": "mail-1"}
                elif self.path.startswith("/companies"):
                    status, doc = 200, {"name": "Acme Ltd", "status": "active", "number": "0123"}
                elif self.path.startswith("/individual-verification-sessions"):
                    n = sum(1 for _, p, _ in apis.seen if p.startswith("/individual"))
                    status, doc = 200, {"id": f"s-{n}", "url": f"https://verify.example/s-{n}"}
                else:
                    status, doc = 404, {}
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def calls(self, prefix: str) -> list[dict]:
        return [body for _, path, body in self.seen if path.startswith(prefix)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def apis():
    servers: list[Apis] = []

    def make(**kw) -> Apis:
        servers.append(Apis(**kw))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


@pytest.fixture
def kyb_kyc(cli, db, tmp_path, monkeypatch, apis):
    monkeypatch.setenv("EMAIL_API_TOKEN", "tok-email")
    monkeypatch.setenv("UNIFIED_API_TOKEN", "tok-unified")
    monkeypatch.setenv("CASECTL_SECRET_ENV", "EMAIL_API_TOKEN,UNIFIED_API_TOKEN")

    def install(**kw) -> Apis:
        server = apis(**kw)
        for name in ("ballerine-kyc-email-session.json", "ballerine-kyb-kyc.json"):
            text = (EXAMPLES / name).read_text()
            for origin in ORIGINS:
                text = text.replace(origin, f"http://127.0.0.1:{server.port}")
            (tmp_path / name).write_text(text)
            cli("workflows", "add", tmp_path / name)
        return server

    return install


COMPANY = {
    "mainRepresentative": {"fullName": "Ann Rep", "email": "ann@acme.example"},
    "customerName": "Shop",
    "countryOfIncorporation": "GB",
    "registrationNumber": "0123",
}
UBOS = [
    {"firstName": "Mei", "lastName": "Chen", "email": "mei@example.com"},
    {"firstName": "Ola", "lastName": "Berg", "email": "ola@example.com"},
]


def deliver(cli):
    cli("outbox", "deliver", "--json")


def show(cli, case: str) -> dict:
    return cli.json("show", case, "--json")


def new_kyb(cli, data: dict) -> str:
    case = cli("create", "--workflow", "kyb_kyc", "--subject-name", "Acme Ltd", "--data", json.dumps(data))
    return case.stdout.strip()


def test_the_example_files_validate(cli, db):
    for name in ("ballerine-kyc-email-session.json", "ballerine-kyb-kyc.json"):
        r = cli("workflows", "validate", EXAMPLES / name)
        assert "valid workflow" in r.stdout


def test_with_ubos_each_gets_a_kyc_child_and_their_results_flow_back(cli, kyb_kyc):
    server = kyb_kyc()
    case = new_kyb(cli, {**COMPANY, "ubos": UBOS})
    assert show(cli, case)["status"] == "pending_invitation_email"
    deliver(cli)  # the invitation goes out; its answer moves the case
    assert server.calls("/v3/mail/send")[0]["receivers"] == ["ann@acme.example"]
    assert show(cli, case)["status"] == "data_collection"

    cli("event", case, "start")  # the collection flow is done: one KYC child per UBO
    kids = show(cli, case)["children"]
    assert [k["block"] for k in kids] == ["ubo_1", "ubo_2"]
    assert show(cli, case)["status"] == "run_kyb_enrichment"
    deliver(cli)  # the registry lookup and both KYC sessions
    parent = show(cli, case)
    assert parent["registry_data"]["company"]["name"] == "Acme Ltd"
    assert parent["status"] == "pending_kyc_response_to_finish"
    names = sorted(b["firstName"] for b in server.calls("/individual-verification-sessions"))
    assert names == ["Mei", "Ola"]
    for kid in kids:
        child = show(cli, kid["id"])
        assert child["status"] == "email_sent"
        assert child["registry_data"]["kyc_session"]["url"].startswith("https://verify.example/s-")
        cli("event", kid["id"], "kyc_hook_responded")
    cli("approve", kids[0]["id"])
    assert show(cli, case)["status"] == "pending_kyc_response_to_finish"  # one KYC still open
    cli("act", kids[1]["id"], "reject")
    parent = show(cli, case)
    assert parent["status"] == "manual_review"
    blocks = {b["name"]: b for b in cli.json("blocks", case, "--json")["blocks"]}
    assert blocks["ubo_1"]["data"]["decision"] == "approved" and blocks["ubo_2"]["data"]["decision"] == "rejected"
    assert blocks["ubo_1"]["data"]["vendor"] == "veriff"
    cli("approve", case)
    assert show(cli, case)["status"] == "approved"
    assert cli("db", "check").exit_code == 0


def test_without_ubos_the_case_goes_straight_to_manual_review(cli, kyb_kyc):
    server = kyb_kyc()
    case = new_kyb(cli, COMPANY)
    deliver(cli)
    cli("event", case, "start")
    deliver(cli)
    parent = show(cli, case)
    assert parent["status"] == "manual_review" and parent.get("children", []) == []
    assert server.calls("/individual-verification-sessions") == []


def test_a_failed_invitation_auto_rejects(cli, kyb_kyc):
    kyb_kyc(invitation_status=400)
    case = new_kyb(cli, COMPANY)
    deliver(cli)
    parent = show(cli, case)
    assert parent["status"] == "auto_reject" and parent["final"] is True
    integration = [e for e in cli.json("history", case, "--json")["events"] if e["kind"] == "integration"]
    assert integration and "400" in json.dumps(integration[-1]["data"])


def test_a_revision_asks_for_resubmission_and_comes_back_to_review(cli, kyb_kyc, db):
    kyb_kyc()
    case = new_kyb(cli, COMPANY)
    deliver(cli)
    cli("event", case, "start")
    deliver(cli)
    cli("act", case, "revision")
    assert show(cli, case)["status"] == "pending_resubmission"  # revision moved on by itself
    from conftest import outbox

    mails = [m for m in outbox(db) if m["kind"] == "email"]
    assert [m["target"] for m in mails] == ["ann@acme.example"]
    cli("event", case, "resubmitted")
    assert show(cli, case)["status"] == "manual_review"
    cli("act", case, "reject")
    assert show(cli, case)["decision"] == "rejected"
