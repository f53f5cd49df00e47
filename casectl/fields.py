"""A case's public fields, declared once.

Every place that shows a case as a flat record reads this table: `list
--fields` (and its validation), `show --json`, exports, the columns `import`
reads and the ones it reports as set by the database itself, and the case a
webhook carries. Each field says how it is read from a stored case and
whether an import may set it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import ids


@dataclass(frozen=True, kw_only=True)
class CaseField:
    name: str
    read: Callable[[Mapping[str, Any]], Any]
    # An import column may set it; `export --format csv` writes it, so the file imports back.
    importable: bool = False
    # Part of the case a webhook carries (the subject's fields go there nested, as `subject`).
    webhook: bool = True


def _get(key: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda case: case.get(key)


def _or(key: str, empty: Callable[[], Any]) -> Callable[[Mapping[str, Any]], Any]:
    return lambda case: case.get(key) or empty()


def _id(kind: str, key: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda case: ids.fmt(kind, case.get(key))


CASE_FIELDS: tuple[CaseField, ...] = (
    CaseField(name="id", read=_id("case", "id")),
    CaseField(name="ref", read=_get("ref"), importable=True),
    CaseField(name="workflow", read=_get("workflow"), importable=True),
    CaseField(name="workflow_version", read=_get("workflow_version")),
    CaseField(name="status", read=_get("status"), importable=True),
    CaseField(name="final", read=lambda c: bool(c.get("final"))),
    CaseField(name="subject_id", read=_id("subject", "subject_id"), webhook=False),
    CaseField(name="subject_ref", read=_get("subject_ref"), importable=True, webhook=False),
    CaseField(name="subject_name", read=_get("subject_name"), importable=True, webhook=False),
    CaseField(name="subject_email", read=_get("subject_email"), importable=True, webhook=False),
    CaseField(name="subject_dob", read=_get("subject_dob"), importable=True, webhook=False),
    CaseField(name="country", read=_get("subject_country"), importable=True, webhook=False),
    CaseField(name="entity_type", read=_get("subject_entity_type"), importable=True, webhook=False),
    CaseField(name="assignee", read=_get("assignee"), importable=True),
    CaseField(name="team", read=_get("team"), importable=True),
    CaseField(name="priority", read=_get("priority"), importable=True),
    CaseField(name="tags", read=_or("tags", list), importable=True),
    CaseField(name="data", read=_or("data", dict), importable=True),
    CaseField(name="registry_data", read=_or("registry_data", dict), importable=True),
    CaseField(name="parent", read=_id("case", "parent_id")),
    CaseField(name="origin", read=_get("origin")),
    CaseField(name="created_at", read=_get("created_at")),
    CaseField(name="updated_at", read=_get("updated_at")),
    CaseField(name="due_at", read=_get("due_at")),
    CaseField(name="decided_at", read=_get("decided_at")),
    CaseField(name="decided_by", read=_get("decided_by")),
    CaseField(name="decision", read=_get("decision")),
    CaseField(name="decision_reason", read=_get("decision_reason")),
    CaseField(name="created_by", read=_get("created_by")),
    CaseField(name="last_editor", read=_get("last_editor")),
    CaseField(name="version", read=_get("version")),
)

NAMES: tuple[str, ...] = tuple(f.name for f in CASE_FIELDS)
# The columns an import sets from a file, and those the database sets itself (read, ignored, reported).
IMPORTABLE: tuple[str, ...] = tuple(f.name for f in CASE_FIELDS if f.importable)
RESERVED: tuple[str, ...] = tuple(f.name for f in CASE_FIELDS if not f.importable)
# `export --format csv`: the importable fields, in the order the file has always had (a contract).
EXPORT_COLUMNS: tuple[str, ...] = (
    "ref",
    "workflow",
    "status",
    "priority",
    "assignee",
    "team",
    "tags",
    "subject_ref",
    "subject_name",
    "subject_email",
    "subject_dob",
    "country",
    "entity_type",
    "data",
    "registry_data",
)
# The default columns of a case table on a terminal.
TABLE: tuple[str, ...] = ("id", "ref", "workflow", "status", "subject_name", "assignee", "priority", "created_at")


# Read only when asked for (`list --fields paid,payments`, exports): the case's payments, from its
# history (services/payments.py: with_payments); `paid` is the totals per currency as one text.
ON_REQUEST: tuple[str, ...] = ("paid", "payments")


def case_row(case: Mapping[str, Any]) -> dict[str, Any]:
    """A case as the flat record every listing and export shows (and the fields read on request, if read)."""
    row = {f.name: f.read(case) for f in CASE_FIELDS}
    for name in ON_REQUEST:
        if name in case:
            row[name] = case[name]
    return row


def webhook_case(case: Mapping[str, Any]) -> dict[str, Any]:
    """The case as a webhook carries it: its public fields, the subject nested."""
    body = {f.name: f.read(case) for f in CASE_FIELDS if f.webhook}
    body["reason"] = body.get("decision_reason")  # the name receivers have always read
    body["subject"] = None
    if case.get("subject_id") is not None:
        body["subject"] = {
            "id": ids.fmt("subject", case["subject_id"]),
            "ref": case.get("subject_ref"),
            "name": case.get("subject_name"),
            "email": case.get("subject_email"),
            "country": case.get("subject_country"),
            "entity_type": case.get("subject_entity_type"),
        }
    return body
