"""What every command needs from its invocation: the database, the actor, the clock."""

from __future__ import annotations

import getpass
import os
import sqlite3
from datetime import datetime
from pathlib import Path

import click

from .. import timeutil


def default_db_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "casectl" / "casectl.db"


def db_path(ctx: click.Context | None = None) -> Path:
    ctx = ctx or click.get_current_context()
    given = ctx.meta.get("casectl.db") or os.environ.get("CASECTL_DB")
    return Path(given).expanduser() if given else default_db_path()


def actor(ctx: click.Context | None = None) -> str:
    ctx = ctx or click.get_current_context()
    name = ctx.meta.get("casectl.actor") or os.environ.get("CASECTL_ACTOR")
    if name:
        return name
    try:
        return getpass.getuser()
    except Exception:  # no login name (containers, cron without USER)
        return "unknown"


def open_db(*, create: bool = False) -> sqlite3.Connection:
    """The command's connection (kept on the context for after-command delivery)."""
    from ..store import connect

    ctx = click.get_current_context()
    conn = connect(db_path(ctx), create=create)
    ctx.meta["casectl.conn"] = conn
    return conn


def now() -> datetime:
    return timeutil.now()
