"""Short, human-typable ids: C-12 for cases, S-3 for subjects, A-7 for activities."""

from __future__ import annotations

import re
from typing import overload

PREFIXES = {
    "case": "C",
    "subject": "S",
    "activity": "A",
    "event": "E",
    "note": "N",
    "outbox": "O",
    "block": "B",
    "appointment": "M",
}
# ASCII letters and digits only: C-١ or C-１ are not case 1.
_ID = re.compile(r"^\s*([A-Za-z])?-?([0-9]+)\s*$", re.ASCII)
# Names a case by its external reference explicitly (`casectl show ref:12`).
REF_PREFIX = "ref:"


@overload
def fmt(kind: str, n: int) -> str: ...
@overload
def fmt(kind: str, n: int | None) -> str | None: ...
def fmt(kind: str, n: int | None) -> str | None:
    return None if n is None else f"{PREFIXES[kind]}-{n}"


def parse(kind: str, text: str) -> int | None:
    """'C-12', 'c12' or '12' -> 12; None when `text` is not an id of `kind`."""
    m = _ID.match(text or "")
    if not m:
        return None
    letter, digits = m.groups()
    if letter and letter.upper() != PREFIXES[kind]:
        return None
    n = int(digits)
    return n if 0 < n < 2**63 else None
