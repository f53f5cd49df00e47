"""The settings of one invocation, read from the environment once, at the root.

The root callback builds a `Settings` from the command line and the
environment (like httpie's `Environment`) and keeps it, with the connection
the command opens, in an `Invocation` on the click context's `obj`. Commands
read it through `settings()`, `open_db()`, `actor()` and `now()`, and hand
the values to the services as arguments: nothing below the CLI reads an
environment variable.
"""

from __future__ import annotations

import getpass
import math
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from .. import timeutil
from ..errors import InvalidInput, NotAllowed, UsageError

if TYPE_CHECKING:
    from ..services.notify import SendSettings
    from ..store.chain import KeySource

SMTP_KEYS = ("host", "port", "from", "user", "tls")  # CASECTL_SMTP_<KEY> overrides the config file's [smtp] <key>


@dataclass(frozen=True, kw_only=True)
class Settings:
    db_path: Path | str  # a SQLite file, or a PostgreSQL connection string (store.db.is_postgres)
    actor: str
    actor_given: bool = False  # --actor or CASECTL_ACTOR named it (else it is the login name)
    no_deliver: bool = False
    busy_timeout: float  # seconds a writer waits for another before giving up (exit 5)
    pinned_now: str | None = None  # CASECTL_NOW; parsed when the clock is read, as before
    allow_clock: bool = False  # CASECTL_ALLOW_CLOCK=1: only then may CASECTL_NOW pin the clock
    config_path: Path
    smtp_overrides: Mapping[str, str]
    digest_to: str | None = None
    # Parsed when a delivery needs them, so that a bad value fails only the commands that deliver.
    delivery_timeout_raw: str | None = None
    delivery_max_attempts_raw: str | None = None
    # Where messages may go and which variables are secrets (else the config file's [delivery] keys).
    allow_private_targets_raw: str | None = None
    secret_env_raw: str | None = None
    # CASECTL_MAX_DOCUMENT_SIZE, else the config file's [documents] max_size; parsed when a document is stored.
    max_document_size_raw: str | None = None
    # Secrets are looked up by the variable name a hook, a CRM effect or the config gives,
    # so the whole environment is kept, as the command found it (and never printed).
    secrets: Mapping[str, str] = field(repr=False)
    # CASECTL_CHAIN_KEY, CASECTL_CHAIN_KEY_FILE, else the key file in the configuration directory.
    chain_key: KeySource | None = field(repr=False, default=None)

    @classmethod
    def from_environ(
        cls,
        environ: Mapping[str, str],
        *,
        db: str | None = None,
        actor: str | None = None,
        no_deliver: bool = False,
    ) -> Settings:
        def get(name: str) -> str | None:
            return environ.get(name) or None  # set but empty is unset

        return cls(
            db_path=_db_path(db or get("CASECTL_DB"), environ),
            actor=actor or get("CASECTL_ACTOR") or _login_name(),
            actor_given=bool(actor or get("CASECTL_ACTOR")),
            no_deliver=no_deliver or environ.get("CASECTL_NO_DELIVER", "") not in ("", "0"),
            busy_timeout=_busy_timeout(get("CASECTL_BUSY_TIMEOUT")),
            pinned_now=get("CASECTL_NOW"),
            allow_clock=timeutil.clock_allowed(environ),
            config_path=_config_path(environ),
            smtp_overrides={k: v for k in SMTP_KEYS if (v := environ.get(f"CASECTL_SMTP_{k.upper()}"))},
            digest_to=get("CASECTL_DIGEST_TO"),
            delivery_timeout_raw=get("CASECTL_DELIVERY_TIMEOUT"),
            delivery_max_attempts_raw=get("CASECTL_DELIVERY_MAX_ATTEMPTS"),
            allow_private_targets_raw=get("CASECTL_ALLOW_PRIVATE_TARGETS"),
            secret_env_raw=get("CASECTL_SECRET_ENV"),
            max_document_size_raw=get("CASECTL_MAX_DOCUMENT_SIZE"),
            secrets=dict(environ),
            chain_key=_chain_key_source(environ),
        )

    def with_options(self, *, db: str | None = None, actor: str | None = None, no_deliver: bool = False) -> Settings:
        """The settings with --db, --actor or --no-deliver given after the command."""
        return replace(
            self,
            db_path=_db_path(db, {}) if db else self.db_path,
            actor=actor or self.actor,
            actor_given=self.actor_given or bool(actor),
            no_deliver=self.no_deliver or no_deliver,
        )

    def now(self) -> datetime:
        return timeutil.clock(self.pinned_now, allowed=self.allow_clock)

    def delivery_timeout(self) -> float:
        from ..services.outbox import DEFAULT_TIMEOUT

        return _positive("CASECTL_DELIVERY_TIMEOUT", self.delivery_timeout_raw, DEFAULT_TIMEOUT, float)

    def delivery_max_attempts(self) -> int:
        from ..services.outbox import DEFAULT_MAX_ATTEMPTS

        return _positive("CASECTL_DELIVERY_MAX_ATTEMPTS", self.delivery_max_attempts_raw, DEFAULT_MAX_ATTEMPTS, int)

    def max_document_size(self) -> int:
        """The largest document `attach` and `received` store, in bytes (100 MiB unless configured)."""
        from ..services.content import DEFAULT_MAX_DOCUMENT_SIZE, parse_size

        if self.max_document_size_raw is not None:
            return parse_size(self.max_document_size_raw, "CASECTL_MAX_DOCUMENT_SIZE")
        from ..services.notify import load_config

        table = load_config(self.config_path).get("documents", {})
        raw = table.get("max_size") if isinstance(table, dict) else None
        if raw is None:
            return DEFAULT_MAX_DOCUMENT_SIZE
        return parse_size(raw, f"config file {self.config_path}: [documents] max_size")

    def send_settings(self) -> SendSettings:
        """What sending a webhook, an email or a CRM call needs from outside the database."""
        from ..services.notify import SendSettings

        return SendSettings(
            config_path=self.config_path,
            smtp_overrides=self.smtp_overrides,
            digest_to=self.digest_to,
            secrets=self.secrets,
            allow_private_targets=self.allow_private_targets_raw,
            secret_env=self.secret_env_raw,
        )


def _db_path(given: str | None, environ: Mapping[str, str]) -> Path | str:
    if given and given[:13].lower().startswith(("postgresql://", "postgres://")):
        return given  # store.db.is_postgres: kept as given (a Path would fold its //)
    if given:
        return Path(given).expanduser()
    base = environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "casectl" / "casectl.db"


def _chain_key_source(environ: Mapping[str, str]) -> KeySource:
    from ..store.chain import KeySource

    return KeySource.from_environ(environ)


def _config_path(environ: Mapping[str, str]) -> Path:
    given = environ.get("CASECTL_CONFIG")
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            # Named but absent (a typo in a crontab): the settings it holds would silently not apply.
            from ..errors import NotFound

            what = "is not a file" if path.exists() else "does not exist"
            raise NotFound(
                f"CASECTL_CONFIG: {path} {what}; create it, or unset CASECTL_CONFIG to use {_default_config(environ)}"
            )
        return path
    return _default_config(environ)


def _default_config(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "casectl" / "config.toml"


def _login_name() -> str:
    # getpass looks at LOGNAME, USER, LNAME and USERNAME, then the password database.
    try:
        return getpass.getuser()
    except Exception:  # no login name (containers, cron without USER)
        return "unknown"


def _busy_timeout(raw: str | None) -> float:
    if raw is None:
        from ..store.db import DEFAULT_BUSY_TIMEOUT

        return DEFAULT_BUSY_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise UsageError(f"CASECTL_BUSY_TIMEOUT: '{raw}' is not a positive number of seconds")
    return value


N = TypeVar("N", int, float)


def _positive(name: str, raw: str | None, default: N, kind: type[N]) -> N:
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise InvalidInput(f"{name}: '{raw}' is not a number") from None
    if value <= 0:
        raise InvalidInput(f"{name}: must be greater than 0")
    return value


@dataclass
class Invocation:
    """One run of a command: its settings, and the connection it opened (delivered from afterwards)."""

    settings: Settings
    conn: sqlite3.Connection | None = None
    delivers_itself: bool = False  # `outbox deliver`: no second delivery after it


def invocation(ctx: click.Context | None = None) -> Invocation:
    ctx = ctx or click.get_current_context()
    found = ctx.find_object(Invocation)
    if found is None:  # a command run without the root callback: a bug, not a user error
        raise RuntimeError("casectl command invoked outside the casectl root command")
    return found


def settings() -> Settings:
    return invocation().settings


def db_path() -> Path | str:
    return settings().db_path


def actor() -> str:
    return settings().actor


def now() -> datetime:
    return settings().now()


def open_db(*, create: bool = False) -> sqlite3.Connection:
    """The command's connection (kept on the invocation to deliver, afterwards, what it queued)."""
    from ..store import connect
    from ..store import outbox as outbox_store

    inv = invocation()
    from ..files import protect_database

    if isinstance(inv.settings.db_path, Path):
        protect_database(inv.settings.db_path)  # no -o of this command may replace it
    conn = connect(
        inv.settings.db_path,
        create=create,
        busy_timeout=inv.settings.busy_timeout,
        key_source=inv.settings.chain_key,
    )
    outbox_store.track_queued(conn)
    inv.conn = conn
    kind = getattr(conn, "casectl_kind", None)
    if kind is not None:
        inv.settings = replace(inv.settings, actor=_as_role(inv.settings, conn.login))  # type: ignore[attr-defined]
    return conn


def _as_role(settings: Settings, role: str) -> str:
    """On PostgreSQL a role `db grant` made acts as itself: the actor of every event is the role
    the server authenticated, and --actor or CASECTL_ACTOR may not name someone else."""
    if settings.actor_given and settings.actor != role:
        raise NotAllowed(
            f"you are connected as the PostgreSQL role '{role}', which acts as itself: "
            f"--actor/CASECTL_ACTOR '{settings.actor}' is not allowed here (leave it out)"
        )
    return role


def effective(settings: Settings) -> list[dict[str, str]]:
    """Every setting a command runs with, its value and where it came from (`casectl config`).
    Secrets are never shown: only whether they are set, and by which variable. Each value is
    checked as the command that uses it would check it, so a bad one fails here (exit 6, naming
    the variable or the file and key), not in the night's cron job."""
    from ..services.notify import load_config

    send = settings.send_settings()
    send.smtp(), send.target_policy(), send.declared_secrets()
    settings.delivery_timeout(), settings.delivery_max_attempts(), settings.max_document_size()

    env = settings.secrets  # the environment, as the command found it
    rows: list[dict[str, str]] = []

    def add(name: str, value: object, source: str) -> None:
        rows.append({"setting": name, "value": "" if value is None else str(value), "source": source})

    def var(name: str) -> str | None:
        return env.get(name) or None

    default_db = _db_path(None, env)
    if var("CASECTL_DB") and _db_path(var("CASECTL_DB"), env) == settings.db_path:
        db_source = "CASECTL_DB"
    elif settings.db_path == default_db:
        db_source = "default (XDG data directory)"
    else:
        db_source = "--db"
    shown_db = settings.db_path
    if isinstance(shown_db, str):
        from ..store.pg import redacted

        shown_db = redacted(shown_db)
    add("database", shown_db, db_source)
    add("backend", "postgresql" if isinstance(settings.db_path, str) else "sqlite", "from the database setting")
    if not settings.actor_given:
        actor_source = "login name"
    elif var("CASECTL_ACTOR") == settings.actor:
        actor_source = "CASECTL_ACTOR"
    else:
        actor_source = "--actor"
    add("actor", settings.actor, actor_source)
    config_given = var("CASECTL_CONFIG")
    exists = settings.config_path.is_file()
    add(
        "config file",
        settings.config_path,
        ("CASECTL_CONFIG" if config_given else "default") + ("" if exists else " (no such file: nothing read)"),
    )
    doc = load_config(settings.config_path) if exists else {}
    where = "config file: [{}] {}"

    def table(name: str) -> dict:
        t = doc.get(name, {})
        return t if isinstance(t, dict) else {}

    smtp = table("smtp")
    for key in SMTP_KEYS:
        if key in settings.smtp_overrides:
            add(f"smtp.{key}", settings.smtp_overrides[key], f"CASECTL_SMTP_{key.upper()}")
        elif key in smtp:
            add(f"smtp.{key}", smtp[key], where.format("smtp", key))
        else:
            add(f"smtp.{key}", {"tls": "none"}.get(key), "default" if key == "tls" else "not set")
    password_env = str(smtp.get("password_env") or "CASECTL_SMTP_PASSWORD")
    add("smtp.password", "set" if var(password_env) else "not set", password_env)
    digest = table("digest")
    if settings.digest_to:
        add("digest.to", settings.digest_to, "CASECTL_DIGEST_TO")
    else:
        add("digest.to", digest.get("to"), where.format("digest", "to") if "to" in digest else "not set")
    add(
        "delivery",
        "left for `casectl outbox deliver`" if settings.no_deliver else "after each command",
        "--no-deliver or CASECTL_NO_DELIVER" if settings.no_deliver else "default",
    )
    from ..services.outbox import DEFAULT_MAX_ATTEMPTS, DEFAULT_TIMEOUT

    for name, raw, variable, default in (
        ("delivery.timeout", settings.delivery_timeout_raw, "CASECTL_DELIVERY_TIMEOUT", f"{DEFAULT_TIMEOUT:g} s"),
        (
            "delivery.max_attempts",
            settings.delivery_max_attempts_raw,
            "CASECTL_DELIVERY_MAX_ATTEMPTS",
            DEFAULT_MAX_ATTEMPTS,
        ),
    ):
        add(name, raw if raw is not None else default, variable if raw is not None else "default")
    delivery = table("delivery")
    for key, raw, variable in (
        ("allow_private_targets", settings.allow_private_targets_raw, "CASECTL_ALLOW_PRIVATE_TARGETS"),
        ("secret_env", settings.secret_env_raw, "CASECTL_SECRET_ENV"),
    ):
        if raw is not None:
            add(f"delivery.{key}", raw, variable)
        elif key in delivery:
            add(f"delivery.{key}", delivery[key], where.format("delivery", key))
        else:
            add(f"delivery.{key}", None, "not set")
    documents = table("documents")
    if settings.max_document_size_raw is not None:
        add("documents.max_size", settings.max_document_size_raw, "CASECTL_MAX_DOCUMENT_SIZE")
    elif "max_size" in documents:
        add("documents.max_size", documents["max_size"], where.format("documents", "max_size"))
    else:
        add("documents.max_size", "100 MiB", "default")
    add(
        "busy timeout",
        f"{settings.busy_timeout:g} s",
        "CASECTL_BUSY_TIMEOUT" if var("CASECTL_BUSY_TIMEOUT") else "default",
    )
    if settings.pinned_now and settings.allow_clock:
        add("clock", settings.pinned_now, "CASECTL_NOW (pinned: CASECTL_ALLOW_CLOCK=1)")
    elif settings.pinned_now:
        add("clock", "refused", "CASECTL_NOW is set without CASECTL_ALLOW_CLOCK=1: commands exit 2")
    else:
        add("clock", timeutil.iso(timeutil.clock()), "system clock")
    chain = settings.chain_key
    if chain is not None:
        if chain.env_key:
            add("chain key", "set", "CASECTL_CHAIN_KEY")
        elif chain.key_file is not None:
            add("chain key", chain.key_file, "CASECTL_CHAIN_KEY_FILE")
        else:
            add("chain key", chain.key_dir / "<instance id>.key", "default (per database, beside the config)")
    return rows
