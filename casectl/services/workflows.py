"""Workflows: the built-ins, custom JSON files, their validation and versions."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import rules
from ..errors import Conflict, InvalidInput, NotFound
from ..rules import Workflow
from ..store import workflows as wf_store
from ..timeutil import iso
from . import catalog

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"


def load_schema(name: str) -> dict:
    return json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))


def get(conn: sqlite3.Connection | None, name: str, version: int | None = None) -> Workflow:
    """The workflow `name` at `version` (default: the newest known)."""
    return catalog.workflow(conn, name, version)


def ensure_recorded(conn: sqlite3.Connection, wf: Workflow, *, now: datetime, actor: str) -> None:
    """Record the definition a case is about to use (a no-op when already there)."""
    catalog.record_workflow(conn, wf, at=iso(now), actor=actor)


def warnings(wf: Workflow) -> list[str]:
    """What `workflows validate` points out without refusing: 'JSON path: message'."""
    return [f"{path}: {msg}" for path, msg in rules.warnings(wf)]


def all_latest(conn: sqlite3.Connection | None) -> list[tuple[Workflow, bool]]:
    """Every workflow at its newest version, with whether it is built in."""
    found: dict[str, tuple[Workflow, bool]] = {n: (wf, True) for n, wf in rules.BUILTIN.items()}
    if conn is not None:
        for row in wf_store.latest_all(conn):
            wf = rules.workflow_from_dict(row["definition"])
            if wf.version >= found.get(wf.name, (wf, False))[0].version:
                found[wf.name] = (wf, bool(row["builtin"]))
    return [found[n] for n in sorted(found)]


def validate_definition(doc: Any) -> tuple[Workflow | None, list[str]]:
    """The JSON Schema's errors and the rules' lint problems together, so one run shows everything
    to fix. Errors are 'JSON path: message'. The workflow is returned only when the schema holds."""
    import jsonschema  # only the commands that validate pay for it

    validator = jsonschema.Draft202012Validator(load_schema("workflow.schema.json"))
    errors = sorted(validator.iter_errors(doc), key=lambda e: (list(e.absolute_path), e.message))
    schema_errors = [f"{e.json_path}: {e.message}" for e in errors]
    try:
        wf = rules.workflow_from_dict(doc)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        if not schema_errors:
            raise
        return None, schema_errors  # too broken to build; the schema errors say why
    from . import effects, sla

    found = rules.lint(wf) + effects.target_problems(wf) + effects.effect_problems(wf) + sla.problems(wf.sla)
    problems = schema_errors + [f"{path}: {msg}" for path, msg in found]
    return (None if schema_errors else wf), problems


def read_definition_file(path: str | Path) -> Any:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"{p}: no such file") from None
    except IsADirectoryError:
        raise InvalidInput(f"{p}: is a directory, not a workflow file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInput(f"{p}: cannot read it ({e})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidInput(f"{p}: not valid JSON: line {e.lineno}, column {e.colno}: {e.msg}") from None


def validate_file(path: str | Path) -> Workflow:
    doc = read_definition_file(path)
    wf, errors = validate_definition(doc)
    if errors:
        raise InvalidInput(f"{path}: {len(errors)} problem(s) in the workflow", details=errors)
    assert wf is not None
    return wf


def add(conn: sqlite3.Connection, path: str | Path, *, now: datetime, actor: str) -> tuple[Workflow, bool]:
    """Add a custom workflow (or a new version of one). Returns (workflow, newly added)."""
    doc = read_definition_file(path)
    name = doc.get("name") if isinstance(doc, dict) else None
    if isinstance(name, str) and name in rules.BUILTIN:
        # A custom file under a built-in's name would become the newest version of it,
        # and every new case of that workflow would start in the file's statuses.
        raise Conflict(
            f"{path}: '{name}' is a built-in workflow; choose another name (built-in: {', '.join(sorted(rules.BUILTIN))})"
        )
    wf, errors = validate_definition(doc)
    if errors:
        raise InvalidInput(f"{path}: {len(errors)} problem(s) in the workflow", details=errors)
    existing = wf_store.versions(conn, doc["name"])
    top = max([r["version"] for r in existing], default=0)
    if "version" not in doc:
        # Unversioned: identical to the newest version is a no-op, else a new version.
        newest = existing[-1]["definition"] if existing else None
        if (
            newest is not None
            and rules.workflow_to_dict(rules.workflow_from_dict({**doc, "version": newest["version"]})) == newest
        ):
            return rules.workflow_from_dict(newest), False
        doc = {**doc, "version": top + 1}
    canonical = rules.workflow_to_dict(rules.workflow_from_dict(doc))
    same = next((r for r in existing if r["version"] == canonical["version"]), None)
    if same is not None:
        if same["definition"] == canonical:
            return rules.workflow_from_dict(canonical), False
        raise InvalidInput(
            f"{path}: version {canonical['version']} of workflow '{doc['name']}' already exists with a different "
            f'definition; give it "version": {top + 1}'
        )
    wf_store.save(conn, canonical, builtin=False, at=iso(now), actor=actor)
    return rules.workflow_from_dict(canonical), True


def status_table(wf: Workflow) -> list[dict[str, Any]]:
    """Seed 000's table: each status, what it means, and the agent actions it offers."""
    return [
        {
            "status": s.name,
            "label": s.title,
            "final": s.final,
            "category": wf.category(s.name),
            "description": s.description,
            "actions": [a.name for a in wf.actions_from(s.name)],
            "action_labels": [a.title for a in wf.actions_from(s.name)],
            "system_events": [a.name for a in wf.actions if a.answers_to(rules.SYSTEM) and s.name in a.sources],
            "automatic": [a.name for a in wf.actions_from(s.name, rules.AUTO)],
            "creatable": s.name in wf.creatable,
        }
        for s in wf.statuses
    ]


def graph(wf: Workflow, fmt: str) -> str:
    """The lifecycle as a Mermaid state diagram or a Graphviz digraph: an edge per route that
    leaves each status, labelled with the action, how it fires and its condition.

    Mermaid state ids are `s_<name>` with the status's label declared beside them, so a
    status named like a Mermaid keyword (`state`, `note`, `end`, `default`...) cannot break it."""
    edges: list[tuple[str, str, str]] = []
    for a in wf.actions:
        how = "" if a.trigger == rules.AGENT else f" ({'automatic' if a.automatic else 'system'})"
        guards = f" [{' and '.join(a.guards)}]" if a.guards else ""
        for src in a.sources:
            for r in a.routes:
                if r.leaves(src):
                    when = f" if {r.when}" if r.when else ""
                    edges.append((src, r.to, f"{a.name}{how}{guards}{when}"))
    if wf.set_status.enabled:
        for src in wf.set_status.sources:
            for to in wf.set_status.targets:
                if to != src:
                    edges.append((src, to, "set status"))
    if fmt == "mermaid":
        lines = ["stateDiagram-v2"]
        lines += [f'    state "{_mermaid_text(s.title)}" as s_{s.name}' for s in wf.statuses]
        lines.append(f"    [*] --> s_{wf.initial}")
        lines += [f"    s_{a} --> s_{b} : {_mermaid_text(label)}" for a, b, label in edges]
        lines += [f"    s_{s} --> [*]" for s in wf.final_statuses]
        return "\n".join(lines) + "\n"
    lines = [
        f"digraph {_dot(wf.name)} {{",
        "    rankdir=LR;",
        "    node [shape=box, style=rounded];",
        "    start [shape=point];",
        f"    start -> {_dot(wf.initial)};",
    ]
    lines += [f"    {_dot(s.name)} [label={_dot(s.title)}{', peripheries=2' if s.final else ''}];" for s in wf.statuses]
    lines += [f"    {_dot(a)} -> {_dot(b)} [label={_dot(label)}];" for a, b, label in edges]
    return "\n".join(lines) + "\n}\n"


def _mermaid_text(text: str) -> str:
    """Text Mermaid shows as written: no quote, statement end, comment or entity start."""
    return text.replace('"', "'").replace(";", ",").replace("#", "No.").replace("%%", "%").replace("\n", " ")


def _dot(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'
