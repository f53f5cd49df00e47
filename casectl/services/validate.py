"""Field checks for a new case, shared by `create`, `import` and child cases.

Pure functions of the new case and its workflow (pycountry's code list is
loaded on first use); the kernel refuses what they find.
"""

from __future__ import annotations

import functools
import re

from .. import ids
from ..rules import Workflow
from ..timeutil import valid_date
from .records import NewCase

PRIORITIES = ("low", "normal", "high", "urgent")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
# C-3, c3, C3: what the command line reads as a case id. Plain numbers stay allowed (reached as ref:12).
_CASE_ID_LIKE = re.compile(r"^\s*[Cc]-?[0-9]+\s*$", re.ASCII)


@functools.lru_cache(maxsize=1)
def country_codes() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes, from pycountry (loaded on first use)."""
    import pycountry

    return frozenset(c.alpha_2 for c in pycountry.countries)


def validate_new_case(nc: NewCase, wf: Workflow) -> list[str]:
    """Field problems as 'field: reason' (empty when all is well)."""
    errors = []
    if nc.subject_email is not None and not _EMAIL.match(nc.subject_email):
        errors.append(f"subject_email: '{nc.subject_email}' is not an email address")
    if nc.subject_dob is not None and not valid_date(nc.subject_dob):
        errors.append(f"subject_dob: '{nc.subject_dob}' is not a date (YYYY-MM-DD)")
    if nc.country is not None and not _COUNTRY.match(nc.country):
        errors.append(f"country: '{nc.country}' is not an ISO 3166 alpha-2 code like GB or HK")
    elif nc.country is not None and nc.country not in country_codes():
        errors.append(f"country: '{nc.country}' is not an ISO 3166 country code")
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
