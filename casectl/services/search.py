"""`casectl search TEXT`: cases by id, reference, subject name, email or date of birth."""

from __future__ import annotations

import re
import sqlite3
from typing import Any, Iterator

from .. import ids
from ..errors import InvalidInput
from ..filters import CaseFilter
from ..store import search as search_store

_TOKEN = re.compile(r"[^\W_]+")


def match_query(text: str) -> str:
    """User text -> an FTS5 query: every word must match, as a prefix.

    A word with punctuation (an email, a date, C-12) becomes a phrase of its
    parts, so 'ada@exa' finds ada@example.com and '1990-05' a date of birth.
    The tokenizer folds case and accents on both sides ('Zoe' finds 'Zoë').
    """
    phrases = []
    for word in text.split():
        tokens = _TOKEN.findall(word)
        if tokens:
            phrases.append('"' + " ".join(tokens) + '"*')
    if not phrases:
        raise InvalidInput(f"search: '{text}' has no letters or digits to search for")
    return " ".join(phrases)


def search(conn: sqlite3.Connection, text: str, f: CaseFilter | None = None, *,
           limit: int | None = 50) -> Iterator[dict[str, Any]]:
    """Matching cases, best first: an exact id or reference, then by bm25 rank."""
    query = match_query(text)
    stripped = text.strip()
    return search_store.search(conn, query, f or CaseFilter(), exact_id=ids.parse("case", stripped),
                               exact_ref=stripped, limit=limit)
