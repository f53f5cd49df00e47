"""Which backend a target or connection is: a leaf module every store module may import."""

from __future__ import annotations

_PG_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(target: object) -> bool:
    """Whether --db names a PostgreSQL database (a postgresql:// or postgres:// connection string,
    a libpq service among them: postgresql:///?service=cases) rather than a SQLite file."""
    return isinstance(target, str) and target[:13].lower().startswith(_PG_SCHEMES)


def dialect(conn: object) -> str:
    """ "sqlite" or "postgresql": where a store module must say its SQL for each."""
    return getattr(conn, "dialect", "sqlite")
