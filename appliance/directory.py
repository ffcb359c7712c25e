"""Contact and account import: replace one source's set atomically, or remove nothing."""

from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import delete, insert, select, text, update

from appliance.db import db, utcnow
from appliance.models import Account, Contact, Enterprise

FIELDS = {
    Contact: ("first_name", "last_name", "email", "phone", "im_address", "federated"),
    Account: ("login", "first_name", "last_name", "email", "phone"),
}


class SuspiciousImport(Exception):
    """The new set looks wrong (partial, or far smaller than before): nothing was changed."""


@dataclass
class ImportResult:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    removed_keys: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"added": self.added, "updated": self.updated, "removed": self.removed,
                "unchanged": self.unchanged}


def replace_source(model, enterprise: Enterprise, source: str, label: str, rows: list[dict],
                   *, complete: bool = True, max_drop: float = 0.5,
                   allow_drop: bool = False) -> ImportResult:
    """Make (enterprise, source)'s rows of `model` equal `rows`, keyed by `external_id`.

    Refuses (SuspiciousImport, nothing changed) when the source says its result is not
    `complete`, or when more than `max_drop` of the existing rows would go and the
    administrator did not `allow_drop`. Adds, updates and removals commit together.
    """
    if not complete:
        raise SuspiciousImport("The source returned an incomplete result; nothing was removed")
    fields = FIELDS[model]
    new = {}
    for row in rows:
        new[str(row["external_id"])] = row
    cols = [model.id, model.external_id, *(getattr(model, f) for f in fields)]
    have = {r.external_id: r for r in db.session.execute(
        select(*cols).where(model.enterprise_id == enterprise.id, model.source == source))}
    gone = [k for k in have if k not in new]
    if have and not allow_drop and len(gone) > max_drop * len(have):
        raise SuspiciousImport(
            f"{len(gone)} of {len(have)} entries would be removed, more than the "
            f"{int(max_drop * 100)}% safety threshold; nothing was changed")
    result = ImportResult(removed=len(gone), removed_keys=gone)
    adds, changes = [], []
    now = utcnow()
    for key, row in new.items():
        values = {f: row.get(f, False if f == "federated" else "") for f in fields}
        old = have.get(key)
        if old is None:
            adds.append({"enterprise_id": enterprise.id, "source": source, "source_label": label,
                         "external_id": key, "updated_at": now, **values})
        elif any(getattr(old, f) != values[f] for f in fields):
            changes.append({"id": old.id, "source_label": label, "updated_at": now, **values})
        else:
            result.unchanged += 1
    try:
        ids = [have[k].id for k in gone]
        for i in range(0, len(ids), 500):
            db.session.execute(delete(model).where(model.id.in_(ids[i:i + 500])))
        if changes:
            db.session.execute(update(model), changes)
        if adds:
            db.session.execute(insert(model.__table__), adds)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    result.added, result.updated = len(adds), len(changes)
    if len(adds) + len(gone) > 1000:
        _refresh_stats(model)
    _announce(model, enterprise, source, result, [have[k] for k in gone])
    return result


def _refresh_stats(model) -> None:
    """Let SQLite's planner see the new table size, or it may pick a poor index."""
    if db.engine.url.get_backend_name() == "sqlite":
        db.session.execute(text(f"ANALYZE {model.__tablename__}"))
        db.session.commit()


def remove_source(model, enterprise: Enterprise, source: str) -> int:
    """Delete every row a source brought in (its synchronizer or peer was deleted)."""
    rows = db.session.execute(select(model.id, model.external_id, *(
        [model.login] if model is Account else [])).where(
        model.enterprise_id == enterprise.id, model.source == source)).all()
    db.session.execute(delete(model).where(model.enterprise_id == enterprise.id,
                                           model.source == source))
    db.session.commit()
    result = ImportResult(removed=len(rows), removed_keys=[r.external_id for r in rows])
    _announce(model, enterprise, source, result, rows)
    return len(rows)


def _announce(model, enterprise, source, result: ImportResult, gone_rows) -> None:
    hook = current_app.extensions["appliance"].plugins.hook
    if model is Contact:
        hook.appliance_contacts_imported(enterprise=enterprise, source=source, result=result)
    elif gone_rows:
        hook.appliance_accounts_removed(enterprise=enterprise, source=source,
                                        logins=[r.login for r in gone_rows])
