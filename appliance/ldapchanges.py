"""A directory's own change tracking: where it stands now, and what changed since then.

Active Directory: the highestCommittedUSN of the domain controller that answers (rootDSE),
with its dsServiceName, and `uSNChanged` on every entry. OpenLDAP: the contextCSN of the
naming context (kept by the syncprov overlay, which every replicated OpenLDAP runs), and
`entryCSN` on every entry. A server with neither has no marker: read it all every time.
"""

from dataclasses import dataclass, field, replace

import ldap3
from ldap3.core import exceptions as lx

from appliance.ldapconn import LdapError, LdapSettings, check_settings, close, connect

USN, CSN = "usn", "csn"


@dataclass
class Marker:
    """Where the directory stands: `kind` USN or CSN (None: no change tracking), `server`
    (who counts: a domain controller, or a naming context), `value` (a USN, or the CSNs by
    server id), and `where` ("host:port", the server that answered)."""

    kind: str | None
    server: str = ""
    value: int | dict = 0
    where: str = ""
    detail: str = field(default="", compare=False)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "server": self.server, "value": self.value}


def read_marker(settings: LdapSettings) -> Marker:
    """Connect to the first server that works and read its marker (LdapError if none)."""
    check_settings(settings)
    conn, where = connect(settings)
    try:
        root = _base(conn, "", ["highestCommittedUSN", "dsServiceName", "namingContexts"])
        if root.get("highestcommittedusn"):
            return Marker(USN, (root.get("dsservicename") or [where])[0],
                          int(root["highestcommittedusn"][0]), where)
        context = _context_of(settings.base_dn, root.get("namingcontexts") or [])
        csns = _base(conn, context, ["contextCSN"]).get("contextcsn") if context else None
        if not csns:
            return Marker(None, where=where, detail=(
                "the server shows no change marker: no highestCommittedUSN in its rootDSE, "
                f"and no contextCSN on {context or 'a naming context holding the base DN'} "
                "(OpenLDAP keeps one where the syncprov overlay runs; the bind account must "
                "be able to read it)"))
        return Marker(CSN, context, {_sid(c): c for c in csns}, where)
    finally:
        close(conn)


def went_back(before: dict, now: Marker) -> str | None:
    """Why `now` is not a later state of the directory marked `before`, or None."""
    if before.get("kind") != now.kind or before.get("server") != now.server:
        return (f"another server or directory answered ({now.server or now.where}; the last "
                f"run read {before.get('server') or 'another'})")
    old = before.get("value")
    if now.kind == USN and now.value < old:
        return (f"the server's change marker went backwards (highestCommittedUSN {now.value},"
                f" {old} at the last run): was it restored from a backup?")
    if now.kind == CSN:
        back = [sid for sid, csn in old.items() if now.value.get(sid, "") < csn]
        if back:
            return (f"the server's change marker went backwards (contextCSN "
                    f"{now.value.get(back[0], 'missing')}, {old[back[0]]} at the last run): "
                    "was it restored from a backup?")
    return None


def since(before: dict) -> str:
    """The filter of the entries changed since the marker `before` (strictly after it: the
    server moves its marker only past committed changes, which the last run read)."""
    if before["kind"] == USN:
        return f"(uSNChanged>={int(before['value']) + 1})"
    oldest = min(before["value"].values())  # of each server id's, the least advanced
    return f"(&(entryCSN>={oldest})(!(entryCSN={oldest})))"


def at_server(settings: LdapSettings, marker: Marker) -> LdapSettings:
    """The settings pinned to the server that gave `marker` (USNs are per server)."""
    return replace(settings, servers=[marker.where], port=None)


def _base(conn: ldap3.Connection, dn: str, attributes: list[str]) -> dict:
    try:
        conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=attributes)
    except lx.LDAPException as exc:
        raise LdapError("connect", f"Reading the change marker failed: {exc}.") from exc
    for item in conn.response or ():
        if item.get("type") == "searchResEntry":
            return {k.lower(): [v.decode() if isinstance(v, bytes) else str(v) for v in vals]
                    for k, vals in (item.get("raw_attributes") or {}).items()}
    return {}


def _context_of(base_dn: str, contexts: list[str]) -> str:
    """The naming context holding `base_dn` (the longest suffix of it), or ""."""
    base = base_dn.replace(" ", "").lower()
    found = [c for c in contexts if c and base.endswith(c.replace(" ", "").lower())]
    return max(found, key=len, default="")


def _sid(csn: str) -> str:
    parts = csn.split("#")
    return parts[2] if len(parts) > 2 else "000"
