"""CSV cells a spreadsheet will not take for a formula (CSV injection), and back.

Every CSV file the appliance writes is opened in spreadsheets, and a cell that starts with
= + - @ TAB or CR would be read as a formula. The usual remedy (OWASP's) is applied: such a
cell is written with an apostrophe in front, which spreadsheets show as text. So that the
appliance's own files import back exactly, the rule is one-to-one:

- writing, a cell whose text, after any leading apostrophes, starts with one of those
  characters gets one more apostrophe: `-9` is written `'-9`, `'=x` is written `''=x`;
- reading, a cell of that shape that starts with an apostrophe loses one: `'-9` is read
  `-9`, `''=x` is read `'=x`. Any other cell (`-9`, `'abc`) is read as it is.
"""

import csv
import re
from collections.abc import Iterable
from typing import IO

#: The first characters that make a spreadsheet read a cell as a formula.
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_SHAPE = re.compile(r"'*[=+\-@\t\r]")  # a cell written with an apostrophe in front
_FIRST = frozenset((*TRIGGERS, "'"))


def inert(cell: str) -> str:
    """The cell as written to a CSV file: an apostrophe in front where the rule says so."""
    return "'" + cell if cell[:1] in _FIRST and _SHAPE.match(cell) else cell


def restored(cell: str) -> str:
    """A cell read from a file written with `inert`: the apostrophe it added taken off."""
    return cell[1:] if cell[:1] == "'" and _SHAPE.match(cell) else cell


def inert_row(cells: Iterable) -> list:
    """A row's cells with every text cell made inert (numbers and None as they are)."""
    return [inert(c) if isinstance(c, str) else c for c in cells]


class Writer:
    """csv.writer whose rows are made inert: use it for every CSV file the appliance
    writes."""

    def __init__(self, f: IO[str], **fmtparams):
        self._writer = csv.writer(f, **fmtparams)

    def writerow(self, cells: Iterable) -> None:
        self._writer.writerow(inert_row(cells))

    def writerows(self, rows: Iterable[Iterable]) -> None:
        for cells in rows:
            self.writerow(cells)


def writer(f: IO[str], **fmtparams) -> Writer:
    """A CSV writer (as csv.writer) that writes every cell inert."""
    return Writer(f, **fmtparams)
