"""Conditions on a case's data: JMESPath expressions (https://jmespath.org), the language
Ballerine's workflow definitions use, in guards and routes.

A guard or a route's `when` is either a built-in guard's name (model.GUARDS) or an
expression over the case document (`case_document` in services/lifecycle.py):

    {"id": "C-12", "ref": ..., "status": ..., "priority": ..., "workflow": ...,
     "data": {...}, "registry_data": {...}, "tags": [...],
     "subject": {"name", "email", "dob", "country", "entity_type"},
     "blocks": [{"name", "kind", "status", "data"}...],
     "activities": [{"id", "type", "state", "decision", "result"}...],
     "children": [{"id", "workflow", "status", "final", "decision", "block"}...]}

It holds when its result is true in JMESPath's sense: not false, null, an empty
string, list or object. `jmespath` is imported only when a workflow has one.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=256)
def _compiled(expression: str) -> Any:
    import jmespath

    return jmespath.compile(expression)


def problem(expression: str) -> str | None:
    """Why `expression` is not a valid JMESPath expression, or None."""
    if not isinstance(expression, str) or not expression.strip():
        return "an empty condition"
    try:
        _compiled(expression)
    except Exception as e:  # jmespath.exceptions.ParseError and its kin: the message says where
        return f"not a valid JMESPath expression: {str(e).splitlines()[0]}"
    return None


def holds(expression: str, doc: Any) -> bool:
    """The expression's result on `doc`, by JMESPath truthiness. An expression that fails at
    run time (a function given the wrong type, e.g. `length(null)`) does not hold."""
    try:
        result = _compiled(expression).search(doc)
    except Exception:  # jmespath.exceptions.JMESPathTypeError: the data is not what it expected
        return False
    return result not in (None, False, "", [], {})


def explain(expression: str) -> str:
    return f"condition not met: {expression}"
