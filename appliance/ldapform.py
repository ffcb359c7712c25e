"""The AD/LDAP settings form shared by every page that reads a directory (peering's external
servers, synchronizers): the same fields, rules and messages for pages and API."""

import os

from appliance import files, vault
from appliance.ldapdir import LdapError, LdapSettings, test_connection
from appliance.validation import (
    Field,
    Rule,
    Schema,
    host_or_ip,
    int_range,
    max_length,
    one_of,
)

PRESETS = ("Active Directory", "Active Directory (UPN login)", "OpenLDAP")


def host_list() -> Rule:
    """One or more hostnames or IP addresses, separated by commas or spaces (failover order)."""
    one = host_or_ip()

    def check(label, v):
        names = v.replace(",", " ").split()
        if not names:
            return f"{label} is required"
        bad = [n for n in names if one(label, n)]
        if bad:
            return f"{label} must be hostnames or IP addresses separated by commas: " \
                   f"{', '.join(bad)} is not one"
    return Rule("host_list", check)


def ldap_filter() -> Rule:
    def check(label, v):
        depth = 0
        for c in v:
            depth += (c == "(") - (c == ")")
            if depth < 0:
                break
        if not (v.startswith("(") and v.endswith(")")) or depth != 0:
            return f"{label} must be an LDAP filter in parentheses, e.g. (objectClass=person)"
    return Rule("ldap_filter", check)


def readable_file() -> Rule:
    """A readable file, a relative path taken inside the import directory."""
    def check(label, v):
        path = files.real_path(v)
        if path is None:
            return files.refusal(label)
        if not path.is_file() or not os.access(path, os.R_OK):
            return f"{label} must be the path of a readable PEM file on the appliance"
    return Rule("readable_file", check)


def ca_path(raw: str) -> str:
    """The CA file to load, resolved again when the connection is made: a file swapped for a
    symlink out of the import directory since it was saved is refused, not followed."""
    path = files.real_path(raw)
    if path is None:
        raise LdapError("tls", f"The CA file {raw} is refused: "
                        f"{files.refusal('CA certificates')}.")
    return str(path)


FIELDS = (
    Field("servers", "Server(s)", (host_list(), max_length(1024)),
          help="Hostnames or IP addresses, separated by commas, tried in this order."),
    Field("port", "Port", (int_range(1, 65535),), required=False, type="integer",
          help="Empty: 389, or 636 for LDAPS."),
    Field("security", "Security", (one_of(("none", "starttls", "ldaps")),)),
    Field("ca_file", "CA certificates", (files.inside_import_dir("CA certificates"),
                                         readable_file()), required=False,
          help="PEM file the server certificate is checked with, in the import directory (a "
               "relative path is taken there); empty: the system's CAs."),
    Field("bind_dn", "Bind DN", (max_length(1024),), required=False),
    Field("password", "Bind password", (max_length(1024),), required=False, secret=True,
          help="Never shown again; leave empty to keep the stored one."),
    Field("base_dn", "Base DN", (max_length(1024),)),
    Field("filter", "Filter", (ldap_filter(), max_length(2048))),
    Field("scope", "Scope", (one_of(("sub", "one", "base")),)),
    Field("page_size", "Page size", (int_range(1, 5000),), type="integer"),
    Field("preset", "Field mappings", (one_of(PRESETS),),
          help="Common AD Field Mappings, or OpenLDAP's."),
)
DEFAULTS = {"security": "none", "filter": "(objectClass=person)", "scope": "sub",
            "page_size": 500, "preset": "Active Directory", "port": None}
SCHEMA = Schema("LdapSettings", *FIELDS)


def settings(values: dict, password: str):
    """An ldapdir.LdapSettings from validated form values and the (unsealed) password."""
    return LdapSettings(
        servers=values["servers"].replace(",", " ").split(), port=values.get("port"),
        security=values["security"], ca_file=values.get("ca_file") or "",
        bind_dn=values.get("bind_dn") or "", password=password, base_dn=values["base_dn"],
        filter=values["filter"], scope=values["scope"], page_size=values["page_size"],
        ca_path=ca_path)


def try_connection(values: dict, password: str, mapping: dict) -> tuple[list | None, str]:
    """Test connection with validated values: (the first entries as `mapping` maps them, "")
    or (None, why it failed)."""
    try:
        return test_connection(settings(values, password), mapping), ""
    except LdapError as exc:
        return None, exc.message


def endpoint(values: dict) -> tuple:
    """Where a bind password goes: every server (backups too), the port, the security and the
    CA file the server's certificate is checked with."""
    security = values.get("security")
    servers = sorted(set((values.get("servers") or "").replace(",", " ").lower().split()))
    port = int(values.get("port") or (636 if security == "ldaps" else 389))
    ca_file = (values.get("ca_file") or "").strip() if security != "none" else ""
    return tuple(servers), port, security, ca_file


def password_for(values: dict, stored: dict | None, sealed: str) -> str:
    """The bind password for `values`: the one typed, else the stored one (`sealed`, kept with
    the `stored` settings). A stored password is only sent to the endpoint it was typed for
    (vault.secret_for): once a server, the port, the security or the CA file changes, it must
    be typed again (Invalid says so)."""
    return vault.secret_for(
        values.get("password") or "", sealed, endpoint(stored) if stored is not None else None,
        endpoint(values), "password", "Bind password: type it again for these servers; the "
        "stored one is only sent to the directory it was typed for")
