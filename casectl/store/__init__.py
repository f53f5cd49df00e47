"""All SQL lives in this package: the CLI and the services never write any.

Hot read paths use the standard library's sqlite3 connection directly;
sqlite-utils (a heavier import) is used where it earns its cost: migrations,
bulk inserts and introspection.
"""

from .db import connect, migrate, read, rollback, write

__all__ = ["connect", "migrate", "read", "rollback", "write"]
