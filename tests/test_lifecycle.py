"""The one door: every path that changes a case asks the rules, and the kernel keeps its invariants.

Each bypass that was once possible is tried again here and must be refused
with its documented exit code, writing nothing. Then what a workflow may say
(automatic actions, creation statuses, child policy) works for a custom
JSON workflow as it does for the built-ins, and the kernel's own shape holds:
its followers never import it and casectl's imports have no cycle.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from casectl.rules import BUILTIN, workflow_to_dict

from conftest import raw_connect, snapshot

PACKAGE = Path(__file__).resolve().parent.parent / "casectl"


def add_workflow(cli, tmp_path, d: dict) -> str:
    path = tmp_path / f"{d['name']}.json"
    path.write_text(json.dumps(d))
    cli("workflows", "add", str(path))
    return d["name"]


@pytest.fixture
def simple_four_eyes(cli, db, tmp_path):
    d = workflow_to_dict(BUILTIN["simple"])
    d.update(name="simple_four_eyes", version=1, four_eyes=["approve"])
    return add_workflow(cli, tmp_path, d)


# --- the bypasses, refused --------------------------------------------------------------


def test_a_direct_status_change_follows_four_eyes(cli, db, simple_four_eyes, tmp_path):
    cid = cli("create", "-w", simple_four_eyes, "--actor", "ann").stdout.strip()
    before = snapshot(db)
    r = cli("status", cid, "approved", "--actor", "ann", expect=4)
    assert "four-eyes rule: ann created the case" in r.stderr and "(as for approve)" in r.stderr
    assert snapshot(db) == before
    # The same through a pipe and through an import --update.
    cli("act", "-", "approve", "--actor", "ann", input=f"{cid}\n", expect=4)
    csv = tmp_path / "u.csv"
    cli("status", cid, "pending", "--actor", "bob")
    ref = "FE-1"
    cli("create", "-w", simple_four_eyes, "--ref", ref, "--actor", "ann")
    csv.write_text(f"ref,status\n{ref},approved\n")
    before = snapshot(db)
    r = cli("import", csv, "--workflow", simple_four_eyes, "--update", "--actor", "ann", expect=4)
    assert "four-eyes rule: ann created the case" in r.stderr
    assert snapshot(db) == before
    # Another agent may.
    assert cli.json("status", cid, "approved", "--actor", "cy", "--json")["case"]["status"] == "approved"


def test_validate_warns_where_set_status_reaches_a_four_eyes_status(cli, tmp_path):
    d = workflow_to_dict(BUILTIN["simple"])
    d.update(name="warned", version=1, four_eyes=["approve"])
    path = tmp_path / "warned.json"
    path.write_text(json.dumps(d))
    r = cli("workflows", "validate", str(path))
    assert "warning: $.set_status.to[2]: set_status can reach 'approved', which four_eyes protects (approve)" in (
        r.stderr
    )
    assert cli.json("workflows", "validate", str(path), "--json")["warnings"]


@pytest.mark.parametrize(
    "args",
    [
        ("status", "{cid}", "declined"),
        ("reject", "{cid}", "--reason", ""),
        ("act", "{cid}", "decline"),
        ("act", "{cid}", "decline", "--reason", "   "),
    ],
)
def test_a_decision_that_needs_a_reason_needs_it_on_every_path(cli, db, args):
    cid = cli("create", "-w", "simple").stdout.strip()
    before = snapshot(db)
    r = cli(*(a.format(cid=cid) for a in args), expect=6)
    assert "needs a reason" in r.stderr and "--reason TEXT" in r.stderr
    assert snapshot(db) == before


def test_bulk_and_import_need_the_reason_too(cli, db, tmp_path):
    a = cli("create", "-w", "simple", "--ref", "R-1").stdout.strip()
    cli("create", "-w", "simple", "--ref", "R-2")
    before = snapshot(db)
    r = cli("act", "-", "decline", input=f"{a}\nR-2\n", expect=6)
    assert "needs a reason" in r.stderr
    f = tmp_path / "d.csv"
    f.write_text("ref,status\nR-1,declined\n")
    r = cli("import", f, "--workflow", "simple", "--update", expect=6)
    assert "column status: cannot move case R-1 from open to declined" in r.stderr and "needs a reason" in r.stderr
    assert snapshot(db) == before


@pytest.mark.parametrize("status", ["approved", "manual_review", "rejected"])
def test_a_case_cannot_be_born_past_its_workflow(cli, db, tmp_path, status):
    before = snapshot(db)
    r = cli("create", "--workflow", "kyb", "--status", status, "--block", "document:passport", expect=4)
    assert f"a kyb case cannot be created in {status}; it may be created in: collection_flow" in r.stderr
    f = tmp_path / "k.csv"
    f.write_text(f"ref,status\nK-1,{status}\n")
    r = cli("import", f, "--workflow", "kyb", expect=4)
    assert f"k.csv:2: column status: a kyb case cannot be created in {status}" in r.stderr
    assert snapshot(db) == before
    r = cli("create", "--workflow", "kyb", "--status", "nowhere", expect=6)
    assert "'nowhere' is not a status of workflow kyb" in r.stderr


def test_create_statuses_are_the_workflows_to_declare(cli, db, tmp_path):
    d = workflow_to_dict(BUILTIN["simple"])
    d.update(name="backfill", version=1, create_statuses=["open", "pending"])
    add_workflow(cli, tmp_path, d)
    assert cli.json("create", "-w", "backfill", "--status", "pending", "--json")["status"] == "pending"
    d.update(name="bad_backfill", create_statuses=["approved"])
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(d))
    r = cli("workflows", "validate", str(path), expect=6)
    assert "$.create_statuses[0]: a case cannot be created in the final status 'approved'" in r.stderr


# --- decisions ------------------------------------------------------------------------------


def test_every_final_case_has_a_decision_a_decider_and_a_time(cli, db, db_path, tmp_path):
    cli("create", "-w", "simple", "--actor", "ann")
    cli("approve", "C-1", "--actor", "bob")
    cli("create", "-w", "simple")
    cli("status", "C-2", "declined", "--reason", "duplicate", "--actor", "cy")
    cli("create", "-w", "screening")
    cli("cancel", "C-3", "--reason", "withdrawn by customer", "--actor", "dee", expect=None)
    cli("act", "C-3", "cancel", "--reason", "withdrawn by customer", "--actor", "dee", expect=None)
    conn = raw_connect(db_path)
    rows = conn.execute(
        "SELECT id, status, decision, decided_by, decided_at FROM cases WHERE final = 1 ORDER BY id"
    ).fetchall()
    conn.close()
    assert len(rows) == 3
    for row in rows:
        assert all(row), row
    assert [r[3] for r in rows] == ["bob", "cy", "dee"]


# --- automatic actions ------------------------------------------------------------------------


def test_a_custom_workflow_declares_its_own_automatic_action(cli, db, tmp_path):
    d = {
        "name": "onboarding",
        "initial": "waiting",
        "statuses": [{"name": "waiting"}, {"name": "ready"}, {"name": "done", "final": True}],
        "actions": [
            {"name": "docs_in", "from": ["waiting"], "to": "ready", "trigger": "auto", "guards": ["blocks_approved"]},
            {"name": "approve", "from": ["ready"], "to": "done", "decision": "approved"},
        ],
        "block_kinds": ["document"],
    }
    add_workflow(cli, tmp_path, d)
    cid = cli("create", "-w", "onboarding", "--block", "document:id").stdout.strip()
    assert cli.json("show", cid, "--json")["status"] == "waiting"
    scan = tmp_path / "id.png"
    scan.write_bytes(b"\x89PNG an id card")
    cli("attach", cid, "id", str(scan))
    cli("block", cid, "id", "approve")  # the guard now holds: the kernel moves the case by itself
    case = cli.json("show", cid, "--json")
    assert case["status"] == "ready"
    auto = [e for e in cli.json("history", cid, "--json")["events"] if e["action"] == "docs_in"]
    assert len(auto) == 1 and auto[0]["kind"] == "system" and auto[0]["data"]["summary"] == "automatic"


def test_automatic_actions_in_a_cycle_are_refused(cli, tmp_path):
    d = {
        "name": "spinner",
        "initial": "a",
        "statuses": [{"name": "a"}, {"name": "b"}, {"name": "z", "final": True}],
        "actions": [
            {"name": "ab", "from": ["a"], "to": "b", "trigger": "auto"},
            {"name": "ba", "from": ["b"], "to": "a", "trigger": "auto"},
            {"name": "close", "from": ["a", "b"], "to": "z"},
        ],
    }
    path = tmp_path / "spinner.json"
    path.write_text(json.dumps(d))
    r = cli("workflows", "validate", str(path), expect=6)
    assert "automatic actions form a cycle: a -> b -> a" in r.stderr


def test_kyb_automatic_events_fire_without_being_asked(cli, db, tmp_path):
    mei = tmp_path / "mei.json"
    mei.write_text(json.dumps({"name": "Mei", "email": "mei@example.com"}))
    parent = cli("create", "-w", "kyb", "--block", f"kyc:ubo=@{mei}").stdout.strip()
    cli("event", parent, "collection_completed")
    assert cli.json("show", parent, "--json")["status"] == "pending_id_verification"
    cli("event", "C-2", "verification_passed")  # the child concludes: kyc_completed fires on the parent
    assert cli.json("show", parent, "--json")["status"] == "manual_review"
    # An automatic action may still be sent as a system event where its guards hold; here they do not.
    r = cli("event", parent, "kyc_completed", expect=4)
    assert "not allowed in status manual_review" in r.stderr


# --- the shape of the code ---------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    """Every casectl module `path` imports, at module level or inside functions."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if module.endswith(".__init__"):
        module = module[: -len(".__init__")]
        package = module
    else:
        package = module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("casectl")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("casectl"):
                continue
            found.add(target)
            for a in node.names:  # `from . import cases` names a module
                found.add(f"{target}.{a.name}")
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    # A package's __init__ re-exporting its own modules is not a cycle of behaviour.
    for name, deps in graph.items():
        graph[name] = {d for d in deps if not (name.startswith(d + ".") and d in graph)}
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> None:
        if node in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(node) :] + [node]))
        if node in done:
            return
        path.append(node)
        for nxt in sorted(graph[node]):
            visit(nxt)
        path.pop()
        done.add(node)

    for node in sorted(graph):
        visit(node)


def test_followers_never_import_the_kernel():
    graph = import_graph()
    for follower in ("clock", "effects", "children", "records", "catalog", "validate"):
        assert "casectl.services.lifecycle" not in graph[f"casectl.services.{follower}"], follower


def test_a_cases_public_fields_are_declared_once(cli, db):
    from casectl import fields

    assert set(fields.EXPORT_COLUMNS) == set(fields.IMPORTABLE)
    assert set(fields.IMPORTABLE) | set(fields.RESERVED) == set(fields.NAMES)
    cid = cli("create", "-w", "simple", "--subject-email", "f@example.com").stdout.strip()
    assert list(cli.json("list", "--json")[0]) == list(fields.NAMES)
    r = cli("list", "--fields", "id,nope", expect=2)
    assert "available: " + ", ".join(fields.NAMES) in r.stderr
    header = cli("export", "--format", "csv").stdout.splitlines()[0]
    assert header == ",".join(fields.EXPORT_COLUMNS)
    assert cid
