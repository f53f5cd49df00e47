"""CSV cells that spreadsheets will not run as formulas, reversibly."""

from __future__ import annotations

import re

_FORMULA_START = "=+-@\t\r"
# The one formula-looking start left as it is: a plain negative number. Not float(),
# which also reads "+0", "\t5" and "-5\n" as numbers.
_NEGATIVE_NUMBER = re.compile(r"-(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _needs_escape(value: str) -> bool:
    if not value:
        return False
    if value[0] in _FORMULA_START:
        return _NEGATIVE_NUMBER.fullmatch(value) is None
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
