"""Read entries from the host's LDAP / Active Directory servers.

Shared by every plugin that reads a corporate directory: connect and bind (see ldapconn),
then a streamed RFC 2696 paged search. Any search that does
not end with result code 0 raises `LdapError`, so a partial read is never mistaken for a
complete one.
"""

import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from itertools import islice

import ldap3
from ldap3.core import exceptions as lx

from appliance.ldapconn import (
    LdapError,
    LdapSettings,
    check_settings,
    checked_filter,
    close,
    connect,
    scrub,
)

log = logging.getLogger(__name__)

FIELDS = ("login", "first_name", "last_name", "email", "phone", "mobile", "department",
          "title", "external_id")

_AD = {"login": "sAMAccountName", "first_name": "givenName", "last_name": "sn",
       "email": "mail", "phone": "telephoneNumber", "mobile": "mobile",
       "department": "department", "title": "title", "external_id": "objectGUID"}
MAPPING_PRESETS: dict[str, dict[str, str]] = {
    "Active Directory": _AD,
    "Active Directory (UPN login)": {**_AD, "login": "userPrincipalName"},
    "OpenLDAP": {"login": "uid", "first_name": "givenName", "last_name": "sn", "email": "mail",
                 "phone": "telephoneNumber", "mobile": "mobile",
                 "department": "departmentNumber", "title": "title",
                 "external_id": "entryUUID"},
}

# Attributes whose values are binary: they stay bytes (any value that is not UTF-8 does too).
BINARY_ATTRIBUTES = frozenset({
    "objectguid", "objectsid", "ms-ds-consistencyguid", "msexchmailboxguid", "jpegphoto",
    "thumbnailphoto", "photo", "audio", "usercertificate", "cacertificate",
    "usersmimecertificate", "userpkcs12"})

# Standard attribute names with aliases (RFC 4519, cosine): servers answer with the first.
_ALIAS_GROUPS = (
    ("sn", "surname"), ("cn", "commonName"), ("givenName", "gn"), ("uid", "userid"),
    ("mail", "rfc822Mailbox"), ("mobile", "mobileTelephoneNumber"),
    ("pager", "pagerTelephoneNumber"), ("homePhone", "homeTelephoneNumber"),
    ("facsimileTelephoneNumber", "fax"), ("l", "localityName"), ("st", "stateOrProvinceName"),
    ("street", "streetAddress"), ("o", "organizationName"), ("ou", "organizationalUnitName"),
    ("c", "countryName"), ("dc", "domainComponent"))
_ALIASES = {name.lower(): tuple(a.lower() for a in group if a != name)
            for group in _ALIAS_GROUPS for name in group}
_SCOPE = {"sub": ldap3.SUBTREE, "one": ldap3.LEVEL, "base": ldap3.BASE}
_PAGED_RESULTS = "1.2.840.113556.1.4.319"
_TRUNCATED_WHY = {
    3: "the server's time limit for a search was reached",
    4: "the server's size limit (the most entries it returns to this account) was reached",
    10: "the server referred the search to another server",
    11: "an administrative limit of the server was exceeded",
    12: "the server does not support the paged-results control it was asked to use",
    51: "the server is busy",
    52: "the server is unavailable",
    53: "the server is unwilling to perform the search",
}


@dataclass
class Entry:
    """One directory entry: the attributes it has; values are str, or bytes when binary.

    Keys are the names as requested when the server answered with the same name in another
    case, else the server's name (e.g. "sn" when "surname" was asked for).
    """

    dn: str
    attrs: dict[str, list] = field(default_factory=dict)


READERS = ("ldap3", "python-ldap")


def default_reader() -> str:
    """ldap3, unless APPLIANCE_LDAP_READER names python-ldap."""
    chosen = os.environ.get("APPLIANCE_LDAP_READER", "ldap3")
    return chosen if chosen in READERS else "ldap3"


def entries(settings: LdapSettings, attributes: list[str], search_filter: str | None = None,
            reader: str | None = None, pages=None) -> Iterator[Entry]:
    """Yield the entries the search finds, one page in memory at a time.

    `search_filter` replaces the settings' filter (the caller builds it from that one);
    `reader` is "ldap3" or "python-ldap" (default_reader() when None). Nothing is sent
    before the first entry is asked for. `pages([(dn, {name: [bytes]}), ...])`, when
    given, turns each page python-ldap reads into what is yielded instead of its entries.
    Raises LdapError when anything fails, including a search that ends with any result code
    but success, even after some entries were yielded: the caller must then discard what it
    received.
    """
    check_settings(settings)
    search_filter = search_filter or checked_filter(settings)
    conn, where = connect(settings)
    requested = list(dict.fromkeys(a.strip() for a in attributes if a and a.strip()))
    names = {name.lower(): name for name in requested}
    if (reader or default_reader()) == "python-ldap":
        from appliance import ldapfast  # libldap: loaded by the processes that read with it

        try:  # ldap3 chose the server and checked the bind; python-ldap reads
            fast = ldapfast.open_at(settings, where)
        except ldapfast.Unusable as exc:
            log.warning("%s; reading with ldap3", exc)
        else:
            close(conn)
            yield from _fast(settings, fast, where, search_filter, requested, names, pages)
            return
    _lean(conn, names)
    count, cookie = 0, None
    try:
        while True:
            try:
                conn.search(settings.base_dn, search_filter, _SCOPE[settings.scope],
                            attributes=requested or [ldap3.NO_ATTRIBUTES],
                            paged_size=settings.page_size, paged_cookie=cookie,
                            size_limit=0, time_limit=0)
            except lx.LDAPException as exc:
                raise _lost(settings, exc, where, count) from exc
            result = conn.result or {}
            page = [item for item in conn.response or () if item.get("type") == "searchResEntry"]
            if result.get("result") != 0:  # checked before yielding anything of this page
                raise _search_failed(settings, result, where, count + len(page))
            # Continuation references (searchResRef, e.g. AD's DomainDnsZones under a domain
            # root) name other naming contexts; they are not entries and are skipped.
            for item in page:
                count += 1
                yield item.get("entry") or _entry(item, names)
            del page
            cookie = (result.get("controls", {}).get(_PAGED_RESULTS, {})
                      .get("value", {}).get("cookie"))
            if not cookie:
                break
        log.info("read %d LDAP entries from %s", count, where)
    finally:
        close(conn)


def identifiers(settings: LdapSettings, attribute: str,
                reader: str | None = None) -> Iterator[list[tuple[str, str]]]:
    """Pages of (DN, the attribute's value as map_entry gives it) of every entry the search
    finds: a listing of identifiers only, for finding the entries that are gone. Errors as
    entries()."""
    binary = attribute.lower() in BINARY_ATTRIBUTES

    def page_of(page: list) -> list[tuple[str, str]]:
        out = []
        for dn, attrs in page:
            values = next(iter(attrs.values()), None)
            out.append((dn, _text(attribute, _decode(values[0], binary)) if values else ""))
        return out

    stream = entries(settings, [attribute], None, reader, pages=page_of)
    for item in stream:
        if isinstance(item, list):
            yield item
        else:  # ldap3 read it: its entries come one by one
            yield [(e.dn, map_entry(e, {"k": attribute})["k"])
                   for e in (item, *islice(stream, settings.page_size - 1))]


def _fast(settings, conn, where, search_filter, requested, names, pages) -> Iterator:
    from appliance import ldapfast

    count = 0
    try:
        for page in ldapfast.pages(settings, conn, where, search_filter, requested):
            count += len(page)
            if pages is not None:
                yield pages(page)
                continue
            for dn, attrs in page:
                yield _entry({"dn": dn, "raw_attributes": attrs}, names)
    except ldapfast.SearchFailed as exc:
        raise _search_failed(settings, exc.result, where, count) from None
    log.info("read %d LDAP entries from %s (python-ldap)", count, where)


def map_entry(entry: Entry, mapping: dict[str, str]) -> dict[str, str]:
    """Our field -> the first value of its LDAP attribute as text ("" if absent), plus "dn"."""
    values = {name.lower(): vals for name, vals in entry.attrs.items() if vals}
    mapped = {"dn": entry.dn}
    for name, attribute in mapping.items():
        key = (attribute or "").strip().lower()
        found = next((values[k] for k in (key, *_ALIASES.get(key, ())) if k in values), [])
        mapped[name] = _text(attribute, found[0]) if found else ""
    return mapped


def test_connection(settings: LdapSettings, mapping: dict[str, str],
                    limit: int = 5) -> list[dict]:
    """Bind and search; return the first `limit` entries mapped, or raise LdapError."""
    attributes = [a for a in mapping.values() if a]
    with closing(entries(settings, attributes)) as stream:
        first = next(stream, None)  # connects, binds and searches even when limit is 0
        sample = [] if first is None else [first, *islice(stream, max(limit - 1, 0))]
    return [map_entry(entry, mapping) for entry in sample[:max(limit, 0)]]


# -- values ---------------------------------------------------------------------------

def _lean(conn, names: dict[str, str]) -> None:
    """Make this connection decode search entries straight from ldap3's BER tuples into an
    Entry: ldap3 would build two case-insensitive dicts of every entry (raw and formatted),
    most of its cost per entry after the BER decoding itself. Ranged values (AD's
    "member;range=0-1499") keep ldap3's own decoding, which its auto-range relies on."""
    standard = conn.strategy.decode_response_fast

    def decode(message):
        if message["protocolOp"] != 4:
            return standard(message)
        payload = message["payload"]
        pairs = [(bytes(a[3][0][3]), a[3][1][3]) for a in payload[1][3]]
        if any(b";range=" in name for name, _ in pairs):
            return standard(message)
        raw = {name.decode(): [bytes(v[3]) for v in vals] for name, vals in pairs}
        dn = bytes(payload[0][3]).decode("utf-8", "replace")
        return {"type": "searchResEntry", "dn": dn, "raw_attributes": raw,
                "entry": _entry({"dn": dn, "raw_attributes": raw}, names)}

    conn.strategy.decode_response_fast = decode


def _entry(item: dict, names: dict[str, str]) -> Entry:
    attrs = {}
    for name, raw in (item.get("raw_attributes") or {}).items():
        base = name.lower().split(";")[0]
        binary = base in BINARY_ATTRIBUTES or ";binary" in name.lower()
        attrs[names.get(name.lower(), name)] = [_decode(v, binary) for v in raw]
    return Entry(item["dn"], attrs)


def _decode(value, binary: bool):
    if binary or not isinstance(value, bytes):
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value


def _text(attribute: str, value) -> str:
    if not isinstance(value, bytes):
        return str(value)
    if attribute.strip().lower() == "objectguid" and len(value) == 16:
        return str(uuid.UUID(bytes_le=value))
    return value.hex()


# -- searching --------------------------------------------------------------------------

def _search_failed(settings: LdapSettings, result: dict, where: str, sent: int) -> LdapError:
    code, name = result.get("result"), result.get("description") or "unknown"
    diagnostic = (result.get("message") or "").strip()
    base = settings.base_dn
    if code == 32:
        matched = (result.get("dn") or "").strip()
        nearest = f" (the nearest existing entry is {matched!r})" if matched else ""
        return LdapError("base_dn", scrub(settings, f"The base DN {base!r} does not exist on "
                                                     f"{where}, or the bind account may not "
                                                     f"see it{nearest}."))
    if code == 34:
        return LdapError("base_dn", scrub(settings, f"The base DN {base!r} is not a valid DN "
                                                     f"(result code 34, invalidDNSyntax)."))
    if code == 87 or (code == 2 and sent == 0 and "filter" in diagnostic.lower()):
        return LdapError("filter", scrub(settings, f"The server rejected the search filter "
                                                    f"{settings.filter!r} ({name}"
                                                    f"{': ' + diagnostic if diagnostic else ''})."))
    why = _TRUNCATED_WHY.get(code, "the search did not complete normally")
    if code == 10 and result.get("referrals"):
        why += " (" + ", ".join(result["referrals"]) + ")"
    detail = f"; the server said: {diagnostic}" if diagnostic else ""
    return LdapError("truncated", scrub(
        settings, f"The search on {where} stopped with result code {code} ({name}) after "
                  f"the server sent {sent} entries: {why}{detail}. The directory was not read "
                  f"completely."))


def _lost(settings: LdapSettings, exc: Exception, where: str, count: int) -> LdapError:
    if isinstance(exc, (TimeoutError, lx.LDAPResponseTimeoutError)):
        return LdapError("timeout", scrub(settings, f"{where} did not answer within "
                                                     f"{settings.timeout:g} s during the search "
                                                     f"(after {count} entries)."))
    if isinstance(exc, lx.LDAPCommunicationError):
        detail = ("the server closed it" if isinstance(exc, lx.LDAPSessionTerminatedByServerError)
                  else str(exc) or type(exc).__name__)
        return LdapError("connect", scrub(settings, f"The connection to {where} was lost "
                                                     f"during the search after {count} entries "
                                                     f"({detail})."))
    return LdapError("other", scrub(settings, f"The search on {where} failed after {count} "
                                               f"entries: {exc or type(exc).__name__}."))
