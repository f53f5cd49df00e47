"""Field checks for a new case, shared by `create`, `import` and child cases.

Pure functions of the new case and its workflow, and of the time it is made
(pycountry's code list is loaded on first use); the kernel refuses what they
find.
"""

from __future__ import annotations

import functools
import math
import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from .. import ids
from ..rules import Workflow
from ..timeutil import valid_date
from .records import NewCase

PRIORITIES = ("low", "normal", "high", "urgent")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
# C-3, c3, C3: what the command line reads as a case id. Plain numbers stay allowed (reached as ref:12).
_CASE_ID_LIKE = re.compile(r"^\s*[Cc]-?[0-9]+\s*$", re.ASCII)
# The first place on Earth where a day begins (UTC+14): a date of birth later than the day
# begun there is in the future for everyone.
_FIRST_ZONE = timezone(timedelta(hours=14))


@functools.lru_cache(maxsize=1)
def country_codes() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes, from pycountry (loaded on first use)."""
    import pycountry

    return frozenset(c.alpha_2 for c in pycountry.countries)


# Codes people write that ISO 3166 reserves for another country's code.
_RESERVED = {"UK": "GB", "EL": "GR"}


def country_problem(value: str) -> str | None:
    """What is wrong with a country given as `value` (None if it is an ISO 3166 alpha-2 code),
    with the code that was probably meant: UK -> GB, Germany -> DE, DEU -> DE."""
    code = value.strip().upper()
    if _COUNTRY.match(code) and code in country_codes():
        return None
    what = (
        f"'{value}' is not an ISO 3166 country code"
        if _COUNTRY.match(code)
        else f"'{value}' is not an ISO 3166 alpha-2 code like GB or HK"
    )
    guesses = country_guesses(value)
    return f"{what}; did you mean {' or '.join(guesses)}?" if guesses else what


@functools.lru_cache(maxsize=256)
def country_guesses(value: str) -> tuple[str, ...]:
    """The alpha-2 codes `value` most likely means, best first (at most three)."""
    import pycountry

    text = value.strip()
    if text.upper() in _RESERVED:
        code = _RESERVED[text.upper()]
        country = pycountry.countries.get(alpha_2=code)
        return (f"{code} ({country.name})" if country is not None else code,)
    try:
        found = [pycountry.countries.lookup(text)]  # a name, an alpha-3 or numeric code
    except LookupError:
        found = []
        if len(text) >= 4:  # a misspelt name; two or three letters match too much to guess from
            try:
                found = pycountry.countries.search_fuzzy(text)[:3]
            except LookupError:
                pass
    return tuple(f"{c.alpha_2} ({c.name})" for c in found)


def non_finite(value: Any) -> str | None:
    """Where a JSON value holds NaN or an infinity (also what 1e400 reads as): a dotted path
    ("" for the value itself); None when every number is finite. SQLite's JSON functions
    refuse a document holding one, and so every query over the data would fail."""
    if _finite(value):
        return None
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:  # not recursive: a document may be nested hundreds deep
        path, v = stack.pop()
        if isinstance(v, float) and not math.isfinite(v):
            return path
        if isinstance(v, dict):
            stack.extend((f"{path}.{k}" if path else str(k), x) for k, x in v.items())
        elif isinstance(v, list):
            stack.extend((f"{path}[{i}]", x) for i, x in enumerate(v))
    return None


def _finite(value: Any) -> bool:
    """Whether every number in a JSON value is finite: the quick look every imported row gets
    (the path is looked for only when one is not)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if not isinstance(value, (dict, list)):
        return True
    stack = [value]
    while stack:
        v = stack.pop()
        for x in v.values() if isinstance(v, dict) else v:
            if isinstance(x, (dict, list)):
                stack.append(x)
            elif isinstance(x, float) and not math.isfinite(x):
                return False
    return True


NOT_FINITE = "is not a finite number (NaN, Infinity or beyond ±1.8e308 cannot be stored; give it as text)"


def validate_new_case(nc: NewCase, wf: Workflow, *, now: datetime | None = None) -> list[str]:
    """Field problems as 'field: reason' (empty when all is well). With `now` (the time the
    case is made), a date of birth after it is one."""
    errors = []
    if nc.subject_email is not None and not _EMAIL.match(nc.subject_email):
        errors.append(f"subject_email: '{nc.subject_email}' is not an email address")
    if nc.subject_dob is not None and not valid_date(nc.subject_dob):
        errors.append(f"subject_dob: '{nc.subject_dob}' is not a date (YYYY-MM-DD)")
    elif nc.subject_dob is not None and now is not None and not _begun(date.fromisoformat(nc.subject_dob), now):
        errors.append(f"subject_dob: '{nc.subject_dob}' is in the future")
    for name, doc in (("data", nc.data), ("registry_data", nc.registry_data)):
        path = non_finite(doc)
        if path is not None:
            errors.append(f"{name}: {path} {NOT_FINITE}")
    for block in nc.blocks:
        path = non_finite(block.get("data"))
        if path is not None:
            errors.append(f"block {block.get('name')}: data: {path or 'the value'} {NOT_FINITE}")
    problem = country_problem(nc.country) if nc.country is not None else None
    if problem is not None:
        errors.append(f"country: {problem}")
    if nc.priority not in PRIORITIES:
        errors.append(f"priority: '{nc.priority}' is not one of {', '.join(PRIORITIES)}")
    if nc.status is not None and wf.status(nc.status) is None:
        errors.append(f"status: '{nc.status}' is not a status of workflow {wf.name} ({', '.join(wf.status_names)})")
    if nc.ref is not None and not nc.ref.strip():
        errors.append("ref: must not be blank")
    elif nc.ref is not None and _CASE_ID_LIKE.match(nc.ref):
        errors.append(f"ref: '{nc.ref}' reads as a case id; an external reference must not (e.g. EXT-{nc.ref})")
    elif nc.ref is not None and nc.ref.startswith(ids.REF_PREFIX):
        errors.append(
            f"ref: must not start with '{ids.REF_PREFIX}' (that prefix names a reference on the command line)"
        )
    for tag in nc.tags:
        if not tag.strip() or "," in tag:
            errors.append(f"tag: '{tag}' must be non-blank and contain no comma")
    return errors


def _begun(day: date, now: datetime) -> bool:
    """Whether `day` has begun somewhere on Earth at `now`."""
    return datetime.combine(day, time(), _FIRST_ZONE) <= now
