"""Bulk User Provisioning: reading an upload. A CSV file in the export's format or an LDIF
file, streamed a row (an entry) at a time, as the USER fields a row gives and what keeps it
from being read (bytes that are not UTF-8, a row that does not fit the header, a broken
LDIF entry). A problem with the file as a whole is a FileError."""

import base64
import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import ldif

from appliance import csvsafe

from .rules import USER

#: The CSV columns, in the order the export writes them.
COLUMNS = ("login", "first_name", "last_name", "email", "number", "element", "location",
           "department", "template", "services")
REQUIRED = ("login", "last_name", "element")
#: What the administrator picks on the page; fills the cells a row leaves empty.
DEFAULTS = ("element", "template", "location", "department")
FORMATS = ("csv", "ldif")

#: Bytes that were not UTF-8 (read with surrogateescape).
UNDECODED = re.compile("[\udc80-\udcff]")
_APOSTROPHE = re.compile("'").match  # a cell csvsafe may have written with one in front
_PHONE_PUNCTUATION = re.compile(r"[\s().-]")


class FileError(Exception):
    """The file as a whole cannot be imported (no header, a missing column, bad options)."""


# A row as the readers hand it over: (first line, USER fields, problems by field). A problem
# under "" means the row cannot be read as a user at all; others replace that field's message.
Row = tuple[int, dict, dict[str, str]]


def read_csv(path: str | Path, defaults: dict | None = None) -> Iterator[Row]:
    """The rows of a CSV file in the export's format, one at a time."""
    defaults = defaults or {}
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader, None)
            if header is None:
                raise FileError("The file is empty: the first line must be the header ("
                                f"{', '.join(COLUMNS)})")
            for i, cell in enumerate(header, 1):
                if UNDECODED.search(cell):
                    raise FileError(f"Line 1 (the header), column {i}: invalid UTF-8 byte; "
                                    "save the file as UTF-8 text")
            names = [h.strip().lower() for h in header]
            for name in COLUMNS:
                if names.count(name) > 1:
                    raise FileError(f"The header names the column {name} twice")
            missing = [c for c in REQUIRED if c not in names]
            if missing:
                raise FileError(
                    f"Missing required column{'s' if len(missing) > 1 else ''} "
                    f"{', '.join(missing)}: the header (line 1) must name "
                    f"{', '.join(REQUIRED)}; it names {', '.join(names) or 'nothing'}")
            index = [(c, names.index(c)) for c in COLUMNS if c in names]
            end = reader.line_num
            for cells in reader:
                line, end = end + 1, reader.line_num
                if not any(c.strip() for c in cells):
                    continue  # a blank line
                if any(map(_APOSTROPHE, cells)):
                    cells = [csvsafe.restored(c) for c in cells]
                if len(cells) != len(names):
                    login = cells[names.index("login")] if len(cells) > names.index("login") \
                        else ""
                    yield line, {"login": login.strip()}, {"": (
                        f"The line has {len(cells)} values and the header {len(names)} "
                        "columns: a value with a comma must be in double quotes")}
                    continue
                data = {c: cells[i] for c, i in index}
                for name, value in defaults.items():
                    if not (data.get(name) or "").strip():
                        data[name] = value
                yield line, data, _undecoded(data)
        except csv.Error as exc:
            raise FileError(f"Line {reader.line_num}: not CSV ({exc})") from None


def read_ldif(path: str | Path, defaults: dict | None = None) -> Iterator[Row]:
    """The entries of an LDIF file as users, one at a time.

    Each entry is parsed by python-ldap's `ldif` module on its own, so a broken entry is
    rejected without losing the rest, and its line number counts folded lines too.
    """
    defaults = defaults or {}
    with open(path, "rb") as f:
        for line, block in _ldif_blocks(f):
            try:
                records = _records(block)
            except ValueError as exc:  # no colon, bad base64 or DN, no dn: first
                yield line, {}, {"": f"Not an LDIF entry ({exc})"}
                continue
            dn, entry = records[0] if records else (None, {})
            yield _ldif_user(line, dn, entry, defaults)


def _records(block: bytes) -> list[tuple[str, dict]]:
    """The (dn, {attribute: [bytes]}) records of one entry. RFC 2849 has a value that is not
    ASCII base64-encoded (`name:: `), and the parser decodes plain ones as UTF-8: a plain
    value that is not UTF-8 is handed to it base64-encoded, to be reported as such by its
    field. A `name:< URL` value is never fetched (None)."""
    lines = []
    for raw in block.splitlines(keepends=True):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            name, colon, value = raw.rstrip(b"\r\n").partition(b": ")
            if colon and not name.startswith((b" ", b"#")) and b":" not in name:
                raw = name + b":: " + base64.b64encode(value.lstrip()) + b"\n"
        lines.append(raw)
    parser = ldif.LDIFRecordList(io.BytesIO(b"".join(lines)))
    parser.parse()
    return parser.all_records


def _ldif_blocks(f: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line, lines) for each blank-line-separated entry: the line of its dn: (or of its
    first line that is neither a comment nor folded). Comment-only and version-only blocks
    are no entry."""
    lines: list[bytes] = []
    first = dn = 0
    for number, raw in enumerate(f, 1):
        text = raw.rstrip(b"\r\n")
        if text:
            lines.append(raw)
            if text[:1] not in (b"#", b" "):  # not a comment, not a folded line
                head = text[:8].lower()
                if head.startswith(b"dn:"):
                    dn = dn or number
                elif not head.startswith(b"version:"):
                    first = first or number
            continue
        if dn or first:
            yield dn or first, b"".join(lines)
        lines, first, dn = [], 0, 0
    if dn or first:
        yield dn or first, b"".join(lines)


def _ldif_user(line: int, dn: str | None, entry: dict, defaults: dict) -> Row:
    attrs = {k.lower(): v for k, v in entry.items()}
    problems: dict[str, str] = {}

    def first(*names: str) -> str:
        for name in names:
            for value in attrs.get(name.lower(), ()):
                if value is None:  # a URL, not fetched
                    continue
                # python-ldap's values are bytes: what is not UTF-8 is reported by field
                return value.decode("utf-8", "surrogateescape")
        return ""

    where = f" (dn: {dn})"
    if dn is None:
        return line, {}, {"": "The entry has no dn: line"}
    change = first("changetype")
    if change and change.lower() != "add":
        return line, {"login": first("uid", "sAMAccountName")}, {
            "": f"LDIF change records are not imported (changetype: {change}){where}"}
    data = {"login": first("uid", "sAMAccountName"), "first_name": first("givenName"),
            "last_name": first("sn"), "email": first("mail"),
            "number": _PHONE_PUNCTUATION.sub("", first("telephoneNumber")),
            "department": first("departmentNumber", "ou"), "location": first("l")}
    if not data["login"].strip():
        problems["login"] = f"No login: the entry has no uid or sAMAccountName{where}"
    for name in DEFAULTS:
        if not (data.get(name) or "").strip() and defaults.get(name):
            data[name] = defaults[name]
    return line, data, {**problems, **_undecoded(data)}


def _undecoded(data: dict) -> dict[str, str]:
    if not UNDECODED.search("".join(data.values())):
        return {}
    return {name: f"{USER.fields[name].label} is not UTF-8 text"
            for name, value in data.items() if UNDECODED.search(value)}


def shown(text: str) -> str:
    """Text that held undecodable bytes, with them as \\xNN (so pages and files can show it)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")

