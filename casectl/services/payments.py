"""Payments on a case (seed 002's pending payment states).

A payment is an event of kind `payment` in the case's history, so it is
chained and signed like every other change and there is no second copy to
drift: its amount (a decimal string in the currency's minor units, never a
float), currency (ISO 4217) and payer (`subject` or `customer`) are public;
its reference is private text, which `redact` erases. Recording one fires
the workflow's `payment_received` system action when the case allows it
now (the built-in screening workflow moves from pending_payment or
pending_customer_payment to pending); a workflow without that action, or a
case in another status, just records the payment, and the result says so.
A reference already recorded on the case is refused (exit 5), so a script
that retries does not pay twice.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .. import ids, rules
from ..errors import CasectlError, Conflict, InvalidInput, NotAllowed
from ..store import events as event_store
from ..store import savepoint
from ..timeutil import iso

EVENT_KIND = "payment"
FIRES = "payment_received"  # the system action a payment fires, where the workflow has it
PAYERS = ("subject", "customer")
MAX_AMOUNT = Decimal("1e15")
# ISO 4217 minor units where they are not 2 (the rest of the active codes use cents).
_MINOR_UNITS = {
    **dict.fromkeys(
        ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF"), 0
    ),
    **dict.fromkeys(("XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}
_NOT_MONEY = frozenset({"XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT", "XSU", "XTS", "XUA", "XXX"})


def currency_code(text: str) -> str:
    """An ISO 4217 currency code, upper-cased; exit 6 naming the problem otherwise."""
    import pycountry

    code = (text or "").strip().upper()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise InvalidInput(f"--currency: '{text}' is not a three-letter ISO 4217 code (e.g. GBP, EUR, USD)")
    if pycountry.currencies.get(alpha_3=code) is None or code in _NOT_MONEY:
        raise InvalidInput(f"--currency: '{text}' is not an ISO 4217 currency code (e.g. GBP, EUR, USD)")
    return code


def minor_units(currency: str) -> int:
    return _MINOR_UNITS.get(currency, 2)


def amount_text(text: str, currency: str) -> str:
    """The amount as a decimal string with the currency's minor units ("42.5" GBP -> "42.50").

    Refused (exit 6): not a plain decimal number, zero or less, more decimal places
    than the currency has (42.505 GBP), or absurdly large.
    """
    raw = (text or "").strip()
    try:
        if not raw or not all(ch.isdigit() or ch in ".-+" for ch in raw) or not raw.isascii():
            raise InvalidOperation
        value = Decimal(raw)
    except InvalidOperation:
        raise InvalidInput(f"--amount: '{text}' is not a decimal amount (e.g. 42.50)") from None
    if not value.is_finite() or value <= 0:
        raise InvalidInput(f"--amount: '{text}' must be more than zero")
    if value >= MAX_AMOUNT:
        raise InvalidInput(f"--amount: '{text}' is too large")
    places = minor_units(currency)
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > places and value != value.quantize(Decimal(1).scaleb(-places)):
        raise InvalidInput(
            f"--amount: '{text}' has more decimal places than {currency} has ({places}); "
            "amounts are recorded exactly, never rounded"
        )
    return str(value.quantize(Decimal(1).scaleb(-places)))


def record_in(
    conn: sqlite3.Connection,
    case: dict[str, Any],
    *,
    amount: str,
    currency: str,
    reference: str | None,
    by: str | None,
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    """Record a payment on `case` and fire its workflow's payment event where allowed now."""
    from . import lifecycle
    from .catalog import workflow_of

    currency = currency_code(currency)
    amount = amount_text(amount, currency)
    if reference is not None:
        reference = reference.strip()
        if not reference or len(reference) > 200 or any(ch in reference for ch in "\r\n\t"):
            raise InvalidInput("--reference: give one line of at most 200 characters")
    cid = ids.fmt("case", case["id"])
    if case.get("final"):
        raise NotAllowed(f"case {cid} is {case['status']} (closed): a payment cannot be recorded on it")
    if by is None:
        by = "customer" if case["status"] == "pending_customer_payment" else "subject"
    if by not in PAYERS:
        raise InvalidInput(f"--by: '{by}' is not one of {', '.join(PAYERS)}")
    if reference is not None:
        for p in payments(conn, [case["id"]]).get(case["id"], []):
            if p["reference"] == reference:
                raise Conflict(
                    f"case {cid} already has payment {reference} ({p['amount']} {p['currency']}, "
                    f"{p['event']} at {p['at']}); a payment is recorded once"
                )
    payment = {"amount": amount, "currency": currency, "by": by}
    data: dict[str, Any] = {
        "payment": payment,
        "summary": f"{amount} {currency} by {by}" + (f", ref {reference}" if reference else ""),
    }
    if reference is not None:
        data["reference"] = reference
    at = iso(now)
    event_id = event_store.append(conn, case["id"], at=at, actor=actor, kind=EVENT_KIND, data=data)
    result: dict[str, Any] = {
        "id": cid,
        "event": ids.fmt("event", event_id),
        "payment": {"event": ids.fmt("event", event_id), "at": at, "actor": actor, **payment, "reference": reference},
        "fired": None,
        "not_fired": None,
        "status": case["status"],
        "previous_status": case["status"],
    }
    wf = workflow_of(conn, case)
    spec = wf.action(FIRES)
    if spec is None or spec.trigger != rules.SYSTEM:
        result["not_fired"] = f"workflow {wf.name} has no {FIRES} system action"
        return result
    try:
        with savepoint(conn, "payment_event"):
            fresh = lifecycle.get(conn, case["id"])
            done = lifecycle.perform(
                conn,
                fresh,
                FIRES,
                actor=actor,
                now=now,
                trigger=rules.SYSTEM,
                data={"payment": ids.fmt("event", event_id)},
            )
        result["fired"] = FIRES
        result["status"] = lifecycle.get(conn, case["id"])["status"]
        assert done.to_status
    except CasectlError as e:  # not allowed from this status: the payment stands, the event is not fired
        result["not_fired"] = e.message[:300]
    return result


# --- reading ---------------------------------------------------------------------


def payments(conn: sqlite3.Connection, case_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    """Each case's payments, oldest first (cases with none are left out)."""
    out: dict[int, list[dict[str, Any]]] = {}
    listed = sorted(set(case_ids))
    for i in range(0, len(listed), 500):
        chunk = listed[i : i + 500]
        sql = (
            f"{event_store._SELECT} WHERE e.case_id IN ({', '.join('?' for _ in chunk)}) AND e.kind = ? "
            "ORDER BY e.case_id, e.id"
        )
        for r in conn.execute(sql, [*chunk, EVENT_KIND]):
            ev = event_store.row(r)
            p = ev["data"].get("payment") or {}
            out.setdefault(ev["case_id"], []).append(
                {
                    "event": ids.fmt("event", ev["id"]),
                    "at": ev["at"],
                    "actor": ev["actor"],
                    "amount": p.get("amount"),
                    "currency": p.get("currency"),
                    "by": p.get("by"),
                    "reference": ev["data"].get("reference"),
                }
            )
    return out


def totals(items: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Amounts paid per currency, summed exactly: {"GBP": "42.50"}."""
    sums: dict[str, Decimal] = {}
    for p in items:
        if p.get("amount") and p.get("currency"):
            sums[p["currency"]] = sums.get(p["currency"], Decimal(0)) + Decimal(p["amount"])
    return {cur: str(v.quantize(Decimal(1).scaleb(-minor_units(cur)))) for cur, v in sorted(sums.items())}


def paid_text(items: Iterable[dict[str, Any]]) -> str:
    """The totals as one cell: "42.50 GBP; 10.00 EUR"; empty when nothing was paid."""
    return "; ".join(f"{amount} {cur}" for cur, amount in totals(items).items())


def with_payments(conn: sqlite3.Connection, cases: Iterable[dict[str, Any]], *, chunk: int = 500) -> Iterator[dict]:
    """`cases` again, each with its `payments` (a list) and `paid` (the totals as text), read a chunk at a time."""
    batch: list[dict[str, Any]] = []

    def flush() -> Iterator[dict[str, Any]]:
        found = payments(conn, [c["id"] for c in batch])
        for c in batch:
            items = found.get(c["id"], [])
            c["payments"], c["paid"] = items, paid_text(items) or None
            yield c
        batch.clear()

    for c in cases:
        batch.append(c)
        if len(batch) >= chunk:
            yield from flush()
    yield from flush()


def show_parts(conn: sqlite3.Connection, *, case: dict, wf: Any, actor: str | None, now: datetime) -> dict:
    """Parts of `show`: the case's payments, oldest first."""
    rows = payments(conn, [case["id"]]).get(case["id"], [])
    return {"payments": rows} if rows else {}
