"""Masking personal data for `--redact` outputs (export, report, digest).

Pure functions: names become initials, emails and dates of birth are masked,
and data fields whose key looks personal are hidden.
"""

from __future__ import annotations

import re
from typing import Any, overload

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PERSONAL_KEY = re.compile(r"name|email|e_mail|mail|dob|birth|phone|address|passport|national_id", re.I)


@overload
def mask_name(value: str) -> str: ...
@overload
def mask_name(value: None) -> None: ...
def mask_name(value: str | None) -> str | None:
    """'Ada Lovelace' -> 'A*** L***': initials only, never the length."""
    if not value:
        return value
    return " ".join(w[0] + "***" for w in value.split())


@overload
def mask_email(value: str) -> str: ...
@overload
def mask_email(value: None) -> None: ...
def mask_email(value: str | None) -> str | None:
    if not value:
        return value
    return value[0] + "***@***"


def mask_dob(value: str | None) -> str | None:
    return "****-**-**" if value else value


def mask_text(text: str | None, names: tuple[str, ...] = ()) -> str | None:
    """Free text with emails and the subject's name masked."""
    if not text:
        return text
    text = _EMAIL.sub(lambda m: mask_email(m.group(0)), text)
    for name in names:
        if name:
            text = text.replace(name, mask_name(name))
    return text


def mask_data(value: Any, names: tuple[str, ...] = (), key: str = "") -> Any:
    """Case/block/event data with personal fields (by key) and emails masked."""
    if isinstance(value, dict):
        return {k: mask_data(v, names, k) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_data(v, names, key) for v in value]
    if isinstance(value, str):
        if key and _PERSONAL_KEY.search(key):
            return "***"
        return mask_text(value, names)
    return value


def redact_case(case: dict[str, Any]) -> dict[str, Any]:
    names = tuple(n for n in (case.get("subject_name"),) if n)
    out = dict(case)
    out["subject_name"] = mask_name(case.get("subject_name"))
    out["subject_email"] = mask_email(case.get("subject_email"))
    out["subject_dob"] = mask_dob(case.get("subject_dob"))
    for k in ("data", "registry_data"):
        out[k] = mask_data(case.get(k) or {}, names)
    out["decision_reason"] = mask_text(case.get("decision_reason"), names)
    return out
