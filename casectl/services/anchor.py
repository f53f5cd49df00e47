"""`casectl db anchor`: a signed digest of every case's chain head, to keep outside the database.

The anchor lists each live case's event count and head hash, then the sha256 of
those lines and an HMAC of that digest under the chain key. `db check --anchor`
compares today's histories with it: a case whose history changed, lost or
gained events before the anchor was made is named, even by someone who could
rewrite the whole chain (they would need the anchor too, which left the machine).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from .. import ids
from ..errors import InvalidInput
from ..store import chain, read
from ..timeutil import iso

MAGIC = "casectl anchor 1"
_HEAD = re.compile(r"C-(\d+) (\d+) ([0-9a-f]{64})")


@dataclass
class Anchor:
    database: str
    made: str
    last_case: int
    last_event: int
    heads: dict[int, tuple[int, str]] = field(default_factory=dict)  # case id -> (events, head hash)
    signed: bool = False  # the signature verified under this database's key


def lines(conn: sqlite3.Connection, *, now: datetime) -> Iterator[str]:
    """The anchor, line by line (newline-terminated), streamed: a million cases never sit in memory."""
    key = chain.key(conn)
    digest = hashlib.sha256()

    def out(text: str) -> str:
        digest.update(text.encode("utf-8"))
        return text

    with read(conn):
        last_case, last_event = chain.seal(conn)
        yield out(f"{MAGIC}\n")
        yield out(f"database {chain.instance(conn)}\n")
        yield out(f"made {iso(now)}\n")
        yield out(f"seal {last_case} {last_event}\n")
        for case_id, n, head in chain.live_heads(conn):
            yield out(f"{ids.fmt('case', case_id)} {n} {head}\n")
    hexdigest = digest.hexdigest()
    yield f"digest sha256:{hexdigest}\n"
    yield f"signature hmac-sha256:{key.mac('anchor ' + hexdigest)}\n"


def parse(conn: sqlite3.Connection, text_lines: Iterator[str], source: str) -> Anchor:
    """Read an anchor file; InvalidInput (exit 6) when it is not one. `signed` says whether its
    signature holds under this database's key."""
    digest = hashlib.sha256()
    anchor: Anchor | None = None
    body_done = False
    got_digest = got_signature = ""
    for n, line in enumerate(text_lines, 1):
        if not body_done and line.startswith("digest "):
            body_done = True
        if body_done:
            word, _, value = line.strip().partition(" ")
            if word == "digest":
                got_digest = value.removeprefix("sha256:")
            elif word == "signature":
                got_signature = value.removeprefix("hmac-sha256:")
            elif line.strip():
                raise InvalidInput(f"{source} line {n}: unexpected text after the digest")
            continue
        digest.update(line.encode("utf-8"))
        text = line.rstrip("\n")
        if n == 1:
            if text != MAGIC:
                raise InvalidInput(f"{source} is not a casectl anchor (it does not start with '{MAGIC}')")
            continue
        word, _, value = text.partition(" ")
        try:
            if n == 2 and word == "database":
                anchor = Anchor(database=value, made="", last_case=0, last_event=0)
            elif anchor is not None and word == "made":
                anchor.made = value
            elif anchor is not None and word == "seal":
                a, b = value.split()
                anchor.last_case, anchor.last_event = int(a), int(b)
            elif anchor is not None and (m := _HEAD.fullmatch(text)):
                anchor.heads[int(m[1])] = (int(m[2]), m[3])
            else:
                raise ValueError
        except ValueError:
            raise InvalidInput(f"{source} line {n}: not an anchor line: {text[:60]!r}") from None
    if anchor is None or not got_digest or not got_signature:
        raise InvalidInput(f"{source} is not a complete casectl anchor (its digest or signature line is missing)")
    key = chain.key(conn)
    anchor.signed = hmac.compare_digest(digest.hexdigest(), got_digest) and hmac.compare_digest(
        key.mac("anchor " + got_digest), got_signature
    )
    return anchor
