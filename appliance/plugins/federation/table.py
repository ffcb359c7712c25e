"""The Federated Servers table: rows edited on the page (pending until Apply), validated
together and saved at once, then applied to the XMPP service."""

import json
from dataclasses import dataclass, field

from sqlalchemy import select

from appliance import audit
from appliance.db import db
from appliance.listing import Column, Page, paginate
from appliance.validation import Field, Invalid, Schema, int_range, is_hostname, is_ip, max_length
from appliance.xmpp.service import apply

from .models import Server
from .service import servers

ROW_API = Schema(
    "FederatedServer",
    Field("domain", "Domain", (max_length(253),)),
    Field("nextplane", "NextPlane", type="boolean"),
    Field("server", "Server", (max_length(253),), required=False),
    Field("port", "Port", (int_range(1, 65535),), required=False, type="integer"),
)
COLUMNS = [Column("domain", "Domain", Server.domain),
           Column("nextplane", "NextPlane", Server.nextplane),
           Column("server", "Server", Server.server), Column("port", "Port", Server.port)]


def servers_page(args, per_page: int, adjustable: bool = False) -> Page:
    """One page of the Federated Servers, searched by domain and sorted as `args` ask."""
    return paginate(select(Server), COLUMNS, args, "domain", search=(Server.domain,),
                    per_page=per_page, tiebreak=Server.id, adjustable=adjustable)


@dataclass
class Row:
    """A row of the table as the page has it (saved, edited, or new)."""

    key: str
    id: int | None = None
    domain: str = ""
    nextplane: bool = False
    server: str = ""
    port: str = ""
    errors: dict = field(default_factory=dict)

    @classmethod
    def of(cls, srv: Server) -> "Row":
        return cls(f"s{srv.id}", srv.id, srv.domain, srv.nextplane, srv.server,
                   "" if srv.port is None else str(srv.port))


def saved_rows() -> list[Row]:
    return [Row.of(s) for s in servers()]


def draft(form) -> list[Row]:
    """The rows the page posted (hidden inputs and open text boxes), in page order."""
    rows = []
    for key in form.getlist("row"):
        rid = form.get(f"id-{key}", "")
        rows.append(Row(key, int(rid) if rid.isdigit() else None,
                        form.get(f"domain-{key}", "").strip(),
                        form.get(f"nextplane-{key}") in ("on", "1", "true"),
                        form.get(f"server-{key}", "").strip(),
                        form.get(f"port-{key}", "").strip()))
    return rows


def pending(rows: list[Row]) -> int:
    """How many changes the page holds that Apply would save."""
    saved = {r.id: r for r in saved_rows()}
    seen, n = set(), 0
    for r in rows:
        old = saved.get(r.id)
        seen.add(r.id)
        if old is None or _values(old) != _values(r):
            n += 1
    return n + sum(1 for i in saved if i not in seen)


def _values(r: Row) -> tuple:
    return (r.domain.lower(), r.nextplane, r.server, r.port)


def validate(rows: list[Row]) -> bool:
    """Check every row (domain syntax, duplicates, server and port); mark errors. A NextPlane
    row needs its server and port; any other row may have them too (a route, for a server
    that is not in DNS), both or neither."""
    seen: dict[str, str] = {}
    for r in rows:
        r.errors = {}
        d = r.domain.lower().rstrip(".")
        if not d:
            r.errors["domain"] = "Domain is required: double-click Enter domain and type it"
        elif is_ip(d) or not is_hostname(d) or "." not in d:
            r.errors["domain"] = "Domain must be a domain name such as ocs.com"
        elif d in seen:
            r.errors["domain"] = f"{d} is already in the table"
        else:
            seen[d] = r.key
        if r.nextplane or r.server or r.port:
            if not r.server:
                r.errors["server"] = ("Server is required for a NextPlane server" if r.nextplane
                                      else "Server is required with a port")
            elif not (is_ip(r.server) or is_hostname(r.server)):
                r.errors["server"] = "Server must be an IP address or a hostname"
            if not r.port.isdigit() or not 1 <= int(r.port) <= 65535:
                r.errors["port"] = "Port must be 1 to 65535"
    return not any(r.errors for r in rows)


def save_rows(rows: list[Row]) -> str:
    """Apply: replace the table with `rows` (validated) in one transaction, then reload.
    Invalid names each wrong cell as servers[<row key>].<column> (a row keyed "": <column>),
    and the rows carry their errors for the page."""
    if not validate(rows):
        raise Invalid({f"servers[{r.key}].{f}" if r.key else f: ("row", m)
                       for r in rows for f, m in r.errors.items()})
    before = [_values(r) for r in saved_rows()]
    existing = {s.id: s for s in servers()}
    keep = set()
    # Free every domain first, so swapping two rows' domains does not hit the unique index.
    for srv in existing.values():
        srv.domain = f"~{srv.id}"
    db.session.flush()
    for r in rows:
        srv = existing.get(r.id) if r.id else None
        if srv is None:
            srv = Server(domain="")
            db.session.add(srv)
        srv.domain, srv.nextplane = r.domain.lower().rstrip("."), r.nextplane
        srv.server = r.server
        srv.port = int(r.port) if r.port else None
        db.session.flush()
        keep.add(srv.id)
    for sid, srv in existing.items():
        if sid not in keep:
            db.session.delete(srv)
    audit.record("update", "federated servers", "", "Federated Servers", before={
        "servers": json.dumps(before)}, after={"servers": json.dumps([_values(r) for r in rows])},
        commit=False)
    db.session.commit()
    added = {r.domain.lower().rstrip(".") for r in rows} - {b[0] for b in before}
    return apply(open_to=tuple(sorted(added)))


def add(data) -> tuple[Server, str]:
    """Add one server (the ROW_API fields) to the table: (the server, what apply() said)."""
    v = ROW_API.validate(data)
    new = Row("", None, v["domain"], v["nextplane"], v["server"],
              "" if v["port"] is None else str(v["port"]))
    message = save_rows([*saved_rows(), new])
    return db.session.scalar(select(Server).where(
        Server.domain == new.domain.lower().rstrip("."))), message


def delete(srv: Server) -> str:
    """Delete Server, applied at once: what apply() said."""
    return save_rows([r for r in saved_rows() if r.id != srv.id])
