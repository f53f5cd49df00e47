"""Filter values checked against what exists, before a command selects cases by them."""

from __future__ import annotations

import sqlite3
from typing import Any

from .. import ids
from ..errors import NotFound, UsageError
from ..store import cases as case_store
from . import validate


def check(conn: sqlite3.Connection, values: dict[str, Any]) -> None:
    """Refuse filter values that can match nothing because they name nothing: a status no workflow
    has, an unknown workflow or parent case (exit 3), a priority or country that does not exist
    (exit 2), each with the likely meant value. A cron job must not quietly act on no cases."""
    from . import workflows as workflow_service

    workflow, statuses = values.get("workflow"), tuple(values.get("status") or ())
    if workflow is None and not statuses:
        workflows = None
    else:
        workflows = {wf.name: wf for wf, _ in workflow_service.all_latest(conn)}
    if workflow is not None and workflows is not None and workflow not in workflows:
        if not case_store.in_use(conn, workflow=workflow):
            raise NotFound(f"--workflow: no workflow '{workflow}'{_did_you_mean(workflow, workflows)}")
    if statuses and workflows is not None:
        chosen = [workflows[workflow]] if workflow in workflows else list(workflows.values())
        known = {s.name for wf in chosen for s in wf.statuses}
        for status in statuses:
            if status not in known and not case_store.in_use(conn, status=status, workflow=workflow):
                where = f"workflow {workflow}" if workflow in workflows else "any workflow"
                raise UsageError(f"--status: '{status}' is not a status of {where}{_did_you_mean(status, known)}")
    priority, country, parent = values.get("priority"), values.get("country"), values.get("parent")
    if priority is not None and priority not in validate.PRIORITIES:
        raise UsageError(
            f"--priority: '{priority}' is not a priority{_did_you_mean(priority, validate.PRIORITIES)}"
            f" (priorities: {', '.join(validate.PRIORITIES)})"
        )
    if country is not None:
        problem = validate.country_problem(country)
        if problem is not None:
            raise UsageError(f"--country: {problem}")
    if parent is not None:
        n = ids.parse("case", parent)
        if n is not None and case_store.get(conn, n) is None:
            raise NotFound(f"--parent: no case {ids.fmt('case', n)}")


def _did_you_mean(value: str, choices: Any) -> str:
    import difflib

    close = difflib.get_close_matches(value, sorted(choices), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
