"""PostgreSQL behind the connection the store already speaks to.

The store's modules are written against the DB-API as the standard library's
sqlite3 offers it: `conn.execute(sql, params)` with `?` placeholders, rows that
answer to a column name and to an index, `in_transaction`, the sqlite3
exception classes. `PgConnection` gives psycopg 3 that face, so one module of
SQL serves both backends; where the dialects differ the module asks
`dialect(conn)` and says each backend's SQL (search, JSON paths, documents,
the catalog).

The translation here is deliberately small and lexical: `?` becomes `%s`
(outside quotes), `%` is escaped, `INSERT OR IGNORE` becomes `ON CONFLICT DO
NOTHING`, `LIKE` keeps SQLite's case-insensitive meaning (`ILIKE`), `temp.`
names the session's temporary schema. An INSERT into a table with an `id`
answers `lastrowid` through `RETURNING id`. Errors come back as the sqlite3
classes the store already handles, with `sqlite_errorname` set to the SQLite
name of the same condition (a lock timeout is SQLITE_BUSY, a constraint is
SQLITE_CONSTRAINT), so `db.explain` gives the same one line on both.

Writers queue as they do on SQLite: `BEGIN IMMEDIATE` takes a transaction-
level advisory lock, waiting at most the busy timeout (`lock_timeout`), so a
command's transaction sees and changes the database alone, exactly as on the
embedded backend; readers are never blocked (MVCC), and a read transaction
is one REPEATABLE READ snapshot.

Only this module imports psycopg, and only a PostgreSQL target imports it.
"""

from __future__ import annotations

import contextlib
import functools
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import errors as pg_errors
from psycopg import pq
from psycopg.adapt import Loader
from psycopg.rows import tuple_row

from ..errors import EnvironmentProblem, InvalidInput, NotAllowed, NotFound
from .pg_schema import ID_TABLES

# Every writer's transaction holds this advisory lock: one writer at a time, as on SQLite.
WRITER_LOCK = 0x63617365  # "case"

# Tables whose rows have an integer `id` that an INSERT hands back as lastrowid.
_ID_TABLES = frozenset(ID_TABLES)
_INSERT = re.compile(r"^\s*INSERT\s+(?:OR\s+(IGNORE|REPLACE)\s+)?INTO\s+\"?(?:main\.)?(\w+)\"?", re.I)


def redacted(url: str) -> str:
    """The connection string without its password, for messages and `db_path`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "the PostgreSQL database"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


# --- rows -------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _row_class(names: tuple[str, ...]) -> type:
    index: dict[str, int] = {}
    for i, n in enumerate(names):
        index.setdefault(n.lower(), i)

    class Row(tuple):
        """A row as sqlite3.Row is one: by index, by (case-blind) column name, keys()."""

        __slots__ = ()

        def __getitem__(self, key):
            if isinstance(key, str):
                try:
                    key = index[key.lower()]
                except KeyError:
                    raise IndexError("No item with that key") from None
            return tuple.__getitem__(self, key)

        def keys(self) -> list[str]:
            return list(names)

    return Row


def _row_factory(cursor: Any):
    desc = cursor.description
    if desc is None:
        return tuple
    return _row_class(tuple(c.name for c in desc))


class _NumericLoader(Loader):
    """numeric (what sum() of integers gives) as int when whole, else float: as SQLite gives them."""

    def load(self, data: Any) -> int | float:
        text = bytes(data).decode()
        return float(text) if "." in text or text in ("NaN", "Infinity", "-Infinity") else int(text)


class _TextLoader(Loader):
    def load(self, data: Any) -> str:
        return bytes(data).decode()


# --- SQL ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=2048)
def translate(sql: str) -> str:
    """SQLite's spelling of one statement in PostgreSQL's (see the module's docstring)."""
    out: list[str] = []
    code: list[str] = []  # the text outside quotes, rewritten word by word before it is kept
    i, n = 0, len(sql)

    def flush() -> None:
        if code:
            out.append(_rewrite("".join(code)))
            code.clear()

    while i < n:
        ch = sql[i]
        if ch in "'\"":
            flush()
            j = i + 1
            while j < n:
                if sql[j] == ch:
                    if j + 1 < n and sql[j + 1] == ch:
                        j += 2
                        continue
                    break
                j += 1
            out.append(sql[i : j + 1].replace("%", "%%"))
            i = j + 1
            continue
        code.append(ch)
        i += 1
    flush()
    text = _json_numbers(_order_nulls(_json_group_array(_scalar_min_max("".join(out)))))
    m = _INSERT.match(sql)
    if m and m.group(1) and m.group(1).upper() == "IGNORE":
        text = _INSERT_OR.sub("INSERT INTO", text, count=1)
        text = _append_before_returning(text, " ON CONFLICT DO NOTHING")
    return text


_INSERT_OR = re.compile(r"INSERT\s+OR\s+IGNORE\s+INTO", re.I)
_WORDS = [
    (re.compile(r"CAST\(json_extract\(([\w.]+), \?\) AS TEXT\) = \?"), r"casectl_json_path_eq(\1, ?, ?)"),
    (re.compile(r"\bjson_extract\(", re.I), "casectl_json_extract("),
    (re.compile(r"%"), "%%"),
    (re.compile(r"\?"), "%s"),
    (re.compile(r"(?<![:\w]):([A-Za-z_]\w*)"), r"%(\1)s"),
    (re.compile(r"\s+WITHOUT\s+ROWID\b", re.I), ""),
    # SQLite's unary + on a column (`AND +c.due_at < ?`: keep the planner off that index).
    (re.compile(r"(?<=[\s(,])\+(?=[A-Za-z_])"), ""),
    (re.compile(r"\bIS\s+NOT\s+(?!NULL\b|TRUE\b|FALSE\b|DISTINCT\b)", re.I), "IS DISTINCT FROM "),
    (re.compile(r"\bIS\s+(?!NOT\b|NULL\b|TRUE\b|FALSE\b|DISTINCT\b)", re.I), "IS NOT DISTINCT FROM "),
    (re.compile(r"\bNOT\s+LIKE\b", re.I), "NOT ILIKE"),
    (re.compile(r"(?<!NOT )\bLIKE\b", re.I), "ILIKE"),
    (re.compile(r"\btemp\.", re.I), "pg_temp."),
    (re.compile(r"\bmain\.", re.I), ""),
]


# store/cases.py's `--where data.PATH<NUMBER`: a JSON number as a number, else NULL.
_JSON_NUMBER = re.compile(
    r"CASE WHEN json_type\(([\w.]+), %s\) IN \('integer', 'real'\) THEN casectl_json_extract\(\1, %s\) END"
)


def _json_numbers(text: str) -> str:
    def number(m: re.Match) -> str:
        doc = m.group(1)
        value = f"jsonb_path_query_first(replace({doc}, '\\u0000', '')::jsonb, %s::jsonpath)"
        return f"(CASE WHEN jsonb_typeof({value}) = 'number' THEN casectl_json_extract({doc}, %s)::float8 END)"

    return _JSON_NUMBER.sub(number, text) if "json_type(" in text else text


_MIN_MAX = re.compile(r"\b(max|min)\s*\(", re.I)


def _scalar_min_max(text: str) -> str:
    """SQLite's max(a, b) and min(a, b) of several arguments are PostgreSQL's greatest and least."""
    out, pos = [], 0
    for m in _MIN_MAX.finditer(text):
        _, commas = _close_paren(text, m.end() - 1)
        if commas:
            out.append(text[pos : m.start()] + ("greatest" if m.group(1).lower() == "max" else "least") + "(")
            pos = m.end()
    out.append(text[pos:])
    return "".join(out)


def _close_paren(text: str, open_at: int) -> tuple[int, int]:
    """The index of the parenthesis closing the one at `open_at` (quotes skipped), and how many
    commas stand directly inside the pair (a function's arguments, less one)."""
    depth, commas, quote, j = 0, 0, "", open_at
    while j < len(text):
        ch = text[j]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return j, commas
        elif ch == "," and depth == 1:
            commas += 1
        j += 1
    return len(text), commas


_JSON_GROUP_ARRAY = re.compile(r"\bjson_group_array\s*\(", re.I)


def _json_group_array(text: str) -> str:
    """json_group_array(x) is '[]' over no rows; json_agg is NULL there."""
    while (m := _JSON_GROUP_ARRAY.search(text)) is not None:
        end, _ = _close_paren(text, m.end() - 1)
        inner = text[m.end() : end]
        text = f"{text[: m.start()]}coalesce(json_agg({inner})::text, '[]'){text[end + 1 :]}"
    return text


# Columns that may be NULL, and so sort first on SQLite (last on PostgreSQL unless told).
NULLABLE = frozenset(
    """ref assignee team due_at decided_at decision decision_reason decided_by subject_id parent_id
    sla_paused_at sla_remaining status_since last_editor created_by next_attempt_at delivered_at
    claimed_until claimed_by last_error target event_id label starts_at cancelled_at email
    dob country action from_status to_status reason login block_id filename media_type with_whom
    child_case_id""".split()
)
_ORDER_BY = re.compile(r"\bORDER\s+BY\b", re.I)
_ORDER_END = re.compile(r"\b(LIMIT|OFFSET|FOR|RETURNING)\b|\)|;", re.I)
_IDENT = re.compile(r"\b([a-z_][a-z0-9_]*)\b", re.I)


def _order_nulls(text: str) -> str:
    """ORDER BY keeps SQLite's order for NULLs (first ascending, last descending) on the
    columns that may hold them (the indexes on those columns are built NULLS FIRST to match)."""
    out, pos = [], 0
    for m in _ORDER_BY.finditer(text):
        start = m.end()
        depth, j = 0, start
        items: list[tuple[int, int]] = []
        item_start = start
        while j < len(text):
            ch = text[j]
            if ch == "'":
                j = text.index("'", j + 1) + 1 if "'" in text[j + 1 :] else len(text)
                continue
            if ch == "(":
                depth += 1
            elif ch == ")":
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0:
                if ch == ",":
                    items.append((item_start, j))
                    item_start = j + 1
                elif ch == ";":
                    break
                elif ch.isalpha() and (j == 0 or not (text[j - 1].isalnum() or text[j - 1] == "_")):
                    word = re.match(r"[A-Za-z_]+", text[j:])
                    if word and word.group(0).upper() in ("LIMIT", "OFFSET", "FOR", "RETURNING"):
                        break
            j += 1
        items.append((item_start, j))
        out.append(text[pos:start])
        pieces = []
        prev = start
        for a, b in items:
            pieces.append(text[prev:a])
            item = text[a:b]
            pieces.append(_with_nulls(item))
            prev = b
        out.append("".join(pieces))
        pos = prev
    out.append(text[pos:])
    return "".join(out)


def _with_nulls(item: str) -> str:
    body = item.rstrip()
    tail = item[len(body) :]
    upper = body.upper()
    if "NULLS" in upper:
        return item
    names = {n.lower() for n in _IDENT.findall(body)}
    if not names & NULLABLE:
        return item
    if upper.endswith(" DESC"):
        return body + " NULLS LAST" + tail
    return body + " NULLS FIRST" + tail


def _rewrite(code: str) -> str:
    for pattern, replacement in _WORDS:
        code = pattern.sub(replacement, code)
    return code


def _append_before_returning(text: str, clause: str) -> str:
    m = re.search(r"\bRETURNING\b", text, re.I)
    if m:
        return text[: m.start()] + clause.strip() + " " + text[m.start() :]
    return text.rstrip().rstrip(";") + clause


# --- errors ---------------------------------------------------------------------------


class PgIntegrityError(sqlite3.IntegrityError):
    sqlite_errorname: str
    pg_code: str | None


class PgOperationalError(sqlite3.OperationalError):
    sqlite_errorname: str
    pg_code: str | None


class PgError(sqlite3.DatabaseError):
    sqlite_errorname: str
    pg_code: str | None


def _sqlite_name(e: psycopg.Error) -> str:
    if isinstance(e, pg_errors.IntegrityConstraintViolation | pg_errors.RaiseException):
        return "SQLITE_CONSTRAINT"
    if isinstance(
        e,
        pg_errors.LockNotAvailable
        | pg_errors.SerializationFailure
        | pg_errors.DeadlockDetected
        | pg_errors.QueryCanceled,
    ):
        return "SQLITE_BUSY"
    if isinstance(e, pg_errors.ReadOnlySqlTransaction):
        return "SQLITE_READONLY"
    if isinstance(e, pg_errors.DiskFull):
        return "SQLITE_FULL"
    if isinstance(e, pg_errors.InsufficientPrivilege):
        return "SQLITE_AUTH"
    if isinstance(e, psycopg.OperationalError):
        return "SQLITE_IOERR"
    return "SQLITE_ERROR"


def as_sqlite_error(e: psycopg.Error) -> sqlite3.Error:
    """The sqlite3 exception the store handles for this PostgreSQL error (see the module)."""
    name = _sqlite_name(e)
    message = _message(e)
    cls: type[PgIntegrityError | PgOperationalError | PgError]
    if name == "SQLITE_CONSTRAINT":
        cls = PgIntegrityError
    elif name in ("SQLITE_BUSY", "SQLITE_READONLY", "SQLITE_FULL", "SQLITE_IOERR", "SQLITE_AUTH"):
        cls = PgOperationalError
    else:
        cls = PgError
    err = cls(message)
    err.sqlite_errorname = name
    err.pg_code = getattr(e, "sqlstate", None)
    if isinstance(e, psycopg.OperationalError) and (err.pg_code is None or err.pg_code.startswith(("08", "57P"))):
        err.pg_code = err.pg_code or "08000"  # the connection is gone (the server stopped, the network)
    return err


def _message(e: psycopg.Error) -> str:
    diag = getattr(e, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    if isinstance(e, pg_errors.UniqueViolation) and diag is not None and diag.table_name:
        # SQLite's wording, which callers read to tell which key collided.
        detail = diag.message_detail or ""
        cols = re.match(r"Key \(([^)]*)\)", detail)
        names = ", ".join(f"{diag.table_name}.{c.strip()}" for c in (cols.group(1).split(",") if cols else []))
        return f"UNIQUE constraint failed: {names}" if names else (primary or str(e))
    if isinstance(e, pg_errors.ForeignKeyViolation):
        return "FOREIGN KEY constraint failed"
    if isinstance(e, pg_errors.NotNullViolation) and diag is not None:
        return f"NOT NULL constraint failed: {diag.table_name}.{diag.column_name}"
    return primary or str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


# --- the connection ---------------------------------------------------------------------


class Cursor:
    """What execute() returns: psycopg's cursor, with sqlite3's lastrowid."""

    __slots__ = ("_cur", "lastrowid")

    def __init__(self, cur: psycopg.Cursor, lastrowid: int | None = None):
        self._cur = cur
        self.lastrowid = lastrowid

    def fetchone(self):
        try:
            return self._cur.fetchone()
        except psycopg.ProgrammingError:  # no result (a statement that returns no rows)
            return None

    def fetchall(self) -> list:
        try:
            return self._cur.fetchall()
        except psycopg.ProgrammingError:
            return []

    def fetchmany(self, size: int = 1) -> list:
        try:
            return self._cur.fetchmany(size)
        except psycopg.ProgrammingError:
            return []

    def __iter__(self) -> Iterator:
        if self._cur.description is None:
            return iter(())
        return iter(self._cur)

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    @property
    def description(self):
        return self._cur.description

    def close(self) -> None:
        self._cur.close()


_NAMED = object()  # a PgCursor's default row_factory: rows by name and index


class PgCursor:
    """conn.cursor(): execute() keeps its result on the cursor, as sqlite3's does."""

    def __init__(self, conn: PgConnection):
        self._conn = conn
        self._result: Cursor | None = None
        self.row_factory: object = _NAMED  # as sqlite3: the connection's rows until set to None

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> PgCursor:
        # row_factory = None asks for plain tuples, as on sqlite3 (store/cases.py dicts: cheaper rows).
        self._result = self._conn.execute(sql, params, plain=self.row_factory is None)
        return self

    def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> PgCursor:
        self._result = self._conn.executemany(sql, seq)
        return self

    def _got(self) -> Cursor:
        if self._result is None:
            raise sqlite3.ProgrammingError("no statement was executed on this cursor")
        return self._result

    @property
    def description(self):
        return self._result.description if self._result else None

    @property
    def rowcount(self) -> int:
        return self._result.rowcount if self._result else -1

    @property
    def lastrowid(self) -> int | None:
        return self._result.lastrowid if self._result else None

    def fetchone(self):
        return self._got().fetchone()

    def fetchall(self) -> list:
        return self._got().fetchall()

    def fetchmany(self, size: int = 1) -> list:
        return self._got().fetchmany(size)

    def __iter__(self) -> Iterator:
        return iter(self._got())

    def close(self) -> None:
        if self._result is not None:
            self._result.close()


class PgConnection:
    """A casectl connection to PostgreSQL (see the module's docstring)."""

    dialect = "postgresql"

    def __init__(self, raw: psycopg.Connection, url: str, busy_timeout: float):
        self.raw = raw
        self.url = url
        self.db_path = redacted(url)
        self.read_only: str | None = None
        self.chain_key: object = None
        self.key_source: object = None
        self.row_factory: object = None  # rows are always sqlite3.Row-like; kept for symmetry
        self.busy_timeout = busy_timeout
        self.fresh = False  # whether connect() found no schema and made it (init's "created")
        self.login = ""  # session_user: the role the server authenticated (events record it)
        self.casectl_kind: str | None = None  # "agent", "lead" or "auditor" for a role `db grant` made

    # The DB-API the store uses.

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = (), *, plain: bool = False) -> Cursor:
        head = sql.lstrip()[:16].upper()
        if head.startswith("BEGIN"):
            return self._begin(head)
        insert = _INSERT.match(sql)
        query = translate(sql)
        returning = (
            insert is not None and insert.group(2).lower() in _ID_TABLES and not re.search(r"\bRETURNING\b", sql, re.I)
        )
        if returning:
            query = query.rstrip().rstrip(";") + " RETURNING id"
        cur = self.raw.cursor(row_factory=tuple_row) if plain else self.raw.cursor()
        values = _params(params)
        if _has_nul(values):
            values = _without_nul(sql, values)
        try:
            cur.execute(query, values)
        except pg_errors.NumericValueOutOfRange as e:
            raise OverflowError(_message(e)) from None  # as sqlite3 raises it: one line, exit 6
        except psycopg.Error as e:
            raise as_sqlite_error(e) from e
        if not returning:
            return Cursor(cur)
        ids = cur.fetchall()
        return Cursor(cur, ids[-1][0] if ids else None)

    def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> Cursor:
        cur = self.raw.cursor()
        try:
            cur.executemany(translate(sql), [_params(p) for p in seq])
        except psycopg.Error as e:
            raise as_sqlite_error(e) from e
        return Cursor(cur)

    def getlimit(self, category: int) -> int:
        """sqlite3's limits, as far as the store asks: parameters per statement (PostgreSQL: 65535)."""
        return 65535 if category == sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER else 1 << 30

    def cursor(self) -> PgCursor:
        return PgCursor(self)

    @property
    def in_transaction(self) -> bool:
        status = self.raw.info.transaction_status
        return status not in (pq.TransactionStatus.IDLE, pq.TransactionStatus.UNKNOWN)

    def close(self) -> None:
        self.raw.close()

    def commit(self) -> None:
        if self.in_transaction:
            self.raw.execute("COMMIT")

    def rollback(self) -> None:
        if self.in_transaction:
            self.raw.execute("ROLLBACK")

    def __enter__(self) -> PgConnection:
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is None:
            self.commit()
        else:
            self.rollback()

    def _begin(self, head: str) -> Cursor:
        cur = self.raw.cursor()
        try:
            if "IMMEDIATE" in head or "EXCLUSIVE" in head:
                cur.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (WRITER_LOCK,))
            else:
                cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        except psycopg.Error as e:
            if self.in_transaction:
                with contextlib.suppress(psycopg.Error):  # a connection that is gone has nothing to roll back
                    self.raw.execute("ROLLBACK")
            raise as_sqlite_error(e) from e
        return Cursor(cur)


def _has_nul(values: Sequence[Any] | dict[str, Any]) -> bool:
    items = values.values() if isinstance(values, dict) else values
    return any(isinstance(v, str) and "\x00" in v for v in items)


def _without_nul(sql: str, values: Sequence[Any] | dict[str, Any]) -> Sequence[Any] | dict[str, Any]:
    """PostgreSQL text cannot hold NUL. A read looking up a value with one finds nothing, as on
    SQLite where no stored id or name has one: the NUL is swapped for U+FFFF, a noncharacter no
    casectl text holds. A write of one is refused (exit 6)."""
    if not sql.lstrip()[:6].upper().startswith(("SELECT", "WITH")):
        raise InvalidInput("the text given holds a NUL character (\\x00), which PostgreSQL cannot store; remove it")

    def swap(v: Any) -> Any:
        return v.replace("\x00", "\uffff") if isinstance(v, str) else v

    if isinstance(values, dict):
        return {k: swap(v) for k, v in values.items()}
    return tuple(swap(v) for v in values)


def _params(params: Sequence[Any] | dict[str, Any] | None) -> Sequence[Any] | dict[str, Any]:
    if params is None:
        return ()
    if isinstance(params, dict):
        return params
    return tuple(params)


def connect(url: str, *, busy_timeout: float) -> PgConnection:
    """Open the database at this connection string (or libpq service), in autocommit: every
    transaction is begun by the store (store.db.write and read)."""
    try:
        raw = psycopg.connect(
            url,
            autocommit=True,
            row_factory=_row_factory,
            application_name="casectl",
            connect_timeout=max(1, int(busy_timeout)),
        )
    except psycopg.Error as e:
        raise _connect_problem(e, redacted(url)) from None
    raw.adapters.register_loader("numeric", _NumericLoader)
    raw.adapters.register_loader("jsonb", _TextLoader)
    raw.adapters.register_loader("json", _TextLoader)
    ms = max(1, int(busy_timeout * 1000))
    raw.execute(f"SET lock_timeout = {ms}")
    raw.execute("SET client_min_messages = warning")
    conn = PgConnection(raw, url, busy_timeout)
    conn.login, conn.casectl_kind = identity(conn)
    return conn


def _connect_problem(e: psycopg.Error, where: str) -> Exception:
    """Why the server could not be reached, as one line with the exit code of the same case on
    SQLite: no such database is a missing file (3), a role refused is not allowed (4), anything
    else (no server, a bad connection string) is the environment (7)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    reason = "; ".join(lines) or type(e).__name__
    reason = re.sub(r"^connection (failed|is bad): ", "", reason)
    reason = re.sub(r'connection to server at "[^"]*", port \d+ failed: (FATAL: +)?', "", reason)
    if re.search(r'database "[^"]*" does not exist', reason):
        return NotFound(f"no PostgreSQL database at {where} ({reason}); create it (createdb), then `casectl init`")
    if re.search(
        r"password authentication failed|role \"[^\"]*\" does not exist|no pg_hba.conf entry|permission denied", reason
    ):
        return NotAllowed(f"the PostgreSQL server refused {where} ({reason}); check the role and ~/.pgpass")
    return EnvironmentProblem(f"cannot connect to the PostgreSQL database {where}: {reason}")


# --- identities -----------------------------------------------------------------------------

KINDS = ("auditor", "agent", "lead")
GROUP = {kind: f"casectl_{kind}" for kind in KINDS}


def identity(conn: PgConnection) -> tuple[str, str | None]:
    """session_user, and the casectl kind `db grant` gave it (the strongest, if several)."""
    row = conn.execute(
        "SELECT session_user, (SELECT array_agg(g.rolname) FROM pg_auth_members m "
        "JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member "
        "WHERE u.rolname = session_user AND g.rolname IN ('casectl_auditor', 'casectl_agent', 'casectl_lead'))"
    ).fetchone()
    groups = set(row[1] or ())
    kind = next((k for k in reversed(KINDS) if GROUP[k] in groups), None)
    return row[0], kind


# What each kind may do, table by table (every table not named: SELECT only). An agent works
# cases: no purge (DELETE on cases, events), no redaction (erasures, UPDATE of event_texts),
# no workflow changes (workflows), no users or webhook subscriptions; restore is SQLite's.
_AGENT_WRITES = {
    "subjects": "INSERT, UPDATE",
    "cases": "INSERT, UPDATE",
    "case_tags": "INSERT, UPDATE, DELETE",
    "blocks": "INSERT, UPDATE",
    "activities": "INSERT, UPDATE",
    "events": "INSERT",
    "event_texts": "INSERT",
    "chain_heads": "INSERT, UPDATE",
    "chain_seal": "INSERT, UPDATE",
    "notes": "INSERT",
    "documents": "INSERT",
    "attachments": "INSERT",
    "outbox": "INSERT, UPDATE",
    "views": "INSERT, UPDATE, DELETE",
    "appointments": "INSERT, UPDATE",
    "routine_runs": "INSERT, UPDATE",
    "case_search": "INSERT, UPDATE, DELETE",
    "settings": "INSERT, UPDATE",
}


def grant(conn: PgConnection, role: str, kind: str) -> dict[str, Any]:
    """Make `role` (a login role, created when missing, without a password) an agent, lead or
    auditor of this database: the three group roles get their rights on every table, and the
    role is put in exactly one of them. Needs a role that may create roles and owns the tables."""
    from psycopg import sql as pgsql

    from ..rules import BUILTIN, workflow_to_dict
    from . import workflows as workflow_store

    if kind not in KINDS:
        raise ValueError(kind)
    schema = conn.execute("SELECT current_schema()").fetchone()[0]
    tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = ?", (schema,))]
    created = False

    def run(statement: Any) -> None:
        try:
            conn.raw.execute(statement)
        except psycopg.Error as e:
            raise as_sqlite_error(e) from e

    for k, group in GROUP.items():
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = ?", (group,)).fetchone() is None:
            run(pgsql.SQL("CREATE ROLE {} NOLOGIN").format(pgsql.Identifier(group)))
        ident = pgsql.Identifier(group)
        run(pgsql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(pgsql.Identifier(schema), ident))
        for t in tables:
            table = pgsql.Identifier(schema, t)
            run(pgsql.SQL("REVOKE ALL ON {} FROM {}").format(table, ident))
            rights = "SELECT"
            if k == "lead":
                rights = "ALL"
            elif k == "agent" and t in _AGENT_WRITES:
                rights = "SELECT, " + _AGENT_WRITES[t]
            run(pgsql.SQL("GRANT " + rights + " ON {} TO {}").format(table, ident))
    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = ?", (role,)).fetchone() is None:
        run(pgsql.SQL("CREATE ROLE {} LOGIN").format(pgsql.Identifier(role)))
        created = True
    for k, group in GROUP.items():
        if k != kind:
            run(pgsql.SQL("REVOKE {} FROM {}").format(pgsql.Identifier(group), pgsql.Identifier(role)))
    run(pgsql.SQL("GRANT {} TO {}").format(pgsql.Identifier(GROUP[kind]), pgsql.Identifier(role)))
    # Agents may not record workflows: the built-ins are recorded now, so that no agent needs to.
    from datetime import UTC, datetime

    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for wf in BUILTIN.values():
        workflow_store.save(conn, workflow_to_dict(wf), builtin=True, at=at, actor=conn.login)  # type: ignore[arg-type]
    return {"role": role, "as": kind, "created": created, "schema": schema}


# --- documents ---------------------------------------------------------------------------


def _copy_text(value: str | None) -> str:
    if value is None:
        return "\\N"
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def copy_document(
    conn: PgConnection, *, sha256: str, size: int, chunks: Iterable[bytes], media_type: str | None, at: str
) -> None:
    """A new document's row through COPY, its bytea written as hex a chunk at a time, so the
    client never holds the document whole (the server assembles the one value)."""
    head = "\t".join((_copy_text(sha256), str(size), _copy_text(media_type), _copy_text(at))) + "\t\\\\x"
    written = 0
    try:
        with conn.raw.cursor().copy(
            "COPY documents (sha256, size, media_type, created_at, content) FROM STDIN"
        ) as copy:
            copy.write(head)
            for chunk in chunks:
                if written + len(chunk) > size:
                    raise ValueError(f"the document is longer than the {size} bytes announced")
                copy.write(chunk.hex())
                written += len(chunk)
            if written != size:
                raise ValueError(f"the document has {written} bytes, not the {size} announced")
            copy.write("\n")
    except psycopg.Error as e:
        raise as_sqlite_error(e) from e


def copy_rows(conn: PgConnection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Rows into a table through COPY (store/bulk.py insert_rows, for many rows)."""
    statement = f"COPY {translate(table)} ({', '.join(columns)}) FROM STDIN"
    try:
        with conn.raw.cursor().copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
    except psycopg.Error as e:
        raise as_sqlite_error(e) from e


def _column_types(conn: PgConnection, table: str) -> dict[str, str]:
    sql = (
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped"
    )
    return {r[0]: r[1] for r in conn.raw.execute(sql, (translate(table),))}


def insert_arrays(
    conn: PgConnection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    ignore: bool,
    conflict: str,
) -> None:
    """Many rows as one INSERT ... SELECT FROM unnest(one array per column), with its ON
    CONFLICT clause (`ignore`: DO NOTHING): one statement to parse and plan, whatever the count."""
    types = _column_types(conn, table)
    arrays = ", ".join(f"%s::{types[c]}[]" for c in columns)
    clause = translate(conflict) if conflict else (" ON CONFLICT DO NOTHING" if ignore else "")
    statement = f"INSERT INTO {translate(table)} ({', '.join(columns)}) SELECT * FROM unnest({arrays}){clause}"
    values = [list(col) for col in zip(*rows, strict=True)]
    try:
        conn.raw.execute(statement, values)
    except psycopg.Error as e:
        raise as_sqlite_error(e) from e


# --- the schema ---------------------------------------------------------------------------


def has_tables(conn: PgConnection) -> bool:
    row = conn.execute("SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema()").fetchone()
    return bool(row and row[0])


def schema_version(conn: PgConnection) -> int:
    """How many migrations this database has had (0: not a casectl database yet)."""
    if conn.execute("SELECT to_regclass('_migrations')").fetchone()[0] is None:
        return 0
    return int(conn.execute("SELECT count(*) FROM _migrations").fetchone()[0])
