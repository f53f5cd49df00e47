"""`casectl search TEXT`: cases by id, reference, subject name, email or date of birth."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from typing import Any

from .. import ids
from ..errors import InvalidInput
from ..filters import CaseFilter
from ..store import search as search_store

_TOKEN = re.compile(r"[^\W_]+")


def _phrases(text: str) -> list[list[str]]:
    return [tokens for tokens in (_TOKEN.findall(word) for word in text.split()) if tokens]


def _quote(tokens: list[str]) -> str:
    return '"' + " ".join(tokens) + '"'


def match_query(text: str) -> str:
    """User text -> an FTS5 query: every word must match, as a prefix.

    A word with punctuation (an email, a date, C-12) becomes a phrase of its
    parts, so 'ada@exa' finds ada@example.com and '1990-05' a date of birth.
    The tokenizer folds case and accents on both sides ('Zoe' finds 'Zoë').
    """
    phrases = [_quote(tokens) + "*" for tokens in _phrases(text)]
    if not phrases:
        raise InvalidInput(f"search: '{text}' has no letters or digits to search for")
    return " ".join(phrases)


def narrow_query(text: str) -> str | None:
    """A cheaper FTS5 query that every match of `match_query(text)` also matches,
    or None when it would be no cheaper.

    In a phrase like "user12345 example"* only the last word is a prefix; the
    words before it are whole tokens, usually rare (an email's local part), and
    the query without the trailing prefix ("user12345") reads a short list
    instead of every token starting with "example" (every email in the file).
    """
    phrases = _phrases(text)
    if not any(len(p) > 1 for p in phrases):
        return None
    return " ".join(_quote(p[:-1]) if len(p) > 1 else _quote(p) + "*" for p in phrases)


def search(
    conn: sqlite3.Connection, text: str, f: CaseFilter | None = None, *, limit: int | None = 50
) -> Iterator[dict[str, Any]]:
    """Matching cases, best first: an exact id or reference, then by bm25 rank."""
    query = match_query(text)
    stripped = text.strip()
    return search_store.search(
        conn,
        query,
        f or CaseFilter(),
        exact_id=ids.parse("case", stripped),
        exact_ref=stripped,
        limit=limit,
        narrow=narrow_query(text),
    )
