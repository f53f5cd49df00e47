"""Masking personal data for `--redact` outputs (export, report, digest, package).

Pure functions. A `Redactor` is built from one case: it knows that case's
subject (name, email, date of birth) and every value kept under a personal
key in its data (phone, address.*, names of people in blocks...). It masks
those fields where they stand and, wherever they are quoted in free text
(notes, reasons, event summaries, subject lines), the values themselves, with
any email address or phone number. What identifies the record and not the
person stays readable: ids, statuses, workflows, block names and kinds, dates.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, overload

if TYPE_CHECKING:
    from .filters import CaseFilter

MASK = "***"

# An email address, or what is left of one where a summary was cut short (`ann@exa...`).
_EMAIL = re.compile(r"[\w.+-]+@(?:[\w-]+(?:\.[\w-]+)*)?")
# The end of a text cut short: `... Mei Lin Ch...`, `... +44 20 79...`.
_CUT = re.compile(r"(\+?[\d ()-]*\d|[^\s*]+)(\.\.\.|…)\s*$")
# A phone number in text: a leading + and 7 digits or more, or 10 digits or more
# (spaces, dashes and brackets between them); dates and shorter numbers stay.
_PHONE = re.compile(r"(?<![\w+-])\+?\(?\d[\d ()-]*\d(?![\w-])")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PHONE_VALUE = re.compile(r"\+?[\d\s().-]+")

# Keys whose value is personal wherever they sit in data: a substring of the key
# (so `director_name`, `contact_email`, `home_address`), or one of its words.
_PERSONAL_KEY = re.compile(
    r"name|e_?mail|mail|birth|phone|address|passport|national_id|postcode|postal_code|street", re.I
)
_PERSONAL_WORDS = frozenset({"dob", "tel", "mobile", "cell", "zip", "ssn"})
_NAME_KEY = re.compile(r"name", re.I)
# In event data, `block` names the block an event is about: readable like the block's own name.
_REFERENCE_KEYS = frozenset({"block"})
# Words of a name too common to mask on their own in free text (the whole name still is).
_COMMON_WORDS = frozenset(
    "ltd llc inc plc gmbh ag sa bv co corp the and of de da di du la le van von der den mr mrs ms dr".split()
)


def personal_key(key: str) -> bool:
    """Whether a data key names personal data (`phone`, `address`, `director_name`, `dob`, ...)."""
    if not key:
        return False
    if _PERSONAL_KEY.search(key):
        return True
    words = re.split(r"[^a-z0-9]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", key).lower())
    return any(w in _PERSONAL_WORDS for w in words)


@overload
def mask_name(value: str) -> str: ...
@overload
def mask_name(value: None) -> None: ...
def mask_name(value: str | None) -> str | None:
    """'Ada Lovelace' -> 'A*** L***': initials only, never the length."""
    if not value:
        return value
    return " ".join(w[0] + MASK for w in value.split())


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


def _phone(m: re.Match[str]) -> str:
    s = m.group(0)
    digits = sum(ch.isdigit() for ch in s)
    if _DATE.search(s) or digits < 7 or (digits < 10 and not s.startswith("+")):
        return s  # a date, an amount or a company number, not a phone
    return MASK


def _leaves(value: Any, key: str = "", personal: bool = False) -> Iterable[tuple[str, Any]]:
    """(key, value) of every leaf under a personal key, however deep."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _leaves(v, str(k), personal or personal_key(str(k)))
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v, key, personal)
    elif personal and value is not None and not isinstance(value, bool):
        yield key, value


@dataclass(frozen=True)
class Redactor:
    """What to mask for one case, and how to mask each part of it."""

    names: tuple[str, ...] = ()  # people's names: masked to initials, also word by word in text
    values: tuple[str, ...] = ()  # emails, phones, dates of birth, address parts...
    keep: frozenset[str] = field(default_factory=frozenset)  # block names: readable even if they look personal

    @classmethod
    def for_case(
        cls,
        case: Mapping[str, Any],
        *,
        blocks: Iterable[Mapping[str, Any]] = (),
        children: Iterable[Mapping[str, Any]] = (),
    ) -> Redactor:
        """A case (a store row or its `show --json` document), with its blocks and KYC child cases."""
        r = cls().learn(case)
        for b in blocks:
            r = r.learn({"data": b.get("data")}, keep=b.get("name"))
        for child in children:
            r = r.learn(child)
        return r

    def learn(self, case: Mapping[str, Any], keep: str | None = None) -> Redactor:
        """This redactor, also knowing the personal values of `case` (or of one block's data)."""
        nested = case.get("subject")  # a `show --json` document nests its subject
        subject: Mapping[str, Any] = nested if isinstance(nested, Mapping) else {}
        names = [case.get("subject_name"), subject.get("name")]
        values = [case.get("subject_email"), subject.get("email"), case.get("subject_dob"), subject.get("dob")]
        for part in ("data", "registry_data"):
            for k, v in _leaves(case.get(part) or {}):
                (names if _NAME_KEY.search(k) and isinstance(v, str) else values).append(str(v))
        return replace(
            self,
            names=_merge(self.names, names),
            values=_merge(self.values, values),
            keep=self.keep | ({keep.lower()} if keep else set()),
        )

    @cached_property
    def _known(self) -> re.Pattern[str] | None:
        """One pattern for every known value, longest first, matched as whole words."""
        kinds: list[tuple[str, str]] = []
        for name in self.names:
            kinds.append((r"\s+".join(map(re.escape, name.split())), name))
            for word in re.split(r"[\s-]+", name):
                if len(word) >= 2 and word.lower() not in _COMMON_WORDS:
                    kinds.append((re.escape(word), word))
        for value in self.values:
            digits = re.sub(r"\D", "", value)
            if _PHONE_VALUE.fullmatch(value) and len(digits) >= 7 and not _DATE.fullmatch(value.strip()):
                # A phone (or other number) however it is spaced: +44 20 7946 0958 = 442079460958.
                kinds.append((r"\+?" + r"[\s().-]*".join(digits), value))
            elif len(value) >= 3 and (not value.isdigit() or len(value) >= 5):
                kinds.append((r"\s+".join(map(re.escape, value.split())), value))
        if not kinds:
            return None
        kinds.sort(key=lambda k: len(k[1]), reverse=True)
        body = "|".join(p for p, _ in kinds)
        return re.compile(rf"(?<![\w-])(?<!\w\.)(?:{body})(?![\w-])(?!\.\w)", re.I)

    @cached_property
    def _name_words(self) -> frozenset[str]:
        return frozenset(w.lower() for n in self.names for w in [n, *re.split(r"[\s-]+", n)])

    def _replace(self, m: re.Match[str]) -> str:
        s = m.group(0)
        text = m.string
        start, end = m.start(), m.end()
        while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_.-"):
            start -= 1
        while end < len(text) and (text[end].isalnum() or text[end] in "_.-"):
            end += 1
        if text[start:end].strip(".").lower() in self.keep:
            return s  # a block's name, shown anyway
        if "@" in s:
            return mask_email(s)
        if " ".join(s.split()).lower() in self._name_words:
            return mask_name(s)
        return MASK

    def text(self, text: str | None) -> str | None:
        """Free text with the known personal values, emails and phone numbers masked."""
        if not text or not isinstance(text, str):
            return text
        if self._known is not None:
            text = self._known.sub(self._replace, text)
        text = _EMAIL.sub(lambda m: mask_email(m.group(0)), text)
        text = _PHONE.sub(_phone, text)
        cut = _CUT.search(text)
        if cut and self._cut_short(cut.group(1)):
            text = text[: cut.start(1)] + MASK + text[cut.end(1) :]
        return text

    def _cut_short(self, fragment: str) -> bool:
        """Whether the last word of a shortened text is the start of a personal value."""
        digits = re.sub(r"\D", "", fragment)
        if digits and _PHONE_VALUE.fullmatch(fragment):
            if fragment.startswith("+"):
                return True
            return len(digits) >= 3 and any(re.sub(r"\D", "", v).startswith(digits) for v in self.values)
        fragment = fragment.lstrip("([{\"'").casefold()
        words = (w for v in (*self.names, *self.values) for w in (v, *v.split()))
        return len(fragment) >= 2 and any(w.casefold().startswith(fragment) for w in words)

    def _is_known(self, value: int | float) -> bool:
        return self._known is not None and self._known.fullmatch(str(value)) is not None

    def data(self, value: Any, key: str = "", personal: bool = False) -> Any:
        """Data with every value under a personal key masked (nested ones too) and text masked elsewhere."""
        personal = personal or personal_key(key)
        if isinstance(value, Mapping):
            return {k: self.data(v, str(k), personal) for k, v in value.items()}
        if isinstance(value, list):
            return [self.data(v, key, personal) for v in value]
        if value is None or isinstance(value, bool):
            return value
        if personal:
            return MASK
        if key in _REFERENCE_KEYS:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, int | float) and self._is_known(value):
            return MASK  # a phone number kept as a number
        return value

    # --- records ---------------------------------------------------------------------

    def case(self, case: Mapping[str, Any]) -> dict[str, Any]:
        """A case row as the store gives it (flat subject_* fields)."""
        out = dict(case)
        out["subject_name"] = mask_name(case.get("subject_name"))
        out["subject_email"] = mask_email(case.get("subject_email"))
        out["subject_dob"] = mask_dob(case.get("subject_dob"))
        for k in ("data", "registry_data"):
            out[k] = self.data(case.get(k) or {})
        out["decision_reason"] = self.text(case.get("decision_reason"))
        return out

    def block(self, b: Mapping[str, Any]) -> dict[str, Any]:
        """A block: its name, kind and status stay; its data and summary are masked."""
        out = dict(b)
        out["data"] = self.data(b.get("data") or {})
        if "summary" in out:
            out["summary"] = self.text(b.get("summary"))
        return out

    def child(self, c: Mapping[str, Any]) -> dict[str, Any]:
        """A KYC child case as `show` lists it."""
        out = dict(c)
        out["subject_name"] = mask_name(c.get("subject_name"))
        out["subject_email"] = mask_email(c.get("subject_email"))
        return out

    def activity(self, a: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(a)
        out["label"] = self.text(a.get("label"))
        if "subject_name" in out:
            out["subject_name"] = mask_name(a.get("subject_name"))
        for k in ("result", "requirement"):
            if k in out:
                out[k] = self.data(a.get(k) or {})
        return out

    def note(self, n: Mapping[str, Any]) -> dict[str, Any]:
        return {**n, "text": self.text(n.get("text"))}

    def event(self, e: Mapping[str, Any]) -> dict[str, Any]:
        """An event, as the store gives it or as `history --json` shows it."""
        return {**e, "reason": self.text(e.get("reason")), "data": self.data(e.get("data") or {})}

    def appointment(self, a: Mapping[str, Any]) -> dict[str, Any]:
        out = {**a, "title": self.text(a.get("title")), "with": MASK if a.get("with") else a.get("with")}
        if "subject_name" in out:
            out["subject_name"] = mask_name(a.get("subject_name"))
        return out

    def delivery(self, d: Mapping[str, Any]) -> dict[str, Any]:
        return {**d, "target": self.text(d.get("target")), "last_error": self.text(d.get("last_error"))}

    def document(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """A case's `show --json` document (the data package's case.json)."""
        out = dict(doc)
        subject = doc.get("subject")
        if isinstance(subject, Mapping):
            out["subject"] = {
                **subject,
                "name": mask_name(subject.get("name")),
                "email": mask_email(subject.get("email")),
                "dob": mask_dob(subject.get("dob")),
            }
        for k in ("data", "registry_data"):
            if k in out:
                out[k] = self.data(doc.get(k) or {})
        out["decision_reason"] = self.text(doc.get("decision_reason"))
        records = {
            "blocks": self.block,
            "children": self.child,
            "activities": self.activity,
            "notes": self.note,
            "history": self.event,
            "appointments": self.appointment,
            "deliveries": self.delivery,
        }
        for k, mask in records.items():
            if k in out:
                out[k] = [mask(x) for x in doc[k]]
        out["refused_actions"] = [{**x, "reason": self.text(x.get("reason"))} for x in doc.get("refused_actions", [])]
        known = {*records, "subject", "data", "registry_data", "decision_reason", "refused_actions"}
        for k in set(out) - known:
            if isinstance(out[k], dict | list):
                out[k] = self.data(out[k])  # a part added later: masked by its keys and text
        return out


def _merge(old: tuple[str, ...], new: Iterable[Any]) -> tuple[str, ...]:
    seen = list(old)
    for v in new:
        if isinstance(v, str) and len(v.strip()) >= 2 and v.strip() not in seen:
            seen.append(v.strip())
    return tuple(seen)


def redact_case(case: Mapping[str, Any]) -> dict[str, Any]:
    """One case row with its subject and personal data masked."""
    return Redactor.for_case(case).case(case)


def redact_filter(f: CaseFilter) -> CaseFilter:
    """A filter as a redacted report prints it: the values of personal `--where` keys masked."""
    from .filters import WhereClause

    def masked(w: WhereClause) -> WhereClause:
        return WhereClause(w.scope, w.path, MASK) if any(personal_key(p) for p in w.path) else w

    return replace(f, where=tuple(masked(w) for w in f.where))
