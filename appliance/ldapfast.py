"""A faster LDAP reader: python-ldap (libldap parses the replies in C).

Used by `ldapdir.entries(..., reader="python-ldap")` and for identifier listings; ldap3
stays the default reader of whole entries. This module only opens the connection to
one server that ldap3 already reached and hands over raw pages: ldapdir makes entries and
errors of them, so both readers behave alike.
"""

from collections.abc import Iterator

import ldap
from ldap.controls import SimplePagedResultsControl
from ldap3.core.results import RESULT_CODES

from appliance.ldapconn import LdapError, LdapSettings, scrub

_SCOPES = {"sub": 2, "one": 1, "base": 0}  # ldap.SCOPE_SUBTREE, _ONELEVEL, _BASE


class Unusable(Exception):
    """python-ldap could not connect or bind where ldap3 did: read with ldap3 instead."""


class SearchFailed(Exception):
    """The search ended with a result code other than success: `result` as ldap3 has it."""

    def __init__(self, result: dict):
        super().__init__(result)
        self.result = result


def pages(settings: LdapSettings, conn, where: str, search_filter: str,
          attributes: list[str]) -> Iterator[list[tuple[str, dict]]]:
    """Yield pages of (dn, {attribute: [bytes]}) read on `conn` (from open())."""
    try:
        ctrl = SimplePagedResultsControl(True, size=settings.page_size, cookie=b"")
        attrs = attributes or ["1.1"]
        while True:
            try:
                msgid = conn.search_ext(settings.base_dn, _SCOPES[settings.scope],
                                        search_filter, attrs, serverctrls=[ctrl])
                _, data, _, ctrls = conn.result3(msgid, timeout=settings.timeout)
            except ldap.LDAPError as exc:
                raise _failed(settings, exc, where) from None
            yield [item for item in data if item[0] is not None]  # no references
            cookie = next((c.cookie for c in ctrls
                           if c.controlType == SimplePagedResultsControl.controlType), b"")
            if not cookie:
                return
            ctrl.cookie = cookie
    finally:
        conn.unbind_s()


def open_at(settings: LdapSettings, where: str):
    """A bound python-ldap connection to `where` ("host:port"), or Unusable."""
    scheme = "ldaps" if settings.security == "ldaps" else "ldap"
    conn = ldap.initialize(f"{scheme}://{where}", bytes_mode=False)
    for opt, value in ((ldap.OPT_PROTOCOL_VERSION, 3), (ldap.OPT_REFERRALS, 0),
                       (ldap.OPT_NETWORK_TIMEOUT, settings.timeout),
                       (ldap.OPT_TIMEOUT, settings.timeout)):
        conn.set_option(opt, value)
    if settings.security != "none":
        ca = settings.ca_file.strip()
        if ca:
            conn.set_option(ldap.OPT_X_TLS_CACERTFILE,
                            settings.ca_path(ca) if settings.ca_path else ca)
        conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
        conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
    try:
        if settings.security == "starttls":
            conn.start_tls_s()
        conn.simple_bind_s(settings.bind_dn or "", settings.password or "")
    except ldap.LDAPError as exc:
        conn.unbind_s()
        info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
        raise Unusable(scrub(settings, f"python-ldap could not use {where}: "
                                       f"{info.get('desc') or exc}")) from None
    return conn


def _failed(settings: LdapSettings, exc, where: str) -> Exception:
    info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    if isinstance(exc, ldap.TIMEOUT):
        return LdapError("timeout", scrub(settings, f"{where} did not answer within "
                                                     f"{settings.timeout:g} s during the search."))
    if isinstance(exc, (ldap.SERVER_DOWN, ldap.CONNECT_ERROR)):
        return LdapError("connect", scrub(settings, f"The connection to {where} was lost "
                                                     f"during the search ({info.get('desc')})."))
    code = info.get("result")
    return SearchFailed({"result": code, "description": RESULT_CODES.get(code, info.get("desc")),
                         "message": info.get("info") or "", "dn": info.get("matched", "")})
