"""Provisioning with IDS: seed users (MiVoice Business) or Corporate Directory contacts
(MiVoice 5000 / MX-ONE) from a directory, through the host's shared LDAP reader."""

import json

from appliance import audit, ldapdir, ldapform, vault
from appliance.db import db
from appliance.directory import SourceImport, SuspiciousImport, remove_source
from appliance.host import host
from appliance.jobs import JobContext, JobFailed, JobKind
from appliance.models import Contact, Enterprise
from appliance.validation import (
    Conflict,
    Field,
    Invalid,
    Schema,
    gather,
    int_range,
    max_length,
)

from . import accounts, service
from .models import IDS as METHOD
from .models import IDS_SEEDS, Element, IdsSource, Template, User

KIND = "network_elements.ids"
TARGET = Schema(
    "IdsTarget",
    Field("template", "Template or role", (max_length(64),), required=False,
          help="MiVoice Business: the template applied to the users IDS seeds."),
    Field("enterprise_id", "Enterprise", (int_range(1, 2**31),), required=False,
          type="integer", help="MiVoice 5000 / MX-ONE: whose Corporate Directory is seeded."),
)
#: What an IDS set-up holds: the directory's LDAP settings and what IDS seeds there.
SETTINGS = Schema("IdsSettings", *ldapform.SCHEMA.fields.values(), *TARGET.fields.values())


def seeds(e: Element) -> str | None:
    """What IDS seeds for `e`: "users", "contacts", or None (its platform has no IDS)."""
    return IDS_SEEDS.get(e.platform)


def seeds_users(e: Element) -> bool:
    return seeds(e) == "users"


def password(e: Element, values: dict) -> str:
    """The bind password typed in `values`, else the one stored for `e` (as
    ldapform.password_for allows)."""
    src = db.session.get(IdsSource, e.id)
    return ldapform.password_for(values, src.settings if src else None,
                                 src.password_sealed if src else "")


def _directory(e: Element, data) -> dict:
    """The directory settings, with the bind password given or kept."""
    values = ldapform.SCHEMA.validate(data)
    values["password"] = password(e, values)
    return values


def save(e: Element, data) -> IdsSource:
    """Set up (or change) IDS for `e`. Moving a contacts set-up to another enterprise takes
    the contacts it seeded out of the old one's Corporate Directory, in the same commit."""
    if METHOD not in e.methods:
        raise Invalid({"element": ("method", f"{e.platform} does not offer IDS")})
    service.not_seeding(e, "save its settings")
    errors = {}
    values = gather(errors, _directory, e, data) or {}
    target = gather(errors, TARGET.validate, data) or {}
    template = service.by_name(Template, target["template"]) \
        if seeds_users(e) and target.get("template") else None
    if seeds_users(e) and target.get("template") and template is None:
        errors["template"] = ("unknown", f"Unknown template {target['template']}")
    if not seeds_users(e) and not (target.get("enterprise_id") and db.session.get(
            Enterprise, target["enterprise_id"])):
        errors["enterprise_id"] = ("required", "Enterprise is required: IDS seeds its "
                                   "Corporate Directory")
    if errors:
        raise Invalid(errors)
    row = db.session.get(IdsSource, e.id) or IdsSource(element_id=e.id)
    db.session.add(row)
    moved_from = row.enterprise_id if row.enterprise_id != target.get("enterprise_id") \
        else None
    typed = values.pop("password")
    row.ldap = json.dumps(values)
    row.password_sealed = vault.seal(typed) if typed else ""
    row.template = template.name if template else ""
    row.enterprise_id = target.get("enterprise_id")
    audit.record("update", "ids", e.id, e.name, after={**values, **target}, commit=False)
    old = db.session.get(Enterprise, moved_from) if moved_from else None
    if old is not None:
        db.session.flush()
        remove_source(Contact, old, row.source)  # commits the new settings with it
    else:
        db.session.commit()
    return row


def test_connection(e: Element, data) -> tuple[list | None, str]:
    """Test connection: bind, search and return the first entries as IDS would seed them
    (or why it failed); an empty password is the stored one. Invalid for a broken rule."""
    clean = ldapform.SCHEMA.validate(data)
    return ldapform.try_connection(clean, password(e, clean),
                                   ldapdir.MAPPING_PRESETS[clean["preset"]])


def run(ctx: JobContext) -> None:
    e = db.session.get(Element, int(ctx.target.split(":", 1)[1]))
    src = db.session.get(IdsSource, e.id) if e else None
    if src is None:
        raise JobFailed("IDS is not set up for this network element")
    try:
        settings = ldapform.settings(src.settings, vault.unseal(src.password_sealed))
    except ValueError as exc:
        raise JobFailed(str(exc)) from None
    mapping = ldapdir.MAPPING_PRESETS[src.settings.get("preset") or "Active Directory"]
    entries = ldapdir.entries(settings, sorted(set(mapping.values())))
    try:
        if seeds_users(e):
            _users(ctx, e, src, entries, mapping)
        else:
            _contacts(ctx, e, src, entries, mapping)
    except ldapdir.LdapError as exc:
        raise JobFailed(f"{exc.message.rstrip('.')}. Nothing was changed.") from None


def _users(ctx, e: Element, src: IdsSource, entries, mapping) -> None:
    """Add a user per new entry, and update what the directory holds (names, e-mail, number)
    of those seeded before; seeding never removes users. The entries of other elements'
    users, and an entry repeating a login, are rejected."""
    tables, licences = service.SiteTables(), service.Licences()
    counts = {"added": 0, "updated": 0, "unchanged": 0, "rejected": 0}
    reasons, pending, seen = [], [], {}
    for entry in entries:
        m = ldapdir.map_entry(entry, mapping)
        login = m.get("login", "").strip()
        person = {"login": login, "first_name": m.get("first_name", ""),
                  "last_name": m.get("last_name", ""), "email": m.get("email", ""),
                  "number": "".join(c for c in m.get("phone", "") if c.isdigit())}
        user = tables.user(login) if login else None
        try:
            if login.lower() in seen:
                raise Invalid({"login": ("duplicate", f"Login {login} is also the login of "
                                         f"{seen[login.lower()]}")})
            if login:
                seen[login.lower()] = entry.dn
            if user is not None and user.element_id != e.id:
                other = tables.by_id["element"][user.element_id].name
                raise Invalid({"login": ("element", f"{user.login} lives on {other}: IDS of "
                                         f"{e.name} does not move users")})
            # A new user gets the template; one seeded before keeps what the admin gave it.
            base = service.user_form(user) if user else {
                "element": e.name, "template": src.template}
            values = tables.resolve({**base, **person}, METHOD, licences, user)
        except Invalid as exc:
            counts["rejected"] += 1
            reasons.append(f"{entry.dn}: {exc}")
            continue
        if user is not None and all(getattr(user, k) == v for k, v in values.items()):
            counts["unchanged"] += 1
        else:
            pending.append((user, values))
    # The whole directory was read without error: store it.
    for user, values in pending:
        before = service.snapshot(user) if user else None
        if user is None:
            user = User(origin=METHOD)
            db.session.add(user)
        for k, v in values.items():
            setattr(user, k, v)
        db.session.flush()
        service.queue(user, before)
        counts["updated" if before else "added"] += 1
    audit.record("import", "ids", e.id, e.name, after=counts, commit=False)
    db.session.commit()
    note = accounts.conflicts_note(accounts.sync_element(e))
    ctx.count(**counts)
    ctx.progress(100, f"{counts['added']} added, {counts['updated']} updated, "
                      f"{counts['unchanged']} unchanged, {counts['rejected']} rejected" + (
                          ": " + "; ".join(reasons[:3]) + ("; …" if len(reasons) > 3 else "")
                          if reasons else "") + (f". {note}" if note else ""))


def _contacts(ctx, e: Element, src: IdsSource, entries, mapping) -> None:
    """Replace the element's contacts in the enterprise's Corporate Directory."""
    ent = db.session.get(Enterprise, src.enterprise_id)
    source, seen, batch = src.source, set(), []
    try:
        with SourceImport(ent, source, f"IDS {e.name}", (Contact,)) as imp:
            for entry in entries:
                m = ldapdir.map_entry(entry, mapping)
                key = m.get("external_id") or entry.dn
                if key in seen:
                    continue
                seen.add(key)
                batch.append({"external_id": key, "first_name": m.get("first_name", ""),
                              "last_name": m.get("last_name", ""),
                              "email": m.get("email", ""), "phone": m.get("phone", ""),
                              "im_address": m.get("email", "")})
                if len(batch) == 1000:
                    imp.add(batch)
                    batch = []
            imp.add(batch)
            result = imp.commit()[Contact]
    except SuspiciousImport as exc:
        raise JobFailed(str(exc)) from None
    ctx.count(**result.as_dict())
    ctx.progress(100, f"{len(seen):,} contacts seeded into {ent.eid}")


def submit(e: Element, who: str = ""):
    """Seed now; refused (Conflict) until IDS is set up for `e`."""
    if db.session.get(IdsSource, e.id) is None:
        raise Conflict.because("not_set_up", "Set up IDS for this element first")
    return host().jobs.submit(
        KIND, f"ids:{e.id}", label=f"IDS seeding for {e.name}", triggered_by=who)


IDS = JobKind(KIND, "Provisioning with IDS", run)
