"""The audit log: who changed what, with a before/after summary that never holds secrets."""

import json

from flask import g, has_request_context

from appliance.db import db
from appliance.models import AuditEntry

SECRET_WORDS = ("password", "secret", "token", "key", "credential")
MASK = "••••••"


def current_username() -> str:
    """The administrator behind the current request, or "" (a job, a peer, a platform)."""
    user = g.get("user") if has_request_context() else None
    return user.username if user else ""


def redact(data: dict | None) -> dict | None:
    """Replace the value of every secret-looking key (at any depth) by a mask."""
    if data is None:
        return None
    out = {}
    for k, v in data.items():
        if any(w in k.lower() for w in SECRET_WORDS):
            out[k] = MASK if v not in (None, "") else v
        elif isinstance(v, dict):
            out[k] = redact(v)
        else:
            out[k] = v
    return out


def diff(before: dict | None, after: dict | None) -> dict:
    """Keep only the keys whose values changed."""
    if not before or not after:
        return {"before": redact(before), "after": redact(after)}
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {"before": redact({k: before.get(k) for k in keys}),
            "after": redact({k: after[k] for k in keys})}


def record(action: str, object_type: str, object_id, label: str = "", before: dict | None = None,
           after: dict | None = None, username: str | None = None,
           commit: bool = True) -> AuditEntry:
    """Add an audit entry for the current administrator (or `username`); return it."""
    if username is None:
        username = current_username() or "system"
    entry = AuditEntry(username=username, action=action, object_type=object_type,
                       object_id=str(object_id or ""), object_label=str(label)[:255],
                       summary=summary_text(before, after))
    db.session.add(entry)
    if commit:
        db.session.commit()
    return entry


def summary_text(before: dict | None, after: dict | None) -> str:
    """An entry's summary: the changed keys before and after, secrets masked, as JSON."""
    return json.dumps(diff(before, after), default=str, ensure_ascii=False)
