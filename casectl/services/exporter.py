"""Exporting cases: the importable CSV record of a case, a reversible escape
for spreadsheet formulas, and a case's data package (a zip with its JSON, its
history and its documents, listed with their sha256 in a manifest)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import csvcells, fields
from ..errors import InvalidInput
from ..files import atomic_output
from ..filters import CaseFilter
from ..redaction import Redactor, redact_case
from ..store import bulk
from . import listing

# The CSV columns `casectl import` reads back to the same cases. Ids, times,
# versions, decisions and the origin are the new database's own, so they are
# left out: export -> import into a fresh database -> export is the same file.
CSV_COLUMNS = fields.EXPORT_COLUMNS

# The escaping lives in casectl.csvcells; these names are the importer's and tests'.
csv_escape = csvcells.escape
csv_unescape = csvcells.unescape


def _json_cell(value: dict[str, Any] | None) -> str:
    if not value:
        return ""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def csv_record(case: dict[str, Any]) -> dict[str, str]:
    """A case (as the store returns it) -> its importable CSV cells, escaped."""
    cells = {
        "ref": case.get("ref"),
        "workflow": case["workflow"],
        "status": case["status"],
        "priority": case.get("priority"),
        "assignee": case.get("assignee"),
        "team": case.get("team"),
        "tags": ",".join(case.get("tags") or []),
        "subject_ref": case.get("subject_ref"),
        "subject_name": case.get("subject_name"),
        "subject_email": case.get("subject_email"),
        "subject_dob": case.get("subject_dob"),
        "country": case.get("subject_country"),
        "entity_type": case.get("subject_entity_type"),
        "data": _json_cell(case.get("data")),
        "registry_data": _json_cell(case.get("registry_data")),
    }
    return {k: csv_escape("" if v is None else str(v)) for k, v in cells.items()}


def cases(
    conn: sqlite3.Connection, f: CaseFilter, *, sort: str | None = None, limit: int | None = None, redact: bool = False
) -> Iterator[dict[str, Any]]:
    """The cases to export, streamed through the one query path `list` uses."""
    rows = listing.select(conn, f, sort=sort, limit=limit)
    return (redact_case(c) for c in rows) if redact else rows


# --- a case's data package ----------------------------------------------------


def redact_package(
    case_doc: dict[str, Any], events: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A package's case document and history with the personal data masked: the subject,
    personal data keys (in blocks, activities and events too) and, in notes, reasons and
    summaries, the values they hold. Block names, statuses, ids and dates stay readable."""
    redactor = Redactor.for_case(case_doc, blocks=case_doc.get("blocks") or (), children=case_doc.get("children") or ())
    return redactor.document(case_doc), [redactor.event(e) for e in events]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _safe_name(name: str) -> str:
    keep = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)
    return keep.strip("._") or "document"


def write_package(
    conn: sqlite3.Connection,
    path: str | Path,
    *,
    case_id: int,
    case_doc: dict[str, Any],
    events: list[dict[str, Any]],
    created_at: str,
    documents: bool = True,
) -> dict[str, Any]:
    """Write one case's data package to `path` (atomically) and return its manifest.

    The zip holds case.json (the `show --json` document), history.json (every
    event with its hash), documents/ (each attached file) and manifest.json
    listing every other member with its size and sha256.
    """
    import zipfile

    path = Path(path)
    if path.is_dir():
        raise InvalidInput(f"--package {path}: is a directory; give a file name like case.zip")
    members: list[tuple[str, bytes, dict[str, Any]]] = []
    members.append(
        (
            "case.json",
            (json.dumps(case_doc, indent=2, ensure_ascii=False, default=str) + "\n").encode("utf-8"),
            {"kind": "case"},
        )
    )
    members.append(
        (
            "history.json",
            (json.dumps(events, indent=2, ensure_ascii=False, default=str) + "\n").encode("utf-8"),
            {"kind": "history"},
        )
    )
    used: set[str] = set()
    # A redacted package leaves the documents out: they are the personal data.
    for att in bulk.attachments_of(conn, case_id) if documents else ():
        content = bulk.document_content(conn, att["sha256"])
        if content is None:
            continue
        name = f"documents/{att['sha256'][:12]}-{_safe_name(att['filename'] or 'document')}"
        if name in used:
            continue
        used.add(name)
        if _sha256(content) != att["sha256"]:
            raise InvalidInput(
                f"document {att['sha256']} of this case does not match its sha256; run `casectl db check`"
            )
        members.append(
            (
                name,
                content,
                {
                    "kind": "document",
                    "block": att.get("block"),
                    "filename": att.get("filename"),
                    "media_type": att.get("media_type"),
                },
            )
        )
    manifest = {
        "format": "casectl-package/1",
        "case": case_doc.get("id"),
        "ref": case_doc.get("ref"),
        "created_at": created_at,
        "files": [
            {
                "path": name,
                "size": len(data),
                "sha256": _sha256(data),
                **{k: v for k, v in meta.items() if v is not None},
            }
            for name, data, meta in members
        ],
    }
    with atomic_output(path, option="--package") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data, _ in members:
            zf.writestr(_zip_info(name, created_at), data)
        zf.writestr(_zip_info("manifest.json", created_at), json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest


def _zip_info(name: str, created_at: str):
    import zipfile

    # A fixed timestamp (the export time, not the file system's) keeps packages reproducible.
    y, mo, d = int(created_at[0:4]), int(created_at[5:7]), int(created_at[8:10])
    h, mi, s = int(created_at[11:13]), int(created_at[14:16]), int(created_at[17:19])
    info = zipfile.ZipInfo(name, date_time=(max(y, 1980), mo, d, h, mi, s))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o600 << 16
    return info
