"""Read entries from the host's LDAP / Active Directory servers.

Shared by every plugin that reads a corporate directory: connect with failover, verified
TLS (StartTLS or LDAPS), bind, then a streamed RFC 2696 paged search. Any search that does
not end with result code 0 raises `LdapError`, so a partial read is never mistaken for a
complete one.
"""

import logging
import math
import socket
import ssl
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from itertools import islice

import ldap3
from ldap3.core import exceptions as lx
from ldap3.operation.search import compile_filter, parse_filter

log = logging.getLogger(__name__)

SECURITY = ("none", "starttls", "ldaps")
SCOPES = ("sub", "one", "base")
KINDS = ("connect", "tls", "credentials", "base_dn", "filter", "truncated", "timeout", "other")
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
# Active Directory explains invalidCredentials with "data <code>" in the diagnostic message.
_AD_BIND_DATA = {
    "525": "the user does not exist", "52e": "the password is wrong",
    "530": "logon is not permitted at this time", "531": "logon is not permitted from here",
    "532": "the password has expired", "533": "the account is disabled",
    "701": "the account has expired", "773": "the password must be changed",
    "775": "the account is locked out",
}


@dataclass
class LdapSettings:
    """Where and how to read a directory; `servers` are tried in order.

    ca_path, when given, turns `ca_file` into the path to load when the connection is made
    (or raises LdapError): the appliance passes one that allows only its import directory.
    """

    servers: list[str]
    port: int | None = None
    security: str = "none"
    ca_file: str = ""
    bind_dn: str = ""
    password: str = field(default="", repr=False)
    base_dn: str = ""
    filter: str = "(objectClass=person)"
    scope: str = "sub"
    page_size: int = 500
    timeout: float = 10.0
    ca_path: Callable[[str], str] | None = field(default=None, repr=False, compare=False)

    @property
    def effective_port(self) -> int:
        """The port to use for servers given without one."""
        return self.port or (636 if self.security == "ldaps" else 389)


class LdapError(Exception):
    """Reading the directory failed: `kind` (one of KINDS) and an admin-readable `message`."""

    def __init__(self, kind: str, message: str):
        super().__init__(kind, message)  # both in args, so the error pickles
        self.kind = kind
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"LdapError({self.kind!r}, {self.message!r})"


@dataclass
class Entry:
    """One directory entry: the attributes it has; values are str, or bytes when binary.

    Keys are the names as requested when the server answered with the same name in another
    case, else the server's name (e.g. "sn" when "surname" was asked for).
    """

    dn: str
    attrs: dict[str, list] = field(default_factory=dict)


def entries(settings: LdapSettings, attributes: list[str]) -> Iterator[Entry]:
    """Yield the entries the search finds, one page in memory at a time.

    Nothing is sent before the first entry is asked for. Raises LdapError when anything
    fails, including a search that ends with any result code but success, even after some
    entries were yielded: the caller must then discard what it received.
    """
    _check_settings(settings)
    search_filter = _checked_filter(settings)
    conn, where = _connect(settings)
    requested = list(dict.fromkeys(a.strip() for a in attributes if a and a.strip()))
    names = {name.lower(): name for name in requested}
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
                yield _entry(item, names)
            del page
            cookie = (result.get("controls", {}).get(_PAGED_RESULTS, {})
                      .get("value", {}).get("cookie"))
            if not cookie:
                break
        log.info("read %d LDAP entries from %s", count, where)
    finally:
        _close(conn)


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


# -- connecting -------------------------------------------------------------------------

class _Skip(Exception):
    """This server did not work out; try the next one. `category`: connect/tls/timeout."""

    def __init__(self, category: str, reason: str):
        super().__init__(reason)
        self.category, self.reason = category, reason


class _VerifyingTls(ldap3.Tls):
    """ldap3 TLS that lets OpenSSL verify the chain and the host name the admin typed."""

    def __init__(self, context: ssl.SSLContext, hostname: str):
        super().__init__(validate=ssl.CERT_REQUIRED)
        self.context, self.hostname = context, hostname
        self.failure: OSError | None = None

    def wrap_socket(self, connection, do_handshake=False):
        try:
            connection.socket = self.context.wrap_socket(
                connection.socket, server_side=False, do_handshake_on_connect=do_handshake,
                server_hostname=self.hostname)
        except OSError as exc:  # ssl.SSLError, certificate errors, resets, timeouts
            self.failure = exc
            raise


def _check_settings(settings: LdapSettings) -> None:
    if settings.security not in SECURITY:
        raise LdapError("other", f"Unknown security mode {settings.security!r}: use one of "
                                 f"{', '.join(SECURITY)}.")
    if settings.scope not in SCOPES:
        raise LdapError("other", f"Unknown search scope {settings.scope!r}: use one of "
                                 f"{', '.join(SCOPES)}.")
    if not isinstance(settings.page_size, int) or settings.page_size < 1:
        raise LdapError("other", "The page size must be a whole number of at least 1.")
    if not settings.timeout or settings.timeout <= 0:
        raise LdapError("other", "The timeout must be a positive number of seconds.")
    if not [s for s in settings.servers if s and s.strip()]:
        raise LdapError("connect", "No LDAP server is configured.")
    if settings.bind_dn and not settings.password:
        raise LdapError("credentials", "A bind DN is set but the password is empty: the server "
                                       "would treat that as an anonymous bind, so it is refused.")
    if settings.password and not settings.bind_dn:
        raise LdapError("credentials", "A password is set but the bind DN is empty.")


def _checked_filter(settings: LdapSettings) -> str:
    """The filter, stripped, once ldap3 can parse it (it would refuse to send it otherwise)."""
    text = (settings.filter or "").strip()
    if not text:
        raise LdapError("filter", "The search filter is empty: use for example "
                                  "(objectClass=person).")
    if text.count("(") != text.count(")"):
        problem = (f"its parentheses are unbalanced ({text.count('(')} opening, "
                   f"{text.count(')')} closing)")
    elif not (text.startswith("(") and text.endswith(")")):
        problem = "it must be enclosed in parentheses"
    else:
        try:
            compile_filter(parse_filter(text, None, True, True, None, False).elements[0])
            return text
        except (lx.LDAPException, ValueError, TypeError, IndexError, KeyError) as exc:
            problem = str(exc) or type(exc).__name__
    raise LdapError("filter", _scrub(settings, f"The search filter {text!r} is not valid: "
                                               f"{problem}."))


def _tls_context(settings: LdapSettings) -> ssl.SSLContext:
    ca_file = settings.ca_file.strip()
    path = settings.ca_path(ca_file) if ca_file and settings.ca_path else ca_file
    try:
        context = ssl.create_default_context(cafile=path or None)
    except FileNotFoundError:
        raise LdapError("tls", f"The CA file {ca_file} does not exist.") from None
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise LdapError("tls", f"The CA file {ca_file} could not be loaded as PEM "
                               f"certificates ({exc}).") from exc
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _endpoint(server: str, default_port: int) -> tuple[str, int]:
    """Split "host", "host:port", "[v6]:port" or a bare IPv6 address."""
    server = server.strip()
    if server.startswith("["):
        host, _, rest = server[1:].partition("]")
        return host, int(rest[1:]) if rest[:1] == ":" and rest[1:].isdigit() else default_port
    if server.count(":") == 1:
        host, _, port = server.partition(":")
        if port.isdigit():
            return host, int(port)
    return server, default_port


def _connect(settings: LdapSettings) -> tuple[ldap3.Connection, str]:
    """A bound connection to the first server that works, and its "host:port"."""
    context = _tls_context(settings) if settings.security != "none" else None
    failures: list[tuple[str, _Skip]] = []
    for server in (s for s in settings.servers if s and s.strip()):
        host, port = _endpoint(server, settings.effective_port)
        where = f"[{host}]:{port}" if host.count(":") > 1 else f"{host}:{port}"
        try:
            return _connect_host(settings, host, port, context), where
        except _Skip as skip:
            log.warning("LDAP server %s skipped: %s", where, _scrub(settings, skip.reason))
            failures.append((where, skip))
    kind = _worst(skip.category for _, skip in failures)
    if len(failures) == 1:
        where, skip = failures[0]
        message = f"Could not use the LDAP server {where}: {skip.reason}."
    else:
        message = (f"Could not use any of the {len(failures)} LDAP servers: "
                   + "; ".join(f"{where}: {skip.reason}" for where, skip in failures) + ".")
    raise LdapError(kind, _scrub(settings, message))


def _worst(categories) -> str:
    found = set(categories)
    return "tls" if "tls" in found else "timeout" if "timeout" in found else "connect"


def _connect_host(settings: LdapSettings, host: str, port: int,
                  context: ssl.SSLContext | None) -> ldap3.Connection:
    """Try each address of `host` (IPv4 first); TLS still checks the name `host`."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        detail = getattr(exc, "strerror", None) or str(exc)
        raise _Skip("connect", f"the name {host!r} cannot be resolved ({detail})") from exc
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    skips: list[tuple[str, _Skip]] = []
    for address in addresses:
        try:
            return _open_and_bind(settings, host, address, port, context)
        except _Skip as skip:
            skips.append((address, skip))
    if len({skip.reason for _, skip in skips}) == 1:
        raise skips[0][1]
    raise _Skip(_worst(skip.category for _, skip in skips),
                "; ".join(f"{address}: {skip.reason}" for address, skip in skips))


def _open_and_bind(settings: LdapSettings, host: str, address: str, port: int,
                   context: ssl.SSLContext | None) -> ldap3.Connection:
    tls = _VerifyingTls(context, host) if context is not None else None
    server = ldap3.Server(address, port=port, use_ssl=settings.security == "ldaps", tls=tls,
                          get_info=ldap3.NONE, connect_timeout=settings.timeout)
    conn = ldap3.Connection(
        server, user=settings.bind_dn or None, password=settings.password or None,
        authentication=ldap3.SIMPLE if settings.bind_dn else ldap3.ANONYMOUS,
        receive_timeout=max(1, math.ceil(settings.timeout)), auto_referrals=False,
        raise_exceptions=False, read_only=True, check_names=False,
        return_empty_attributes=False)
    try:
        try:
            conn.open(read_server_info=False)
            if settings.security == "starttls" and not conn.start_tls(read_server_info=False):
                raise _Skip("tls", "StartTLS could not be started")
            bound = conn.bind(read_server_info=False)
        except lx.LDAPException as exc:
            raise _open_failure(settings, exc, tls, host, port) from exc
        if not bound:
            _bind_failed(settings, conn.result or {})
        return conn
    except BaseException:
        _close(conn)
        raise


def _open_failure(settings: LdapSettings, exc: Exception, tls: _VerifyingTls | None,
                  host: str, port: int) -> _Skip:
    if tls is not None and tls.failure is not None:
        return _tls_failure(settings, tls.failure, host)
    if isinstance(exc, lx.LDAPStartTLSError):
        detail = str(exc).removeprefix("startTLS failed - ")
        return _Skip("tls", f"the server refused StartTLS ({detail}); is TLS configured "
                            "on it?")
    causes = [exc]
    if len(exc.args) > 1 and isinstance(exc.args[1], list):  # one error per address
        causes = [item[0] for item in exc.args[1] if isinstance(item, tuple)] or causes
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return _Skip("connect", f"connection refused (nothing listens on port {port})")
    if any(isinstance(c, TimeoutError) for c in causes):
        if isinstance(exc, lx.LDAPSocketOpenError):
            return _Skip("connect", f"no answer within {settings.timeout:g} s")
        return _Skip("timeout", f"connected, but the server did not answer within "
                                f"{settings.timeout:g} s")
    if isinstance(exc, lx.LDAPSessionTerminatedByServerError):
        hint = ("" if settings.security == "ldaps"
                else f" (if port {port} is an LDAPS port, choose LDAPS as the security)")
        return _Skip("connect", f"the server closed the connection{hint}")
    return _Skip("connect", str(causes[0]) or type(causes[0]).__name__)


def _tls_failure(settings: LdapSettings, exc: OSError, host: str) -> _Skip:
    if isinstance(exc, ssl.SSLCertVerificationError):
        code, text = exc.verify_code, exc.verify_message
        ca = (f"the CA file {settings.ca_file.strip()}" if settings.ca_file.strip()
              else "the system's trusted CAs")
        if code in (62, 64):  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
            return _Skip("tls", f"hostname mismatch: the server's certificate is not valid "
                                f"for the name {host!r} (use a name the certificate was "
                                f"issued for, or reissue the certificate)")
        if code in (2, 18, 19, 20, 21):  # unknown issuer / self-signed
            return _Skip("tls", f"the server's certificate is not trusted: it is not signed "
                                f"by {ca} ({text})")
        if code == 10:
            return _Skip("tls", "the server's certificate has expired")
        return _Skip("tls", f"the server's certificate could not be verified ({text})")
    if isinstance(exc, TimeoutError):
        return _Skip("timeout", f"the TLS handshake did not finish within "
                                f"{settings.timeout:g} s")
    mode = "LDAPS" if settings.security == "ldaps" else "StartTLS"
    detail = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
    return _Skip("tls", f"the TLS handshake failed ({detail}); check that the port "
                        f"speaks {mode}")


def _bind_failed(settings: LdapSettings, result: dict) -> None:
    code, name = result.get("result"), result.get("description") or "unknown"
    diagnostic = (result.get("message") or "").strip()
    if code == 49:
        why = ""
        for data, meaning in _AD_BIND_DATA.items():
            if f"data {data}" in diagnostic.lower():
                why = f" (Active Directory says: {meaning})"
        raise LdapError("credentials", _scrub(
            settings, f"The server rejected the bind: wrong bind DN or password{why}."))
    if code in (51, 52):
        raise _Skip("connect", f"the server is {name} (result code {code})")
    if code in (48, 8, 13):
        kind = "credentials" if code == 48 else "tls"
        hint = {48: "this kind of bind is not allowed (anonymous binds may be disabled)",
                8: "the server requires a stronger authentication (use StartTLS or LDAPS)",
                13: "the server requires an encrypted connection (use StartTLS or LDAPS)"}
        raise LdapError(kind, _scrub(settings, f"The server refused the bind: {hint[code]} "
                                               f"(result code {code}, {name})."))
    detail = f": {diagnostic}" if diagnostic else ""
    raise LdapError("other", _scrub(settings, f"The server refused the bind with result code "
                                              f"{code} ({name}){detail}."))


# -- searching --------------------------------------------------------------------------

def _search_failed(settings: LdapSettings, result: dict, where: str, sent: int) -> LdapError:
    code, name = result.get("result"), result.get("description") or "unknown"
    diagnostic = (result.get("message") or "").strip()
    base = settings.base_dn
    if code == 32:
        matched = (result.get("dn") or "").strip()
        nearest = f" (the nearest existing entry is {matched!r})" if matched else ""
        return LdapError("base_dn", _scrub(settings, f"The base DN {base!r} does not exist on "
                                                     f"{where}, or the bind account may not "
                                                     f"see it{nearest}."))
    if code == 34:
        return LdapError("base_dn", _scrub(settings, f"The base DN {base!r} is not a valid DN "
                                                     f"(result code 34, invalidDNSyntax)."))
    if code == 87 or (code == 2 and sent == 0 and "filter" in diagnostic.lower()):
        return LdapError("filter", _scrub(settings, f"The server rejected the search filter "
                                                    f"{settings.filter!r} ({name}"
                                                    f"{': ' + diagnostic if diagnostic else ''})."))
    why = _TRUNCATED_WHY.get(code, "the search did not complete normally")
    if code == 10 and result.get("referrals"):
        why += " (" + ", ".join(result["referrals"]) + ")"
    detail = f"; the server said: {diagnostic}" if diagnostic else ""
    return LdapError("truncated", _scrub(
        settings, f"The search on {where} stopped with result code {code} ({name}) after "
                  f"the server sent {sent} entries: {why}{detail}. The directory was not read "
                  f"completely."))


def _lost(settings: LdapSettings, exc: Exception, where: str, count: int) -> LdapError:
    if isinstance(exc, (TimeoutError, lx.LDAPResponseTimeoutError)):
        return LdapError("timeout", _scrub(settings, f"{where} did not answer within "
                                                     f"{settings.timeout:g} s during the search "
                                                     f"(after {count} entries)."))
    if isinstance(exc, lx.LDAPCommunicationError):
        detail = ("the server closed it" if isinstance(exc, lx.LDAPSessionTerminatedByServerError)
                  else str(exc) or type(exc).__name__)
        return LdapError("connect", _scrub(settings, f"The connection to {where} was lost "
                                                     f"during the search after {count} entries "
                                                     f"({detail})."))
    return LdapError("other", _scrub(settings, f"The search on {where} failed after {count} "
                                               f"entries: {exc or type(exc).__name__}."))


def _close(conn: ldap3.Connection) -> None:
    """Unbind, and close the socket ldap3 leaves open when connecting failed."""
    try:
        conn.unbind()
    except (lx.LDAPException, OSError):
        pass
    if conn.socket is not None:
        try:
            conn.socket.close()
        except OSError:
            pass


def _scrub(settings: LdapSettings, text: str) -> str:
    """Never let the password reach a message (too short to matter below 4 characters)."""
    if settings.password and len(settings.password) >= 4:
        text = text.replace(settings.password, "********")
    return text
