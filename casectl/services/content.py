"""What a case holds: blocks, documents, KYC child cases and activities.

Blocks follow seed 000 (five kinds, edit rights, approve / ask to re-upload,
the re-upload flow); KYC blocks are child cases on their own workflow whose
conclusion is a system event on the parent. Activities follow seed 002
(created from the workflow's requirements with a snapshot of their config,
states, results, per-activity decisions). Every change appends an event.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import mimetypes
import os
import re
import sqlite3
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from .. import ids, rules
from ..errors import CasectlError, EnvironmentProblem, InvalidInput, NotAllowed, NotFound, UsageError, describe
from ..files import private_temp
from ..nested import deep_merge, set_path
from ..rules import Verdict, Workflow
from ..rules import blocks as block_rules
from ..rules.model import APPROVED
from ..store import activities as activity_store
from ..store import blocks as block_store
from ..store import cases as case_store
from ..store import documents as document_store
from ..store import write
from ..timeutil import iso
from . import children, lifecycle

_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


# --- small helpers ------------------------------------------------------------


def _cid(n: int | None) -> str | None:
    return ids.fmt("case", n)


def _refuse(what: str, case: dict[str, Any], verdict: Verdict) -> NotAllowed:
    return NotAllowed(f"cannot {what} on case {_cid(case['id'])}: {verdict.reason}")


def _open_case(conn: sqlite3.Connection, id_or_ref: str, what: str) -> tuple[dict[str, Any], Workflow]:
    case = lifecycle.load(conn, id_or_ref)
    return case, check_open(conn, case, what)


def check_open(conn: sqlite3.Connection, case: dict[str, Any], what: str) -> Workflow:
    """The case's workflow, if the case is open to `what` (exit 4 when it is closed)."""
    wf = lifecycle.workflow_of(conn, case)
    verdict = block_rules.case_open(wf, case["status"], what)
    if not verdict.allowed:
        raise _refuse(what, case, verdict)
    return wf


def _changed(
    conn: sqlite3.Connection,
    case_id: int,
    *,
    actor: str,
    now: datetime,
    editor: str | None = None,
    changes: dict[str, Any] | None = None,
) -> list[str]:
    """The case's content changed: bump its version, then fire the automatic actions this made possible."""
    children.touch(conn, case_id, at=iso(now), editor=editor, changes=changes)
    return lifecycle.advance(conn, case_id, actor=actor, now=now)


def _activity(conn: sqlite3.Connection, activity_id: int) -> dict[str, Any]:
    found = activity_store.activity(conn, activity_id)
    if found is None:
        raise NotFound(f"no activity {ids.fmt('activity', activity_id)}")
    return found


def _fmt_size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"  # pragma: no cover


def parse_value(text: str) -> Any:
    """KEY=VALUE values: JSON scalars, arrays and objects as such; anything else a string."""
    if text and (text[0] in '{["' or text in ("true", "false", "null") or re.fullmatch(r"-?\d+(\.\d+)?", text)):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    return text


def parse_assignments(pairs: Iterable[str], what: str) -> dict[str, Any]:
    """['a.b=1', 'c=x'] -> {'a': {'b': 1}, 'c': 'x'} (dotted keys nest)."""
    out: dict[str, Any] = {}
    pairs = list(pairs)
    if not pairs:
        raise UsageError(f"{what} needs at least one KEY=VALUE")
    for pair in pairs:
        key, sep, value = pair.partition("=")
        parts = key.split(".")
        if not sep or not key or any(not p.strip() for p in parts):
            raise InvalidInput(f"{what}: '{pair}' is not KEY=VALUE (dotted keys like address.city nest)")
        set_path(out, parts, parse_value(value))
    return out


def _flat(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out += _flat(v, f"{prefix}{k}.")
        else:
            out.append((f"{prefix}{k}", v))
    return out


def _assign_summary(changes: dict[str, Any]) -> str:
    items = [f"{k}={json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v}" for k, v in _flat(changes)]
    text = ", ".join(items)
    return text if len(text) <= 120 else text[:117] + "..."


# --- blocks: reading ------------------------------------------------------------


def _synthetic_blocks(case: dict[str, Any]) -> list[dict[str, Any]]:
    """The case's own data and registry data, shown and edited as blocks named data and registry."""
    return [
        {
            "id": None,
            "name": block_rules.DATA_BLOCK,
            "kind": "user_data",
            "status": None,
            "data": case["data"],
            "child_case_id": None,
            "attachment_count": 0,
            "decided_by": None,
            "decided_at": None,
        },
        {
            "id": None,
            "name": block_rules.REGISTRY_BLOCK,
            "kind": "registry_data",
            "status": None,
            "data": case["registry_data"],
            "child_case_id": None,
            "attachment_count": 0,
            "decided_by": None,
            "decided_at": None,
        },
    ]


def _find_block(conn: sqlite3.Connection, case: dict[str, Any], name: str) -> dict[str, Any]:
    for b in _synthetic_blocks(case):
        if b["name"] == name:
            return b
    found = block_store.block_by_name(conn, case["id"], name)
    if found is None:
        n = ids.parse("block", name) if name.upper().startswith("B") else None
        found = block_store.block_by_id(conn, case["id"], n) if n else None
    if found is None:
        names = [block_rules.DATA_BLOCK, block_rules.REGISTRY_BLOCK] + [
            b["name"] for b in block_store.blocks(conn, case["id"])
        ]
        raise NotFound(
            f"case {_cid(case['id'])} has no block '{name}' (blocks: {', '.join(names)}); "
            f"add one with `casectl block {_cid(case['id'])} add KIND NAME`"
        )
    return found


def _fields_summary(data: dict[str, Any]) -> str:
    keys = list(data)
    if not keys:
        return "empty"
    shown = ", ".join(keys[:5]) + (", ..." if len(keys) > 5 else "")
    return f"{len(keys)} field{'s' if len(keys) != 1 else ''}: {shown}"


def block_row(conn: sqlite3.Connection, b: dict[str, Any]) -> dict[str, Any]:
    """A block as `blocks` and `show` print it."""
    kind = rules.BLOCK_KINDS_BY_NAME[b["kind"]]
    doc = document_store.latest_attachment(conn, b["id"]) if b.get("id") else None
    if b["kind"] == "kyc":
        who = b.get("child_subject_name") or b.get("child_subject_email") or b["data"].get("name") or ""
        summary = f"{_cid(b.get('child_case_id'))} {who}: {b.get('child_status')}".replace("  ", " ")
    elif doc is not None:
        summary = f"{doc['filename']}, {doc['media_type'] or 'unknown type'}, {_fmt_size(doc['size'])}"
        if b.get("attachment_count", 0) > 1:
            summary += f" ({b['attachment_count']} versions)"
    elif b["kind"] == "document":
        summary = "no document yet"
    else:
        summary = _fields_summary(b["data"])
    status = b["status"]
    return {
        "id": ids.fmt("block", b.get("id")),
        "name": b["name"],
        "kind": b["kind"],
        "status": status,
        "status_label": status if status else ("awaiting review" if kind.has_status else "-"),
        "summary": summary,
        "editable": kind.agent_editable,
        "actions": list(kind.actions),
        "child": _cid(b.get("child_case_id")),
        "child_status": b.get("child_status"),
        "document": None
        if doc is None
        else {
            "filename": doc["filename"],
            "media_type": doc["media_type"],
            "size": doc["size"],
            "sha256": doc["sha256"],
            "attached_at": doc["created_at"],
            "attached_by": doc["created_by"],
        },
        "attachments": b.get("attachment_count", 0),
        "decided_by": b.get("decided_by"),
        "decided_at": b.get("decided_at"),
        "data": b["data"],
    }


def list_blocks(conn: sqlite3.Connection, id_or_ref: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    case = lifecycle.load(conn, id_or_ref)
    stored = block_store.blocks(conn, case["id"])
    return case, [block_row(conn, b) for b in _synthetic_blocks(case) + stored]


# --- blocks: creating -----------------------------------------------------------


def add_block(
    conn: sqlite3.Connection, id_or_ref: str, kind: str, name: str, data: dict[str, Any], *, actor: str, now: datetime
) -> dict[str, Any]:
    with write(conn):
        case, wf = _open_case(conn, id_or_ref, f"add block {name}")
        block_id, follow = children.new_block(conn, case, wf, kind, name, data, actor=actor, at=iso(now))
        lifecycle.carry_out(conn, follow, actor=actor, now=now)
        _changed(conn, case["id"], actor=actor, now=now, editor=actor)
        found = block_store.block_by_id(conn, case["id"], block_id)
        assert found is not None  # inserted in this transaction
        return block_row(conn, found)


# --- blocks: changing -----------------------------------------------------------


def _checked_block(
    conn: sqlite3.Connection, id_or_ref: str, name: str, action: str, what: str
) -> tuple[dict[str, Any], Workflow, dict[str, Any], Verdict]:
    """The open case, its block `name`, and the rules' verdict on `action`; refused with exit 4 if not allowed."""
    case, wf = _open_case(conn, id_or_ref, what)
    b = _find_block(conn, case, name)
    verdict = block_rules.block_check(
        wf,
        b["kind"],
        b["status"],
        action,
        child=_cid(b.get("child_case_id")),
        child_status=b.get("child_status"),
        child_final=b.get("child_final"),
        child_decision=b.get("child_decision"),
        has_document=bool(b.get("attachment_count")),
    )
    if not verdict.allowed:
        raise _refuse(what, case, verdict)
    return case, wf, b, verdict


def set_block(
    conn: sqlite3.Connection, id_or_ref: str, name: str, pairs: list[str], *, actor: str, now: datetime
) -> dict[str, Any]:
    """Edit a writable block's data (KEY=VALUE, dotted keys nest)."""
    changes = parse_assignments(pairs, f"block {name} set")
    with write(conn):
        case, wf, b, _ = _checked_block(conn, id_or_ref, name, "set", f"edit block {name}")
        at = iso(now)
        merged = deep_merge(b["data"], changes)
        if b["id"] is None:  # the case's own data
            _changed(conn, case["id"], actor=actor, now=now, editor=actor, changes={"data": merged})
        else:
            block_store.update_block(conn, b["id"], {"data": merged}, at=at)
            _changed(conn, case["id"], actor=actor, now=now, editor=actor)
        children.event(
            conn,
            case["id"],
            "block.set",
            actor=actor,
            at=at,
            summary=f"{name}: {_assign_summary(changes)}",
            block=name,
            changes=changes,
        )
        case = case_store.fetch(conn, case["id"])
        return block_row(conn, _find_block(conn, case, name))


def _block_decision(
    conn: sqlite3.Connection, id_or_ref: str, name: str, action: str, reason: str | None, *, actor: str, now: datetime
) -> dict[str, Any]:
    with write(conn):
        case, wf, b, verdict = _checked_block(conn, id_or_ref, name, action, f"{action} block {name}")
        at = iso(now)
        changes: dict[str, Any] = {"status": verdict.target}
        if action == "approve":
            changes.update(decided_by=actor, decided_at=at)
        block_store.update_block(conn, b["id"], changes, at=at)
        _changed(conn, case["id"], actor=actor, now=now)
        if action == "approve":
            summary = f"{name} approved"
        else:
            summary = f"{name} marked {verdict.target}"
        children.event(
            conn,
            case["id"],
            f"block.{action}",
            actor=actor,
            at=at,
            summary=summary,
            reason=reason,
            block=name,
            kind=b["kind"],
            **{"from": b["status"], "to": verdict.target},
        )
        case = case_store.fetch(conn, case["id"])
        return block_row(conn, _find_block(conn, case, name))


def approve_block(
    conn: sqlite3.Connection, id_or_ref: str, name: str, *, reason: str | None, actor: str, now: datetime
) -> dict[str, Any]:
    """Seed 000: the decision is saved on the case even while the case itself is undecided."""
    return _block_decision(conn, id_or_ref, name, "approve", reason, actor=actor, now=now)


def reupload_block(
    conn: sqlite3.Connection, id_or_ref: str, name: str, *, reason: str, actor: str, now: datetime
) -> dict[str, Any]:
    """Mark a block reupload_needed; `act ID request_reuploads` then asks for all marked ones."""
    if not (reason and reason.strip()):
        raise InvalidInput("reupload needs a reason: add --reason TEXT (it goes into the message to the subject)")
    return _block_decision(conn, id_or_ref, name, "reupload", reason, actor=actor, now=now)


# --- documents ------------------------------------------------------------------


DEFAULT_MAX_DOCUMENT_SIZE = 100 * 1024 * 1024  # bytes; CASECTL_MAX_DOCUMENT_SIZE or [documents] max_size
STDIN_FILENAME = "stdin"
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$", re.IGNORECASE)


def parse_size(raw: str | int, what: str) -> int:
    """A size in bytes: `5000000`, `50M`, `1G`, `1.5GiB` (K, M, G and T are powers of 1024)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    else:
        m = _SIZE.match(str(raw).strip())
        if m is None or not m.group(1).isascii():
            raise InvalidInput(f"{what}: '{raw}' is not a size; give bytes, or a number with K, M, G or T (e.g. 200M)")
        number = float(m.group(1)) * _UNITS[m.group(2).lower()]
        if not math.isfinite(number):
            raise InvalidInput(f"{what}: '{raw}' is too large a size")
        value = int(number)
    if value <= 0:
        raise InvalidInput(f"{what}: must be greater than 0")
    return value


def _fmt_binary(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            break
        size /= 1024
    if unit == "bytes":
        return f"{n} bytes"
    return f"{size:.0f} {unit}" if size == int(size) else f"{size:.1f} {unit}"


@dataclass
class DocumentFile:
    """A document to store, measured and hashed in chunks before any transaction opens. Its bytes
    are read a second time, in chunks, while they are written, and must hash the same: a file that
    changes on the way rolls back. stdin, a pipe or a device is first spooled to a private file."""

    label: str  # as the user named it, for messages
    filename: str
    media_type: str
    size: int
    sha256: str
    file: IO[bytes]

    def chunks(self) -> Iterator[bytes]:
        """The bytes again, in chunks; raises (nothing is stored) if they are not the ones hashed."""
        h = hashlib.sha256()
        seen = 0
        try:
            self.file.seek(0)
            while chunk := self.file.read(document_store.CHUNK):
                seen += len(chunk)
                if seen > self.size:
                    break
                h.update(chunk)
                yield chunk
        except OSError as e:
            raise _read_problem(self.label, e) from None
        if seen != self.size or h.hexdigest() != self.sha256:
            raise EnvironmentProblem(f"{self.label}: the file changed while it was being stored; nothing was stored")


def _read_problem(label: str, e: OSError) -> CasectlError:
    what = describe(e) or e.strerror or str(e)
    return EnvironmentProblem(f"{label}: cannot read it ({what}); nothing was stored")


_RAISE_LIMIT = "to attach it, raise CASECTL_MAX_DOCUMENT_SIZE or the config file's [documents] max_size, e.g. to 2G"


def _too_large(label: str, size: int | None, limit: int, hint: str) -> InvalidInput:
    over = f"the document size limit of {_fmt_binary(limit)} ({limit} bytes)"
    what = f"{_fmt_binary(size)} ({size} bytes) is over {over}" if size is not None else f"more than {over}"
    return InvalidInput(f"{label}: {what}; nothing was stored ({hint})")


def document_limit(conn: sqlite3.Connection, max_size: int) -> tuple[int, str]:
    """The largest document this database takes, and what to do about a larger one: the configured
    limit, or SQLite's own limit on one value (1e9 bytes by default) if that is lower."""
    sqlite_cap = conn.getlimit(sqlite3.SQLITE_LIMIT_LENGTH) - (1 << 16)  # the row's other columns
    if max_size <= sqlite_cap:
        return max_size, _RAISE_LIMIT
    return sqlite_cap, "SQLite stores at most that in one value; split the file or keep it elsewhere"


def _spool(
    source: IO[bytes], label: str, limit: int, hint: str, stack: contextlib.ExitStack
) -> tuple[IO[bytes], int, str]:
    """Copy a stream into a private temporary file (removed afterwards, or by the next run if this
    one is killed), hashing it, and stop as soon as it is over the limit."""
    fd, tmp = private_temp(name="document")
    stack.callback(_unlink, tmp)
    spool = stack.enter_context(os.fdopen(fd, "w+b"))
    h = hashlib.sha256()
    size = 0
    while True:
        try:
            chunk = source.read(document_store.CHUNK)
        except OSError as e:
            raise _read_problem(label, e) from None
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise _too_large(label, None, limit, hint)
        h.update(chunk)
        try:
            spool.write(chunk)
        except OSError as e:
            raise EnvironmentProblem(
                f"{label}: cannot keep a copy in {Path(tmp).parent} ({describe(e) or e.strerror}); nothing was stored"
            ) from None
    return spool, size, h.hexdigest()


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


@contextlib.contextmanager
def open_document(
    path: str | Path,
    *,
    limit: int = DEFAULT_MAX_DOCUMENT_SIZE,
    limit_hint: str = _RAISE_LIMIT,
    stdin: IO[bytes] | None = None,
    filename: str | None = None,
) -> Iterator[DocumentFile]:
    """Measure and hash a document (`-` is stdin) before any transaction opens: a missing, unreadable
    or too large file writes nothing. Memory stays flat: the bytes pass through in chunks."""
    with contextlib.ExitStack() as stack:
        if str(path) == "-":
            if stdin is None:
                raise UsageError("reading a document from stdin needs a stream")
            label = "stdin"
            f, size, sha256 = _spool(stdin, label, limit, limit_hint, stack)
            name = filename or STDIN_FILENAME
        else:
            p = Path(path)
            label = str(p)
            try:
                f = stack.enter_context(open(p, "rb"))
                st = os.fstat(f.fileno())
            except FileNotFoundError:
                raise NotFound(f"{p}: no such file") from None
            except IsADirectoryError:
                raise InvalidInput(f"{p}: is a directory, not a file") from None
            except PermissionError:
                raise InvalidInput(f"{p}: not readable (permission denied)") from None
            except OSError as e:
                raise InvalidInput(f"{p}: cannot read it ({e.strerror or e})") from None
            if stat.S_ISREG(st.st_mode):
                if st.st_size > limit:
                    raise _too_large(label, st.st_size, limit, limit_hint)
                size, sha256 = _measure(f, label, limit, limit_hint)
            else:  # a pipe or a device: read once, so keep a copy to read again
                f, size, sha256 = _spool(f, label, limit, limit_hint, stack)
            name = filename or p.name
        media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        yield DocumentFile(label, name, media_type, size, sha256, f)


def _measure(f: IO[bytes], label: str, limit: int, hint: str) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    try:
        while chunk := f.read(document_store.CHUNK):
            size += len(chunk)
            if size > limit:  # it grew while being read
                raise _too_large(label, None, limit, hint)
            h.update(chunk)
    except OSError as e:
        raise _read_problem(label, e) from None
    return size, h.hexdigest()


def _store_document(
    conn: sqlite3.Connection, case: dict[str, Any], b: dict[str, Any], f: DocumentFile, *, actor: str, at: str
) -> dict[str, Any]:
    new = document_store.put_document_chunks(
        conn, sha256=f.sha256, size=f.size, chunks=f.chunks(), media_type=f.media_type, at=at
    )
    attachment_id = document_store.insert_attachment(
        conn,
        case_id=case["id"],
        block_id=b["id"],
        sha256=f.sha256,
        filename=f.filename,
        media_type=f.media_type,
        size=f.size,
        at=at,
        actor=actor,
    )
    return {
        "attachment": attachment_id,
        "filename": f.filename,
        "media_type": f.media_type,
        "size": f.size,
        "sha256": f.sha256,
        "stored": "new" if new else "already stored",
    }


def attach(
    conn: sqlite3.Connection,
    id_or_ref: str,
    name: str,
    path: str | Path,
    *,
    actor: str,
    now: datetime,
    max_size: int = DEFAULT_MAX_DOCUMENT_SIZE,
    stdin: IO[bytes] | None = None,
    filename: str | None = None,
) -> dict[str, Any]:
    """Attach a file (`-`: stdin) to a block; the bytes are stored once under their sha256."""
    limit, hint = document_limit(conn, max_size)
    with open_document(path, limit=limit, limit_hint=hint, stdin=stdin, filename=filename) as f, write(conn):
        case, wf = _open_case(conn, id_or_ref, f"attach to block {name}")
        b = _find_block(conn, case, name)
        if b["id"] is None:
            raise NotAllowed(
                f"cannot attach to '{name}' on case {_cid(case['id'])}: it is the case's own data; "
                f"attach files to a document block (`casectl block {_cid(case['id'])} add document NAME`)"
            )
        verdict = block_rules.block_check(wf, b["kind"], b["status"], "attach")
        if not verdict.allowed:
            raise _refuse(f"attach to block {name}", case, verdict)
        at = iso(now)
        info = _store_document(conn, case, b, f, actor=actor, at=at)
        summary = f"{name}: {f.filename} ({f.media_type}, {_fmt_size(f.size)}, sha256 {f.sha256[:12]})"
        if b["status"] == APPROVED:
            # A changed document needs a new review.
            block_store.update_block(conn, b["id"], {"status": None, "decided_by": None, "decided_at": None}, at=at)
            summary += "; approval withdrawn for the new document"
        children.event(conn, case["id"], "document.attached", actor=actor, at=at, summary=summary, block=name, **info)
        _changed(conn, case["id"], actor=actor, now=now, editor=actor)
        return {"case": _cid(case["id"]), "block": name, **info}


def received(
    conn: sqlite3.Connection,
    id_or_ref: str,
    name: str,
    path: str | Path,
    *,
    actor: str,
    now: datetime,
    max_size: int = DEFAULT_MAX_DOCUMENT_SIZE,
    stdin: IO[bytes] | None = None,
    filename: str | None = None,
) -> dict[str, Any]:
    """The subject's re-upload arrived (`-`: on stdin): store it and put the block back for review."""
    limit, hint = document_limit(conn, max_size)
    with open_document(path, limit=limit, limit_hint=hint, stdin=stdin, filename=filename) as f, write(conn):
        case, wf, b, _ = _checked_block(conn, id_or_ref, name, "received", f"receive a re-upload for block {name}")
        at = iso(now)
        info = _store_document(conn, case, b, f, actor=actor, at=at)
        block_store.update_block(conn, b["id"], {"status": None, "decided_by": None, "decided_at": None}, at=at)
        children.event(
            conn,
            case["id"],
            "block.received",
            actor=actor,
            at=at,
            summary=f"{name}: re-upload received, {f.filename} ({_fmt_size(f.size)}); back for review",
            block=name,
            **{"from": b["status"], "to": None},
            **info,
        )
        fired = _changed(conn, case["id"], actor=actor, now=now)
        case = case_store.fetch(conn, case["id"])
        return {"case": _cid(case["id"]), "block": name, **info, "case_status": case["status"], "events": fired}


def attachments(conn: sqlite3.Connection, id_or_ref: str, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    case = lifecycle.load(conn, id_or_ref)
    b = _find_block(conn, case, name)
    rows = document_store.attachments(conn, b["id"]) if b["id"] else []
    return case, rows


def document(
    conn: sqlite3.Connection, id_or_ref: str, name: str, *, check_first: bool = False
) -> tuple[dict[str, Any], Iterator[bytes]]:
    """The block's current attachment and its bytes, in chunks read as they are asked for.

    The chunks are hashed on the way: when they do not match their sha256 the iterator raises
    at its end (a writer through `atomic_output` then leaves nothing). `check_first` reads them
    once more beforehand, for a stream that cannot take back what it was given (stdout).
    """
    case = lifecycle.load(conn, id_or_ref)
    b = _find_block(conn, case, name)
    att = document_store.latest_attachment(conn, b["id"]) if b["id"] else None
    if att is None:
        raise NotFound(
            f"block {name} of case {_cid(case['id'])} has no document; attach one with "
            f"`casectl attach {_cid(case['id'])} {name} FILE`"
        )
    if check_first:
        for _ in _checked_chunks(conn, att["sha256"]):
            pass
    return att, _checked_chunks(conn, att["sha256"])


def _checked_chunks(conn: sqlite3.Connection, sha256: str) -> Iterator[bytes]:
    damaged = EnvironmentProblem(
        f"the stored document {sha256[:12]} is missing or damaged; nothing was written; run `casectl db check`"
    )
    chunks = document_store.document_chunks(conn, sha256)
    if chunks is None:
        raise damaged

    def checked() -> Iterator[bytes]:
        h = hashlib.sha256()
        for chunk in chunks:
            h.update(chunk)
            yield chunk
        if h.hexdigest() != sha256:
            raise damaged

    return checked()


# --- the re-upload flow and KYC propagation (hooks) -------------------------------


# --- activities -----------------------------------------------------------------


def activity_row(a: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": ids.fmt("activity", a["id"]),
        "case": _cid(a["case_id"]),
        "case_status": a.get("case_status"),
        "workflow": a.get("workflow"),
        "subject_name": a.get("subject_name"),
        "type": a["type"],
        "label": a.get("label"),
        "state": a["state"],
        "assignee": a.get("assignee"),
        "team": a.get("team"),
        "result": a.get("result") or {},
        "decision": a.get("decision"),
        "decided_by": a.get("decided_by"),
        "decided_at": a.get("decided_at"),
        "requirement": a.get("requirement") or {},
        "created_at": a.get("created_at"),
        "created_by": a.get("created_by"),
        "updated_at": a.get("updated_at"),
    }


def list_activities(conn: sqlite3.Connection, id_or_ref: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    case = lifecycle.load(conn, id_or_ref)
    return case, [activity_row(a) for a in activity_store.activities(conn, case["id"])]


def select_activities(
    conn: sqlite3.Connection,
    *,
    states: Sequence[str] = (),
    types: Sequence[str] = (),
    teams: Sequence[str] = (),
    assignees: Sequence[str] = (),
    decisions: Sequence[str] = (),
    workflow: str | None = None,
    undecided: bool = False,
    limit: int | None = None,
) -> Iterable[dict[str, Any]]:
    """Activities across cases (seed 002's activity results page)."""
    unknown = [s for s in states if s not in rules.ACTIVITY_STATES]
    if unknown:
        raise InvalidInput(
            f"--state: unknown activity state '{unknown[0]}' (states: {', '.join(rules.ACTIVITY_STATES)})"
        )
    filters = {
        "state": list(states),
        "type": list(types),
        "team": list(teams),
        "assignee": list(assignees),
        "decision": list(decisions),
        "workflow": workflow,
    }
    return (
        activity_row(a)
        for a in activity_store.select_activities(conn, filters=filters, undecided=undecided, limit=limit)
    )


def _find_activity(conn: sqlite3.Connection, case: dict[str, Any], ref: str) -> dict[str, Any]:
    rows = activity_store.activities(conn, case["id"])
    n = ids.parse("activity", ref)
    if n is not None:
        for a in rows:
            if a["id"] == n:
                return a
    matches = [a for a in rows if a["type"] == ref]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise UsageError(
            f"case {_cid(case['id'])} has {len(matches)} '{ref}' activities "
            f"({', '.join(ids.fmt('activity', a['id']) for a in matches)}); name one by its id"
        )
    listed = ", ".join(f"{ids.fmt('activity', a['id'])} {a['type']}" for a in rows) or "none"
    raise NotFound(f"case {_cid(case['id'])} has no activity '{ref}' (activities: {listed})")


def _activity_name(a: dict[str, Any]) -> str:
    return f"{ids.fmt('activity', a['id'])} {a['type']}"


def add_activity(
    conn: sqlite3.Connection,
    id_or_ref: str,
    type_: str,
    *,
    label: str | None = None,
    assignee: str | None = None,
    team: str | None = None,
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    """An activity added by an agent (and perhaps handed to another team)."""
    if not _TYPE.match(type_ or ""):
        raise InvalidInput(f"activity type '{type_}': use lower-case letters, digits and _ (e.g. dbs_check)")
    with write(conn):
        case, _ = _open_case(conn, id_or_ref, f"add activity {type_}")
        return add_activity_in(conn, case, type_, label=label, assignee=assignee, team=team, actor=actor, now=now)


def add_activity_in(
    conn: sqlite3.Connection,
    case: dict[str, Any],
    type_: str,
    *,
    label: str | None = None,
    assignee: str | None = None,
    team: str | None = None,
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    """`add_activity` inside the caller's transaction, on a case already found open (a routine's step)."""
    at = iso(now)
    requirement = {"type": type_, "added_by": actor}
    aid = activity_store.insert_activity(
        conn,
        case_id=case["id"],
        type=type_,
        label=label,
        state=children.INITIAL_ACTIVITY_STATE,
        assignee=assignee,
        team=team,
        requirement=requirement,
        at=at,
        actor=actor,
    )
    to = f" for {assignee}" if assignee else (f" for team {team}" if team else "")
    children.event(
        conn,
        case["id"],
        "activity.add",
        actor=actor,
        at=at,
        summary=f"{ids.fmt('activity', aid)} {type_} added{to}",
        activity=ids.fmt("activity", aid),
        type=type_,
        assignee=assignee,
        team=team,
    )
    _changed(conn, case["id"], actor=actor, now=now)
    return activity_row(_activity(conn, aid))


def _activity_change(conn: sqlite3.Connection, id_or_ref: str, ref: str, what: str):
    case, wf = _open_case(conn, id_or_ref, f"{what} activity {ref}")
    return case, wf, _find_activity(conn, case, ref)


def set_activity_state(
    conn: sqlite3.Connection,
    id_or_ref: str,
    ref: str,
    state: str,
    *,
    reason: str | None = None,
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    with write(conn):
        case, wf, a = _activity_change(conn, id_or_ref, ref, "change the state of")
        if state not in wf.activity_states:
            raise InvalidInput(
                f"'{state}' is not an activity state of workflow {wf.name} (states: {', '.join(wf.activity_states)})"
            )
        if state == a["state"]:
            return activity_row(a) | {"changed": False}
        verdict = block_rules.activity_state_check(wf, a["state"], state)
        if not verdict.allowed:
            raise _refuse(f"move activity {_activity_name(a)} to {state}", case, verdict)
        at = iso(now)
        activity_store.update_activity(conn, a["id"], {"state": state}, at=at)
        children.event(
            conn,
            case["id"],
            "activity.state",
            actor=actor,
            at=at,
            reason=reason,
            summary=f"{_activity_name(a)}: {a['state']} -> {state}",
            activity=ids.fmt("activity", a["id"]),
            type=a["type"],
            **{"from": a["state"], "to": state},
        )
        fired = _changed(conn, case["id"], actor=actor, now=now)
        return activity_row(_activity(conn, a["id"])) | {"changed": True, "events": fired}


def set_activity_result(
    conn: sqlite3.Connection, id_or_ref: str, ref: str, pairs: list[str], *, actor: str, now: datetime
) -> dict[str, Any]:
    changes = parse_assignments(pairs, f"activity {ref} result")
    with write(conn):
        case, wf, a = _activity_change(conn, id_or_ref, ref, "record results on")
        if a["state"] == "cancelled":
            raise NotAllowed(
                f"cannot record results on activity {_activity_name(a)} of case {_cid(case['id'])}: it is cancelled"
            )
        at = iso(now)
        activity_store.update_activity(conn, a["id"], {"result": deep_merge(a["result"], changes)}, at=at)
        children.event(
            conn,
            case["id"],
            "activity.result",
            actor=actor,
            at=at,
            summary=f"{_activity_name(a)} result: {_assign_summary(changes)}",
            activity=ids.fmt("activity", a["id"]),
            type=a["type"],
            changes=changes,
        )
        _changed(conn, case["id"], actor=actor, now=now, editor=actor)
        return activity_row(_activity(conn, a["id"]))


def decide_activity(
    conn: sqlite3.Connection,
    id_or_ref: str,
    ref: str,
    decision: str,
    *,
    reason: str | None = None,
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    """Seed 002: decide each activity, then the case. A pending decision completes the activity."""
    with write(conn):
        case, wf, a = _activity_change(conn, id_or_ref, ref, "decide")
        verdict = block_rules.activity_decide_check(wf, a["state"], decision)
        if not verdict.allowed:
            err = _refuse(f"decide activity {_activity_name(a)}", case, verdict)
            if decision not in wf.decisions:
                raise InvalidInput(err.message)
            raise err
        at = iso(now)
        changes: dict[str, Any] = {"decision": decision, "decided_by": actor, "decided_at": at}
        if a["state"] != "complete":
            changes["state"] = "complete"
        activity_store.update_activity(conn, a["id"], changes, at=at)
        summary = f"{_activity_name(a)} decided {decision}"
        if a.get("decision") and a["decision"] != decision:
            summary += f" (was {a['decision']})"
        if "state" in changes:
            summary += f"; {a['state']} -> complete"
        children.event(
            conn,
            case["id"],
            "activity.decide",
            actor=actor,
            at=at,
            reason=reason,
            summary=summary,
            activity=ids.fmt("activity", a["id"]),
            type=a["type"],
            decision=decision,
            previous=a.get("decision"),
        )
        fired = _changed(conn, case["id"], actor=actor, now=now)
        return activity_row(_activity(conn, a["id"])) | {"events": fired}


def assign_activity(
    conn: sqlite3.Connection,
    id_or_ref: str,
    ref: str,
    *,
    assignee: str | None,
    team: str | None,
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    """Hand an activity to an agent or another team."""
    with write(conn):
        case, wf, a = _activity_change(conn, id_or_ref, ref, "assign")
        at = iso(now)
        changes = {k: v for k, v in (("assignee", assignee), ("team", team)) if v is not None}
        activity_store.update_activity(conn, a["id"], changes, at=at)
        children.event(
            conn,
            case["id"],
            "activity.assign",
            actor=actor,
            at=at,
            summary=f"{_activity_name(a)} handed to " + " / ".join(f"{k} {v}" for k, v in changes.items()),
            activity=ids.fmt("activity", a["id"]),
            type=a["type"],
            **changes,
        )
        _changed(conn, case["id"], actor=actor, now=now)
        return activity_row(_activity(conn, a["id"]))


# --- show -------------------------------------------------------------------------


def show_parts(conn: sqlite3.Connection, *, case: dict, wf: Workflow, actor: str | None, now: datetime) -> dict:
    """Parts of `show`, by JSON key: blocks, KYC child cases, activities."""
    kids = block_store.children(conn, case["id"])
    return {
        "blocks": [block_row(conn, b) for b in block_store.blocks(conn, case["id"])],
        "children": [
            {
                "id": _cid(k["id"]),
                "block": k["block"],
                "workflow": k["workflow"],
                "status": k["status"],
                "final": k["final"],
                "decision": k["decision"],
                "subject_name": k["subject_name"],
                "subject_email": k["subject_email"],
            }
            for k in kids
        ],
        "activities": [activity_row(a) for a in activity_store.activities(conn, case["id"])],
    }
