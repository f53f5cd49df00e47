"""CSV cells that spreadsheets will not run as formulas, reversibly, and the writer of
casectl's CSV files (exports, listings, an import's rejects)."""

from __future__ import annotations

import csv
import re
from typing import IO, Any

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


class _NewlineRows:
    r"""Where a csv writer with the terminator "\r\n" writes, each row ended by "\n" instead."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out

    def write(self, row: str) -> int:
        return self._out.write(row[:-2] + "\n")  # a row is always written whole, terminator last


def writer(out: IO[str]) -> Any:
    r"""A csv writer whose rows end in "\n" and that quotes a cell holding a bare CR.

    csv quotes a cell only for the characters of its own line terminator: with "\n"
    alone, a CR inside a value went out bare, and every reader ends the row there. So
    the writer is told "\r\n", and each row's terminator is written as "\n".
    """
    return csv.writer(_NewlineRows(out), lineterminator="\r\n")
