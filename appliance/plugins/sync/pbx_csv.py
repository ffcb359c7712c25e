"""The built-in PBX connector: a node's directory and device export as a CSV file.

Pure Python, streamed row by row; the format is documented in docs/pbx-csv.md. A message
about a row names its line, column and rule, never the text of a cell (the file may not be
what it was said to be), except a row's directory number once it is a valid one.
"""

from __future__ import annotations

import csv
import io
import operator
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import IO, Any

from .pbx_model import INVALID as _INVALID
from .pbx_model import Device, Issue, names_of

REQUIRED_COLUMNS = ("number", "device_type", "mac", "first_name", "last_name", "department")
OPTIONAL_COLUMNS = ("group", "group_kind", "pilot", "dynamic_extension")
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

INVALID_ROW = "invalid-row"
INVALID_CHARACTER = "invalid-character"
_DROPS_ROW = ("number", "first_name", "last_name")  # the login and the names

_UNDECODED = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8 (surrogateescape)
_NUMBER = re.compile(r"\+?[0-9*#]{1,30}")
_TRUE = frozenset({"1", "true", "yes", "y"})
_FALSE = frozenset({"", "0", "false", "no", "n"})
_GROUP_KINDS = frozenset({"", "PRG", "MDUG"})
_VALID_RANGES = "0x9, 0xA, 0xD, 0x20-0xD7FF, 0xE000-0xFFFD, 0x10000-0x10FFFF"

Source = str | os.PathLike[str] | IO[str] | IO[bytes] | Iterable[str]


class CsvFormatError(ValueError):
    """The file cannot be read as a device export at all (no header, missing columns)."""


def header_name(cell: str) -> str:
    """A header cell as a column name: trimmed, lower case, spaces and '-' as '_'."""
    return re.sub(r"[\s-]+", "_", cell.strip().lower())


def _describe(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, kept by surrogateescape
        return f"byte 0x{code - 0xDC00:02X} is not valid UTF-8"
    return f"invalid character U+{code:04X}"


def _positions(header: list[str]) -> tuple[int, ...]:
    """Where each of COLUMNS is in the header; an absent optional column points one past
    the header's last column, where _rows appends an empty field to each row."""
    index: dict[str, int] = {}
    for i, cell in enumerate(header):
        name = header_name(cell.lstrip("\ufeff") if i == 0 else cell)
        if name in COLUMNS:
            if name in index:
                raise CsvFormatError(f"column {name!r} appears twice in the header (line 1)")
            index[name] = i
    missing = [c for c in REQUIRED_COLUMNS if c not in index]
    if missing:
        known = [c for c in COLUMNS if c in index]
        raise CsvFormatError(
            f"missing required column(s): {', '.join(missing)} (the header on line 1 has "
            f"{len(header)} column(s); known among them: {', '.join(known) or 'none'}); "
            f"required columns are {', '.join(REQUIRED_COLUMNS)}")
    return tuple(index.get(c, len(header)) for c in COLUMNS)


def _issue(line: int, number: str, column: str, message: str,
           rule: str = INVALID_ROW) -> Issue:
    """An unusable row, by line and column; its number only when it is a valid one."""
    where = f"line {line}, column {column}" if column else f"line {line}"
    number = number.strip()
    return Issue(line, number if _NUMBER.fullmatch(number) else "", rule,
                 f"{where}: {message}", column)


def _flag(value: str) -> bool | None:
    value = value.strip().lower()
    return True if value in _TRUE else False if value in _FALSE else None


def _row_issues(line: int, number: str, pilot: str, dynamic: str,
                group_kind: str) -> list[Issue]:
    """What is wrong with a row's number, booleans and group kind."""
    issues = []
    if not number:
        issues.append(_issue(line, number, "number", "the directory number is missing"))
    elif not _NUMBER.fullmatch(number):
        issues.append(_issue(line, number, "number", (
            "not a directory number (digits, '*', '#', an optional leading '+', at most "
            "30)")))
    for column, value in (("pilot", pilot), ("dynamic_extension", dynamic)):
        if _flag(value) is None:
            issues.append(_issue(line, number, column, (
                "not a boolean (use 1/0, true/false, yes/no or leave empty)")))
    if group_kind.strip().upper() not in _GROUP_KINDS:
        issues.append(_issue(line, number, "group_kind", (
            "not a group kind (PRG, MDUG or empty)")))
    return issues


def _bad_characters(values: tuple[str, ...], line: int) -> tuple[tuple[str, ...],
                                                                  list[Issue]]:
    """Invalid characters, column by column: in the number or a name they make the row
    unusable (issues); in the department they empty it (a note); the other columns are
    not stored, so there they are ignored (removed)."""
    out, issues = [], []
    for column, value in zip(COLUMNS, values, strict=True):
        bad = _INVALID.search(value)
        if bad is None:
            out.append(value)
            continue
        where = (f"{_describe(bad.group())} at position {bad.start() + 1}; valid characters "
                 f"are {_VALID_RANGES}")
        if column in _DROPS_ROW:
            issues.append(_issue(line, values[0], column, where, INVALID_CHARACTER))
        elif column == "department":
            issues.append(replace(_issue(line, values[0], column, (
                f"{where}: the department is left empty, the record is kept"),
                INVALID_CHARACTER), note=True))
            value = ""
        out.append(_INVALID.sub("", value))
    return tuple(out), issues


def _parse_row(values: tuple[str, ...], line: int) -> Device | list[Device | Issue]:
    """A Device from the values of COLUMNS (after the notes on it), or the Issues that make
    the row unusable."""
    notes: list[Issue] = []
    if _INVALID.search("\t".join(values)):
        values, notes = _bad_characters(values, line)
        if unusable := [i for i in notes if not i.note]:
            return unusable
    (number, device_type, mac, first_name, last_name, department, group, group_kind, pilot,
     dynamic) = values
    number = number.strip()
    is_pilot, is_dynamic = _flag(pilot), _flag(dynamic)
    kind = group_kind.strip().upper()
    plain = (number.isdigit() and number.isascii() and len(number) <= 30
             and is_pilot is not None and is_dynamic is not None and kind in _GROUP_KINDS)
    if not plain:  # the common case above is checked without allocating
        if not number and not "".join(values).strip():
            return []  # a row of empty fields, as spreadsheets write: ignored
        issues = _row_issues(line, number, pilot, dynamic, group_kind)
        if issues:
            return issues
    device = Device(number, device_type.strip(), mac.strip(), first_name, last_name,
                    department, group.strip(), kind, bool(is_pilot), bool(is_dynamic), line)
    return [*(replace(i, user=names_of(device)) for i in notes), device] if notes else device


def _rows(text: Iterable[str]) -> Iterator[Device | Issue]:
    reader = csv.reader(text)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise CsvFormatError(f"line 1: the header cannot be read: {exc}") from None
    if header is None:
        raise CsvFormatError("the file is empty: a header row is required")
    for column, cell in enumerate(header, 1):
        if _UNDECODED.search(cell):
            raise CsvFormatError(f"line 1 (the header), column {column}: invalid UTF-8 byte; "
                                 "the export must be UTF-8 text")
    positions = _positions(header)
    pick = operator.itemgetter(*positions)
    width = len(header)
    done = reader.line_num
    while True:
        line = done + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            done = reader.line_num
            yield Issue(line, "", INVALID_ROW, f"line {line}: the row cannot be read: {exc}")
            continue
        done = reader.line_num
        if len(row) != width:
            if any(cell.strip() for cell in row):  # else a blank line: ignored
                yield _issue(line, row[positions[0]] if positions[0] < len(row) else "", "", (
                    f"the row has {len(row)} fields but the header has {width} (an unquoted "
                    f"comma or a missing field?)"))
            continue
        row.append("")
        parsed = _parse_row(pick(row), line)
        if isinstance(parsed, Device):
            yield parsed
        else:
            yield from parsed


def read_devices(source: Source) -> Iterator[Device | Issue]:
    """Stream a CSV export: a Device per good row, Issues for a bad one.

    source is a path, a binary or text file, or any iterable of text lines. Raises
    CsvFormatError (when iteration starts) without a header or with required columns missing.
    """
    if isinstance(source, str | os.PathLike):
        with open(source, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
            yield from _rows(f)
    elif isinstance(source, io.RawIOBase | io.BufferedIOBase):
        text = io.TextIOWrapper(source, encoding="utf-8-sig", errors="surrogateescape",
                                newline="")
        try:
            yield from _rows(text)
        finally:
            text.detach()  # leave the caller's file open
    else:
        yield from _rows(source)  # type: ignore[arg-type]


@dataclass(frozen=True)
class CsvConnector:
    """The built-in connector: node_settings["path"] names the node's CSV export.

    opener, when given, opens that path as a binary file (or refuses it): the appliance
    passes one that reads only inside its import directory.
    """

    name = "csv"
    opener: Callable[[str], IO[bytes]] | None = None

    def devices(self, node_settings: Mapping[str, Any]) -> Iterator[Device | Issue]:
        """Stream the records of the file at node_settings["path"]."""
        path = node_settings.get("path")
        if not path:
            raise ValueError("the csv connector needs the node setting 'path'")
        if self.opener is None:
            return read_devices(path)
        return self._opened(path)

    def _opened(self, path: str) -> Iterator[Device | Issue]:
        with self.opener(path) as f:  # type: ignore[misc]
            yield from read_devices(f)
