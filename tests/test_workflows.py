"""`casectl workflows`: the rules table, custom files, validation, versions, graphs."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from casectl.rules import BUILTIN, workflow_to_dict

from conftest import snapshot

COMPLAINTS = {
    "name": "complaints",
    "title": "Customer complaints",
    "initial": "open",
    "statuses": [
        {"name": "open"},
        {"name": "escalated", "label": "Escalated to legal"},
        {"name": "resolved", "final": True},
    ],
    "actions": [
        {"name": "escalate", "from": ["open"], "to": "escalated"},
        {"name": "resolve", "from": ["open", "escalated"], "to": "resolved", "decision": "resolved"},
    ],
}


def write(tmp_path, doc, name="wf.json"):
    p = tmp_path / name
    p.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return p


def test_show_kyb_reads_like_the_seed(cli):
    out = cli("workflows", "show", "kyb").stdout
    seed_part = out.split("System events:")[0]
    rows = {
        line.split("|")[1].strip(): line.split("|")[3].strip()
        for line in seed_part.splitlines()
        if line.startswith("| ") and "Case status" not in line
    }
    assert rows == {
        "Collection flow": "None",
        "Pending process": "Reject, Ask for all re-uploads",
        "Pending ID verification": "Reject, Ask for all re-uploads",
        "Manual review": "Approve, Reject, Ask for all re-uploads",
        "Revisions": "Reject",
        "Approved (final)": "None",
        "Rejected (final)": "None",
    }
    assert "| collection_completed | collection_flow" in out


def test_show_json_and_list_without_a_database(cli):
    doc = cli.json("workflows", "show", "kyb", "--json")
    assert [r["status"] for r in doc["table"]][:2] == ["collection_flow", "pending_process"]
    assert doc["table"][3]["actions"] == ["approve", "reject", "request_reuploads"]
    names = [w["name"] for w in cli.json("workflows", "list", "--json")]
    assert {"kyb", "screening", "simple"} <= set(names) and names == sorted(names)


def test_validate_good_file(cli, tmp_path):
    out = cli("workflows", "validate", write(tmp_path, COMPLAINTS)).stdout
    assert "valid workflow 'complaints'" in out


def test_validate_reports_schema_errors_with_json_paths(cli, tmp_path):
    bad = {**COMPLAINTS, "statuses": [{"name": "Open Now"}, {"label": "x"}], "extra": 1}
    r = cli("workflows", "validate", write(tmp_path, bad), expect=6)
    assert (
        "$.statuses[0].name" in r.stderr and "$.statuses[1]" in r.stderr and "'name' is a required property" in r.stderr
    )
    assert "Additional properties are not allowed ('extra'" in r.stderr


def test_validate_lints(cli, tmp_path):
    bad = {
        **COMPLAINTS,
        "statuses": COMPLAINTS["statuses"] + [{"name": "limbo"}],
        "actions": COMPLAINTS["actions"] + [{"name": "reopen", "from": ["resolved"], "to": "nowhere"}],
    }
    r = cli("workflows", "validate", write(tmp_path, bad), expect=6)
    assert "final status 'resolved' has an outgoing action 'reopen'" in r.stderr
    assert "leads into unknown status 'nowhere'" in r.stderr
    assert "status 'limbo' is unreachable" in r.stderr
    r = cli("workflows", "validate", write(tmp_path, {**COMPLAINTS, "initial": "start"}), expect=6)
    assert "$.initial: no initial status" in r.stderr


@pytest.mark.parametrize("content,message", [("{not json", "not valid JSON"), ("[]", "is not of type 'object'")])
def test_validate_bad_files(cli, tmp_path, content, message):
    assert message in cli("workflows", "validate", write(tmp_path, content), expect=6).stderr


def test_validate_missing_file_and_directory(cli, tmp_path):
    assert "no such file" in cli("workflows", "validate", tmp_path / "nope.json", expect=3).stderr
    assert "is a directory" in cli("workflows", "validate", tmp_path, expect=6).stderr


def test_custom_workflow_with_custom_status_and_versions(cli, db, tmp_path):
    out = cli("workflows", "add", write(tmp_path, COMPLAINTS)).stdout
    assert "added complaints v1" in out
    assert "already present" in cli("workflows", "add", write(tmp_path, COMPLAINTS)).stdout
    c1 = cli("create", "--workflow", "complaints").stdout.strip()
    cli("act", c1, "escalate")
    assert cli.json("show", c1, "--json")["status"] == "escalated"
    # Version 2 adds a status and an action; C-1 keeps version 1's rules.
    v2 = {
        **COMPLAINTS,
        "statuses": COMPLAINTS["statuses"] + [{"name": "withdrawn", "final": True}],
        "actions": COMPLAINTS["actions"] + [{"name": "withdraw", "from": ["open", "escalated"], "to": "withdrawn"}],
    }
    assert "added complaints v2" in cli("workflows", "add", write(tmp_path, v2)).stdout
    c2 = cli("create", "--workflow", "complaints").stdout.strip()
    assert cli.json("show", c2, "--json")["workflow_version"] == 2
    r = cli("act", c1, "withdraw", expect=4)
    assert "no action 'withdraw'" in r.stderr
    cli("act", c2, "withdraw")
    listed = {w["name"]: w for w in cli.json("workflows", "list", "--json")}
    assert listed["complaints"]["version"] == 2 and listed["complaints"]["builtin"] is False
    assert cli.json("workflows", "show", "complaints", "--version", "1", "--json")["workflow"]["version"] == 1


def test_add_conflicting_version_is_refused(cli, db, tmp_path):
    cli("workflows", "add", write(tmp_path, {**COMPLAINTS, "version": 1}))
    changed = {**COMPLAINTS, "version": 1, "title": "Changed"}
    r = cli("workflows", "add", write(tmp_path, changed), expect=6)
    assert "already exists with a different definition" in r.stderr


@pytest.mark.parametrize("name", ["kyb", "simple", "screening", "kyc"])
def test_add_under_a_builtin_name_is_refused(cli, db, tmp_path, name):
    before = snapshot(db)
    for doc in ({**COMPLAINTS, "name": name}, {**COMPLAINTS, "name": name, "version": 7}):
        r = cli("workflows", "add", write(tmp_path, doc), expect=5)
        assert "choose another name" in r.stderr and name in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert snapshot(db) == before
    listed = {w["name"]: w for w in cli.json("workflows", "list", "--json")}
    assert listed[name]["builtin"] is True and listed[name]["title"] != COMPLAINTS["title"]


def test_new_kyb_cases_keep_the_builtin_statuses_after_a_refused_add(cli, db, tmp_path):
    cli("workflows", "add", write(tmp_path, {**COMPLAINTS, "name": "kyb"}), expect=5)
    case = cli.json("create", "--workflow", "kyb", "--json")
    assert (case["status"], case["workflow_version"]) == (BUILTIN["kyb"].initial, BUILTIN["kyb"].version)


def test_add_invalid_writes_nothing(cli, db, tmp_path):
    cli("workflows", "add", write(tmp_path, {**COMPLAINTS, "initial": "x"}), expect=6)
    assert "unknown workflow 'complaints'" in cli("create", "--workflow", "complaints", expect=3).stderr


def test_graph(cli):
    mermaid = cli("workflows", "graph", "kyb").stdout
    assert mermaid.startswith('stateDiagram-v2\n    state "Collection flow" as s_collection_flow\n')
    assert "    [*] --> s_collection_flow" in mermaid
    assert "    s_manual_review --> s_approved : approve" in mermaid
    assert "    s_approved --> [*]" in mermaid
    dot = cli("workflows", "graph", "simple", "--format", "dot").stdout
    assert dot.startswith('digraph "simple" {') and '"open" -> "approved" [label="approve"];' in dot
    assert "unknown format" in cli("workflows", "graph", "kyb", "--format", "png", expect=2).stderr
    assert cli("workflows", "show", "nope", expect=3).exit_code == 3


# Mermaid's state-diagram grammar: words that cannot stand as a state's name.
MERMAID_KEYWORDS = ["state", "note", "end", "class", "classDef", "style", "default", "click", "direction", "as"]


def test_graph_survives_statuses_named_like_mermaid_keywords(cli, db, tmp_path):
    names = [k.lower() for k in MERMAID_KEYWORDS]
    doc = {
        "name": "keywords",
        "initial": names[0],
        "statuses": [{"name": n, "final": n == names[-1]} for n in names],
        "actions": [
            {"name": f"to_{b}", "from": [a], "to": [{"to": b, "when": "data.x == 'a;b#c'"}, {"to": b}]}
            for a, b in zip(names, names[1:], strict=False)
        ],
    }
    cli("workflows", "add", write(tmp_path, doc))
    mermaid = cli("workflows", "graph", "keywords").stdout
    for line in mermaid.splitlines()[1:]:
        first = line.split()[0]
        assert first in ("state", "[*]") or first.startswith("s_"), line
        assert ";" not in line.partition(" : ")[2] and "#" not in line.partition(" : ")[2], line
    assert "s_note --> s_end : to_end if data.x == 'a,bNo.c'" in mermaid
    dot = cli("workflows", "graph", "keywords", "--format", "dot").stdout
    assert '"state" -> "note" [label="to_note if data.x == \'a;b#c\'"];' in dot


MERMAID = Path(__file__).resolve().parent / "mermaid"


def mermaid_parse(text: str) -> str:
    """Mermaid's own parser's verdict on a diagram (tests/mermaid/parse.mjs, installed by scripts/mermaid)."""
    node = shutil.which("node")
    if node is None or not (MERMAID / "node_modules" / "mermaid").is_dir():
        pytest.skip("Mermaid's parser is not installed (scripts/mermaid installs it)")
    done = subprocess.run(
        [node, str(MERMAID / "parse.mjs")], input=text, capture_output=True, text=True, timeout=120, cwd=MERMAID
    )
    return done.stdout.strip() or done.stderr.strip()


def test_mermaids_parser_reads_every_graph(cli, db, tmp_path):
    names = [k.lower() for k in MERMAID_KEYWORDS]
    doc = {
        "name": "keywords",
        "initial": names[0],
        "statuses": [{"name": n, "final": n == names[-1], "label": f"{n} - {n.upper()} (x)"} for n in names],
        "actions": [
            {
                "name": f"to_{b}",
                "from": [a],
                "to": [{"to": b, "when": "data.x == 'a;b#c' && length(data.y) > `2`"}, {"to": b}],
            }
            for a, b in zip(names, names[1:], strict=False)
        ]
        + [{"name": "auto_end", "trigger": "auto", "from": ["note"], "guards": ["data.z"], "to": "end"}],
    }
    cli("workflows", "add", write(tmp_path, doc))
    assert mermaid_parse("stateDiagram-v2\n    a --> --> b\n").startswith("ERR")  # the parser does refuse
    for name in ["keywords", *BUILTIN]:
        assert mermaid_parse(cli("workflows", "graph", name).stdout) == "OK", name


def test_builtin_definitions_validate_against_the_schema():
    from casectl import rules
    from casectl.services.workflows import validate_definition

    for wf in rules.BUILTIN.values():
        parsed, errors = validate_definition(rules.workflow_to_dict(wf))
        assert errors == [] and parsed == wf


def test_validate_refuses_an_effect_that_can_never_be_a_target(cli, tmp_path):
    d = workflow_to_dict(BUILTIN["simple"])
    d.update(name="leaky", version=1, effects=[{"type": "webhook", "url": "file:///etc/passwd"}])
    path = tmp_path / "leaky.json"
    path.write_text(json.dumps(d))
    r = cli("workflows", "validate", str(path), expect=6)
    assert "$.effects[0]" in r.stderr and "http" in r.stderr
