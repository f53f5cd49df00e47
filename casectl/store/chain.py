"""The keyed hash chain: its key, each case's chain head and the database's seal.

Every event is an HMAC-SHA256 (keyed) over its fields and its case's previous
event. The key lives outside the database: `CASECTL_CHAIN_KEY`, or a key file
(mode 0600) that `casectl init` makes in the user's configuration directory,
one per database (named after the database's instance id), or the file
`CASECTL_CHAIN_KEY_FILE` names. Whoever holds the database but not the key
cannot write an event, a head or a seal that verifies.

- `chain_heads`: one row per case ever created: how many events its history
  has, its last event and hash, and `purged_at` once retention deleted it (a
  tombstone: the id is never used again). Each row carries its own MAC, so
  cutting a case's newest events, or deleting a whole case, shows.
- `chain_seal`: the last case id and event id handed out, MACed. New ids
  continue from it, so ids are never reused, and a removed newest case or
  event shows as a gap below the seal.
"""

from __future__ import annotations

import hmac
import json
import os
import pwd
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from json.encoder import encode_basestring
from pathlib import Path

from ..errors import EnvironmentProblem

KEY_ENV = "CASECTL_CHAIN_KEY"
KEY_FILE_ENV = "CASECTL_CHAIN_KEY_FILE"
_KEY_ID = "chain_key_id"  # settings: a fingerprint of the key, so a wrong key is named, never used
_INSTANCE = "instance_id"
_MIN_KEY = 16


@dataclass(frozen=True, slots=True)
class KeySource:
    """Where the chain key is looked for: CASECTL_CHAIN_KEY's value, else CASECTL_CHAIN_KEY_FILE,
    else `<key_dir>/<instance id>.key`. Built once from the environment by the settings."""

    env_key: str | None
    key_file: Path | None
    key_dir: Path

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> KeySource:
        base = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
        given = environ.get(KEY_FILE_ENV)
        return cls(
            env_key=environ.get(KEY_ENV) or None,
            key_file=Path(given).expanduser() if given else None,
            key_dir=Path(base) / "casectl" / "keys",
        )

    def path(self, instance: str) -> Path:
        return self.key_file or self.key_dir / f"{instance}.key"


@dataclass(frozen=True, slots=True)
class Key:
    secret: bytes
    source: str  # where it came from, for messages: "CASECTL_CHAIN_KEY" or the key file's path

    def mac(self, payload: str) -> str:
        return hmac.digest(self.secret, payload.encode("utf-8"), "sha256").hex()


def _instance(conn: sqlite3.Connection) -> str:
    row = conn.execute("SELECT value FROM settings WHERE key = ?", (_INSTANCE,)).fetchone()
    if row:
        return row[0]
    made = os.urandom(8).hex()
    conn.execute("INSERT INTO settings (key, value) VALUES (?, ?)", (_INSTANCE, made))
    return made


def _source(conn: sqlite3.Connection) -> KeySource:
    found = getattr(conn, "key_source", None)
    if found is None:
        raise EnvironmentProblem("no chain key source for this connection (open it with store.connect)")
    return found


def _fingerprint(key: Key) -> str:
    return key.mac(json.dumps(["casectl chain key"]))[:32]


def _from_env(source: KeySource) -> Key | None:
    raw = source.env_key
    if raw is None:
        return None
    text = raw.strip()
    if len(text) < _MIN_KEY:
        raise EnvironmentProblem(f"{KEY_ENV} is too short: give at least {_MIN_KEY} characters (64 hex digits is best)")
    return Key(text.encode("utf-8"), KEY_ENV)


def _read_file(path: Path) -> Key:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise EnvironmentProblem(
            f"this database's chain key is missing: no {KEY_ENV} and no key file {path}; "
            f"copy the key file from where the database was made, or set {KEY_ENV}"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise EnvironmentProblem(f"cannot read the chain key file {path}: {getattr(e, 'strerror', e)}") from None
    if len(text) < _MIN_KEY:
        raise EnvironmentProblem(f"the chain key file {path} is damaged (too short)")
    return Key(text.encode("utf-8"), str(path))


def _create_file(path: Path) -> Key:
    text = os.urandom(32).hex()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_file(path)
    except OSError as e:
        raise EnvironmentProblem(
            f"cannot create the chain key file {path}: {e.strerror}; set {KEY_ENV} or {KEY_FILE_ENV} instead"
        ) from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text + "\n")
        f.flush()
        os.fsync(f.fileno())
    return Key(text.encode("utf-8"), str(path))


def key(conn: sqlite3.Connection, source: KeySource | None = None) -> Key:
    """This database's chain key, checked against its fingerprint (kept on the connection).
    `source` for a connection store.connect did not open (tools, tests)."""
    found: Key | None = getattr(conn, "chain_key", None)
    if found is not None:
        return found
    row = conn.execute("SELECT value FROM settings WHERE key = ?", (_KEY_ID,)).fetchone()
    if row is None:
        raise EnvironmentProblem("this database has no chain key yet; run `casectl init` with write access")
    source = source or _source(conn)
    found = _from_env(source) or _read_file(source.path(_instance(conn)))
    if not hmac.compare_digest(_fingerprint(found), row[0]):
        raise EnvironmentProblem(
            f"the chain key from {found.source} is not this database's key; give the right one "
            f"({KEY_ENV} or the key file made with the database)"
        )
    _remember(conn, found)
    return found


def make_key(conn: sqlite3.Connection) -> Key:
    """The key for a database that has none yet (`init`, and the upgrade to the keyed chain):
    CASECTL_CHAIN_KEY, an existing key file, or a new key file (mode 0600)."""
    source = _source(conn)
    found = _from_env(source) or _create_file(source.path(_instance(conn)))
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (_KEY_ID, _fingerprint(found)),
    )
    _remember(conn, found)
    return found


def _remember(conn: sqlite3.Connection, found: Key) -> None:
    try:
        conn.chain_key = found  # type: ignore[attr-defined]
    except AttributeError:  # a plain sqlite3.Connection (tests, tools): looked up again next time
        pass


_login: str | None = None


def os_login() -> str:
    """The operating-system account running this process (from the password database, not from
    $USER, which anyone can set), or its uid when it has no name."""
    global _login
    if _login is None:
        uid = os.geteuid()
        try:
            _login = pwd.getpwuid(uid).pw_name
        except KeyError:
            _login = f"uid:{uid}"
    return _login


# --- heads and seal -----------------------------------------------------------------

HEAD_COLUMNS = ("case_id", "events", "last_event", "last_at", "head", "purged_at", "mac")


def head_mac(k: Key, case_id: int, events: int, last_event: int, last_at: str, head: str, purged_at: str | None) -> str:
    """The MAC of `json.dumps(["head", case_id, events, last_event, last_at, head, purged_at],
    separators=(",", ":"), ensure_ascii=False)`, its text written straight (a third of the time)."""
    purged = "null" if purged_at is None else encode_basestring(purged_at)
    return k.mac(
        f'["head",{int(case_id)},{int(events)},{int(last_event)},{encode_basestring(last_at)},'
        f"{encode_basestring(head)},{purged}]"
    )


def seal_mac(k: Key, last_case: int, last_event: int) -> str:
    return k.mac(json.dumps(["seal", last_case, last_event], separators=(",", ":")))


def seal(conn: sqlite3.Connection) -> tuple[int, int]:
    """(last case id, last event id) handed out so far."""
    row = conn.execute("SELECT last_case, last_event FROM chain_seal WHERE id = 1").fetchone()
    return (row[0], row[1]) if row else (0, 0)


def write_seal(conn: sqlite3.Connection, k: Key, last_case: int, last_event: int) -> None:
    conn.execute(
        "INSERT INTO chain_seal (id, last_case, last_event, mac) VALUES (1, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET last_case = excluded.last_case, last_event = excluded.last_event, "
        "mac = excluded.mac",
        (last_case, last_event, seal_mac(k, last_case, last_event)),
    )


def next_case_id(conn: sqlite3.Connection) -> int:
    """The next case id: after every id ever handed out (purged ones included)."""
    row = conn.execute(
        "SELECT max(coalesce((SELECT last_case FROM chain_seal WHERE id = 1), 0), "
        "coalesce((SELECT max(id) FROM cases), 0))"
    ).fetchone()
    return row[0] + 1


def tombstone(conn: sqlite3.Connection, case_ids: list[int], *, at: str) -> None:
    """Mark purged cases' heads: the history is gone on purpose, and its id stays used."""
    k = key(conn)
    for case_id in case_ids:
        row = conn.execute(
            "SELECT events, last_event, last_at, head FROM chain_heads WHERE case_id = ?", (case_id,)
        ).fetchone()
        if row is None:
            continue
        n, last_event, last_at, head = row
        conn.execute(
            "UPDATE chain_heads SET purged_at = ?, mac = ? WHERE case_id = ?",
            (at, head_mac(k, case_id, n, last_event, last_at, head, at), case_id),
        )


# --- what `db check` and `db anchor` read ------------------------------------------


def instance(conn: sqlite3.Connection) -> str:
    row = conn.execute("SELECT value FROM settings WHERE key = ?", (_INSTANCE,)).fetchone()
    return row[0] if row else "-"


def live_heads(conn: sqlite3.Connection) -> Iterator[tuple[int, int, str]]:
    """(case id, events, head hash) of every case not purged, in id order."""
    return conn.execute("SELECT case_id, events, head FROM chain_heads WHERE purged_at IS NULL ORDER BY case_id")


def heads_with_cases(conn: sqlite3.Connection) -> Iterator[sqlite3.Row]:
    """Every chain head in case order, with `has_case`: whether its case row is there."""
    return conn.execute(
        "SELECT h.*, c.id IS NOT NULL AS has_case FROM chain_heads h LEFT JOIN cases c ON c.id = h.case_id "
        "ORDER BY h.case_id"
    )


def seal_row(conn: sqlite3.Connection) -> sqlite3.Row | None:
    return conn.execute("SELECT last_case, last_event, mac FROM chain_seal WHERE id = 1").fetchone()


def top_ids(conn: sqlite3.Connection) -> tuple[int, int]:
    """The highest case and event ids in the tables."""
    row = conn.execute(
        "SELECT (SELECT coalesce(max(id), 0) FROM cases), (SELECT coalesce(max(id), 0) FROM events)"
    ).fetchone()
    return row[0], row[1]


def v1_breaks(conn: sqlite3.Connection) -> list[tuple[int, int]]:
    """Where the plain-sha256 chain was already broken when the keyed chain sealed it (migration 0009)."""
    row = conn.execute("SELECT value FROM settings WHERE key = 'chain_v1_breaks'").fetchone()
    return [(a, b) for a, b in json.loads(row[0])] if row else []
