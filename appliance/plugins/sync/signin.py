"""Sign-in of the accounts an LDAP synchronizer brought in: the user's entry is found with
the synchronizer's own bind, then its password is checked by a bind as that entry, against
the same servers with the same TLS settings. The password is neither stored nor logged."""

from dataclasses import replace

from flask import current_app
from ldap3.utils.conv import escape_filter_chars

from appliance import ldapconn, ldapdir
from appliance.db import db

from . import service
from .models import LDAP, Synchronizer

#: (synchronizer id, external id) -> the entry's DN, so a sign-in costs one bind, not three.
_dns: dict[tuple[int, str], str] = {}


def check(account, password: str) -> str | None:
    """"ok", "wrong" or "unavailable" for an account of an LDAP synchronizer ("directory"
    when `password` is None); None for any other account (a PBX node's accounts sign in with
    a password set on the appliance)."""
    source, _, sid = account.source.partition(":")
    syn = db.session.get(Synchronizer, int(sid)) if source == "sync" and sid.isdigit() else None
    if syn is None or syn.kind != LDAP:
        return None
    if password is None:
        return "directory"  # the host asks only whose password this is
    if not password:
        return "wrong"  # an empty password would be an unauthenticated bind: always refused
    try:
        settings = service.ldap_settings(syn)
    except ValueError:
        return "unavailable"
    # A client is waiting, and the next server in the list may answer: wait less than a sync.
    settings = replace(settings, timeout=min(settings.timeout,
                                             current_app.config["XMPP_SIGNIN_TIMEOUT"]))
    key = (syn.id, account.external_id)
    for attempt in range(2):
        dn = _dns.get(key) if attempt == 0 else None
        if dn is None:
            try:
                dn = _find(settings, service.mapping_of(syn.settings), account)
            except ldapdir.LdapError:
                return "unavailable"  # the synchronizer's own bind or search failed
            if dn is None:
                return "wrong"  # the entry is gone or no longer matches the filter
            _dns[key] = dn
        try:
            ldapconn.close(ldapconn.connect(replace(settings, bind_dn=dn, password=password))[0])
            return "ok"
        except ldapdir.LdapError as exc:
            if exc.kind != "credentials":
                return "unavailable"
            if attempt == 0 and key in _dns:  # a cached DN may be stale (a moved entry)
                del _dns[key]
                continue
            return "wrong"
    return "wrong"


def _find(settings, mapping: dict, account) -> str | None:
    """The DN of the entry with the account's login and stable identifier, or None."""
    login_attr = mapping["login"]
    query = f"(&{ldapconn.checked_filter(settings)}({login_attr}=" \
            f"{escape_filter_chars(account.login)}))"
    found = []
    for entry in ldapdir.entries(replace(settings, filter=query), [login_attr,
                                                                    mapping["external_id"]]):
        mapped = ldapdir.map_entry(entry, mapping)
        if mapped.get("external_id") == account.external_id:
            found.append(entry.dn)
    return found[0] if len(found) == 1 else None
