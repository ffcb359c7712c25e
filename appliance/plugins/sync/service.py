"""Synchronizers of an enterprise: the one place that validates, stores and deletes them.

Pages and API call these functions, so every rule holds the same way everywhere.
"""

import json

from flask import current_app
from sqlalchemy import func, select

from appliance import audit, files, ldapdir, ldapform, vault
from appliance.db import db
from appliance.directory import remove_source
from appliance.host import host
from appliance.jobs import SCHEDULE_FIELDS, Run, days_spec
from appliance.listing import Column, Page, paginate
from appliance.models import Account, Contact, Enterprise
from appliance.validation import (
    Conflict,
    Field,
    Invalid,
    Schema,
    host_or_ip,
    int_range,
    length,
    max_length,
    one_of,
    valid_characters,
)

from .models import LDAP, MODES, PBX, PLATFORMS, Synchronizer, SyncIssue, SyncSettings

KIND = "sync.run"
MAPPED = ldapdir.FIELDS  # login, first_name, ..., external_id

COMMON = Schema(
    "Synchronizer",
    Field("name", "Name", (length(1, 64), valid_characters())),
    Field("max_drop", "Safety threshold (%)", (int_range(0, 100),), type="integer",
          help="A sync that would remove more than this share of its accounts removes nothing "
               "and waits for you to confirm."),
    *SCHEDULE_FIELDS,
)
FULL_DAYS = 7
#: An LDAP synchronizer's resyncs read only what changed; a full one runs this often.
FULL = Field("full_days", "Full reconciliation every (days)", (int_range(1, 365),),
             type="integer", required=False,
             help="Between full runs a sync reads only what changed in the directory; a full "
                  f"run also follows any change of the directory settings. Default {FULL_DAYS}.")
MAPPING = Schema("AttributeMapping", *(
    Field(f"map_{f}", f"{f.replace('_', ' ').capitalize()} attribute", (max_length(64),),
          required=False) for f in MAPPED))
NODE = Schema(
    "PbxNode",
    Field("platform", "Platform", (one_of(PLATFORMS),)),
    Field("address", "Address", (host_or_ip(),), help="FQDN or IP address of the PBX node."),
    Field("path", "Export file", (max_length(1024), files.inside_import_dir()),
          help="The node's directory and device export (CSV, see docs/pbx-csv.md), read by "
               "the built-in connector from the import directory (a relative path is taken "
               "there)."),
)
SETTINGS = Schema(
    "SyncSettings",
    Field("mode", "Synchronization type", (one_of(tuple(MODES)),)),
    Field("feature_profile", "Feature profile", (length(1, 64), valid_characters()),
          help="Applied to every account the PBX node synchronization creates."),
    Field("dynamic_only", "Synchronize Dynamic Extensions only", type="boolean"),
)
#: The body of each kind of synchronizer: what the API documents, what save() validates.
BODIES = {
    LDAP: Schema("LdapSynchronizer", *COMMON.fields.values(), FULL, *ldapform.FIELDS,
                 *MAPPING.fields.values()),
    PBX: Schema("PbxNodeSynchronizer", *COMMON.fields.values(), *NODE.fields.values()),
}
#: Test connection: the directory and the mapping, nothing of the synchronizer itself.
TEST = Schema("LdapSynchronizerTest", *ldapform.FIELDS, *MAPPING.fields.values())
SCHEDULE_DEFAULT = {"days": 1, "hour": 1, "minute": 0, "ampm": "AM"}
#: Under the micollab-integrated profile MiCollab owns these: shown disabled, refused here.
INTEGRATED_LOCKED = ("mode", "feature_profile", "dynamic_only", "platform", "address")


def integrated() -> bool:
    return bool(host().flags.get("integrated_mode"))


# --- the enterprise's synchronization settings --------------------------------------------


def settings_of(ent: Enterprise) -> SyncSettings:
    row = db.session.get(SyncSettings, ent.id)
    if row is None:
        row = SyncSettings(enterprise_id=ent.id, mode=PBX if integrated() else LDAP)
        db.session.add(row)
        db.session.flush()
    return row


def save_settings(ent: Enterprise, data) -> SyncSettings:
    values = SETTINGS.validate(data)
    row = settings_of(ent)
    if integrated():
        locked = [f for f in ("mode", "feature_profile", "dynamic_only")
                  if values[f] != getattr(row, f)]
        if locked:
            raise Invalid({f: ("integrated_mode", f"{SETTINGS.fields[f].label} is managed by "
                           "MiCollab in integrated mode") for f in locked})
    before = {k: getattr(row, k) for k in values}
    for k, v in values.items():
        setattr(row, k, v)
    audit.record("update", "sync settings", ent.id, ent.eid, before=before, after=values,
                 commit=False)
    db.session.commit()
    return row


# --- synchronizers --------------------------------------------------------------------------


def mapping_of(values: dict) -> dict[str, str]:
    """The preset's attribute mapping with the admin's overrides."""
    out = dict(ldapdir.MAPPING_PRESETS[values.get("preset") or "Active Directory"])
    out.update({f: a for f, a in (values.get("mapping") or {}).items() if a})
    return out


def form_values(syn: Synchronizer) -> dict:
    values = {"name": syn.name, "max_drop": syn.max_drop, **SCHEDULE_DEFAULT,
              **{k: v for k, v in syn.schedule_spec.items() if k in SCHEDULE_DEFAULT}}
    if syn.kind == LDAP:
        s = syn.settings
        values["full_days"] = syn.full_days
        values.update({k: v for k, v in s.items() if k != "mapping"},
                      **{f"map_{f}": a for f, a in (s.get("mapping") or {}).items()})
    else:
        values.update(platform=syn.platform, address=syn.address, **syn.node_settings)
    return values


def _mapping(values: dict) -> dict[str, str]:
    """Take the map_<field> values out of `values`: the attribute overrides, by field."""
    return {f: v for f in MAPPED if (v := values.pop(f"map_{f}", None))}


def _validate(kind: str, data, syn: Synchronizer | None) -> tuple[dict, dict]:
    """(the common values, the kind's own): Invalid naming every wrong field at once."""
    values = BODIES[kind].validate(data)
    common = {k: values.pop(k) for k in COMMON.fields}
    if kind == LDAP:
        values["mapping"] = _mapping(values)
        common["full_days"] = values.pop("full_days") or FULL_DAYS
    elif syn is not None and integrated():
        locked = [f for f in ("platform", "address") if values[f] != getattr(syn, f)]
        if locked:
            raise Invalid({f: ("integrated_mode", f"{NODE.fields[f].label} is managed by "
                           "MiCollab in integrated mode") for f in locked})
    return common, values


def test_values(data) -> dict:
    """The validated settings of a Test connection, with their "mapping"."""
    values = TEST.validate(data)
    values["mapping"] = _mapping(values)
    return values


def save(ent: Enterprise, kind: str, data, syn: Synchronizer | None = None) -> Synchronizer:
    """Create or change a synchronizer; nothing is stored when a field is wrong."""
    common, specific = _validate(kind, data, syn)
    if kind == LDAP:
        specific["password"] = ldapform.password_for(
            specific, syn.settings if syn else None,
            syn.password_sealed if syn else "")
    creating = syn is None
    before = as_dict(syn) if syn else None
    if creating:
        syn = Synchronizer(enterprise_id=ent.id, kind=kind)
        db.session.add(syn)
    syn.name, syn.max_drop = common["name"], common["max_drop"]
    if kind == LDAP:
        syn.full_days = common["full_days"]
        password = specific.pop("password")
        syn.ldap = json.dumps(specific)
        syn.password_sealed = vault.seal(password) if password else ""
    else:
        syn.platform, syn.address = specific["platform"], specific["address"]
        syn.connector_settings = json.dumps({"path": specific["path"]})
    db.session.flush()
    spec = days_spec(common, current_app.config["TZINFO"], old=syn.schedule_spec)
    syn.schedule = json.dumps(spec)
    host().jobs.schedule(KIND, syn.source, spec)
    audit.record("create" if creating else "update", "synchronizer", syn.id, syn.name,
                 before=before, after=as_dict(syn), commit=False)
    db.session.commit()
    return syn


def update(syn: Synchronizer, changes: dict) -> Synchronizer:
    """Change the fields given in `changes`; the others (and a password not typed) stay."""
    return save(db.session.get(Enterprise, syn.enterprise_id), syn.kind,
                {**form_values(syn), **changes}, syn)


#: The columns synchronizers are sorted by, on the tab (by kind) and in the API (all).
COLUMNS = {
    LDAP: [Column("name", "AD/LDAP Synchronizer", Synchronizer.name)],
    PBX: [Column("name", "PBX Node", Synchronizer.name),
          Column("platform", "Platform", Synchronizer.platform),
          Column("address", "Address", Synchronizer.address)],
    None: [Column("name", "Name", Synchronizer.name), Column("kind", "Kind", Synchronizer.kind),
           Column("platform", "Platform", Synchronizer.platform),
           Column("address", "Address", Synchronizer.address)],
}


def synchronizers(ent_id: int, args, kind: str | None = None, per_page: int = 50,
                  adjustable: bool = False) -> Page:
    """One page of an enterprise's synchronizers (of `kind`, or all), sorted and searched by
    name as `args` ask."""
    stmt = select(Synchronizer).where(Synchronizer.enterprise_id == ent_id)
    if kind is not None:
        stmt = stmt.where(Synchronizer.kind == kind)
    return paginate(stmt, COLUMNS[kind], args, "name", search=(Synchronizer.name,),
                    per_page=per_page, tiebreak=Synchronizer.id, adjustable=adjustable)


def ldap_settings(syn: Synchronizer, password: str | None = None):
    values = syn.settings
    return ldapform.settings(values, password if password is not None else
                             vault.unseal(syn.password_sealed))


def next_sync(syn: Synchronizer):
    return host().jobs.next_run_at(KIND, syn.source)


def accounts_of(syn: Synchronizer) -> int:
    return db.session.scalar(select(func.count()).select_from(Account).where(
        Account.enterprise_id == syn.enterprise_id, Account.source == syn.source))


def running(syn: Synchronizer) -> Run | None:
    return host().jobs.active(syn.source)


def delete(syn: Synchronizer) -> int:
    """Delete a synchronizer with every account (and directory entry) it created; Conflict
    while a sync of it runs."""
    if running(syn):
        raise Conflict.because("busy", f"A sync of {syn.name} is running: delete it once "
                                       "the sync ends")
    ent = db.session.get(Enterprise, syn.enterprise_id)
    n = accounts_of(syn)
    host().jobs.unschedule(KIND, syn.source)
    audit.record("delete", "synchronizer", syn.id, syn.name, before={**as_dict(syn),
                 "accounts": n}, commit=False)
    source = syn.source
    db.session.delete(syn)
    db.session.flush()
    remove_source(Account, ent, source)
    remove_source(Contact, ent, source)
    return n


def sync_now(syn: Synchronizer, allow_drop: bool = False,
             confirmed: bool = False) -> tuple[Run, bool]:
    """Sync Now: (the run, whether it was started now rather than already running).
    `confirmed`: the admin looked at 'needs attention'; this sync may remove."""
    if confirmed:
        confirm(syn)
    return host().jobs.submit(
        KIND, syn.source, {"allow_drop": allow_drop or confirmed},
        label=f"Synchronize {syn.name}" + (" (confirmed)" if confirmed else ""),
        triggered_by=audit.current_username())


def confirm(syn: Synchronizer) -> None:
    """The admin looked at the 'needs attention' state: the next sync may remove."""
    audit.record("update", "synchronizer", syn.id, syn.name,
                 before={"attention": syn.attention}, after={"attention": "confirmed"},
                 commit=False)
    syn.attention = ""
    db.session.commit()


def issues(syn: Synchronizer, limit: int = 500) -> list[SyncIssue]:
    return list(db.session.scalars(select(SyncIssue).where(
        SyncIssue.synchronizer_id == syn.id).order_by(SyncIssue.id).limit(limit)))


def as_dict(syn: Synchronizer) -> dict:
    out = {"id": syn.id, "enterprise_id": syn.enterprise_id, "kind": syn.kind,
           "name": syn.name, "max_drop": syn.max_drop, "schedule": syn.schedule_spec,
           "needs_attention": bool(syn.attention), "attention": syn.attention or None,
           "last_sync": syn.report or None, "source": syn.source}
    if syn.kind == LDAP:
        out["ldap"] = syn.settings
        out["password_set"] = bool(syn.password_sealed)
        out["full_days"] = syn.full_days
    else:
        out.update(platform=syn.platform, address=syn.address, connector=syn.connector,
                   connector_settings=syn.node_settings)
    return out
