"""CSV cells that spreadsheets will not run as formulas, reversibly."""

from __future__ import annotations

_FORMULA_START = "=+-@\t\r"


def _is_number(value: str) -> bool:
    try:
        float(value)
        return True
    except ValueError:
        return False


def _needs_escape(value: str) -> bool:
    if not value:
        return False
    if value[0] in _FORMULA_START:
        return not _is_number(value)
    # An apostrophe already in front of a formula-looking value is escaped
    # once more, so that `unescape` always gives back the original.
    return value[0] == "'" and _needs_escape(value[1:])


def escape(value: str) -> str:
    """A leading apostrophe keeps a spreadsheet from running the cell.

    Reversible: `unescape(escape(v)) == v` for every string v.
    """
    return "'" + value if _needs_escape(value) else value


def unescape(value: str) -> str:
    if value and value[0] == "'" and _needs_escape(value[1:]):
        return value[1:]
    return value
