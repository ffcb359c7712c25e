"""Connecting to a directory: settings checked, servers tried in order, verified TLS
(StartTLS or LDAPS) and the bind, each failure an admin-readable `LdapError`."""

import logging
import math
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

import ldap3
from ldap3.core import exceptions as lx
from ldap3.operation.search import compile_filter, parse_filter

log = logging.getLogger("appliance.ldapdir")  # the name operators know

SECURITY = ("none", "starttls", "ldaps")
SCOPES = ("sub", "one", "base")
KINDS = ("connect", "tls", "credentials", "base_dn", "filter", "truncated", "timeout", "other")

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


def check_settings(settings: LdapSettings) -> None:
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


def checked_filter(settings: LdapSettings) -> str:
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
    raise LdapError("filter", scrub(settings, f"The search filter {text!r} is not valid: "
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


def connect(settings: LdapSettings) -> tuple[ldap3.Connection, str]:
    """A bound connection to the first server that works, and its "host:port"."""
    context = _tls_context(settings) if settings.security != "none" else None
    failures: list[tuple[str, _Skip]] = []
    for server in (s for s in settings.servers if s and s.strip()):
        host, port = _endpoint(server, settings.effective_port)
        where = f"[{host}]:{port}" if host.count(":") > 1 else f"{host}:{port}"
        try:
            return _connect_host(settings, host, port, context), where
        except _Skip as skip:
            log.warning("LDAP server %s skipped: %s", where, scrub(settings, skip.reason))
            failures.append((where, skip))
    kind = _worst(skip.category for _, skip in failures)
    if len(failures) == 1:
        where, skip = failures[0]
        message = f"Could not use the LDAP server {where}: {skip.reason}."
    else:
        message = (f"Could not use any of the {len(failures)} LDAP servers: "
                   + "; ".join(f"{where}: {skip.reason}" for where, skip in failures) + ".")
    raise LdapError(kind, scrub(settings, message))


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
        close(conn)
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
        raise LdapError("credentials", scrub(
            settings, f"The server rejected the bind: wrong bind DN or password{why}."))
    if code in (51, 52):
        raise _Skip("connect", f"the server is {name} (result code {code})")
    if code in (48, 8, 13):
        kind = "credentials" if code == 48 else "tls"
        hint = {48: "this kind of bind is not allowed (anonymous binds may be disabled)",
                8: "the server requires a stronger authentication (use StartTLS or LDAPS)",
                13: "the server requires an encrypted connection (use StartTLS or LDAPS)"}
        raise LdapError(kind, scrub(settings, f"The server refused the bind: {hint[code]} "
                                               f"(result code {code}, {name})."))
    detail = f": {diagnostic}" if diagnostic else ""
    raise LdapError("other", scrub(settings, f"The server refused the bind with result code "
                                              f"{code} ({name}){detail}."))


def close(conn: ldap3.Connection) -> None:
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


def scrub(settings: LdapSettings, text: str) -> str:
    """Never let the password reach a message (too short to matter below 4 characters)."""
    if settings.password and len(settings.password) >= 4:
        text = text.replace(settings.password, "********")
    return text
