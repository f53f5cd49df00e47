"""All SQL lives in this package: the CLI and the services never write any.

Reads and writes use the standard library's sqlite3 connection directly;
sqlite-utils (a heavier import) builds and migrates the schema, the one
place where its declarative tables earn their start-up cost.
"""

from .db import connect, migrate, read, rollback, savepoint, write

__all__ = ["connect", "migrate", "read", "rollback", "savepoint", "write"]
