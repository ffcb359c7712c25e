"""API tokens: issued, listed, revoked, and the owner of a bearer token."""

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select

from appliance import audit
from appliance.db import db, utcnow
from appliance.listing import Column, Page, paginate
from appliance.models import ApiToken, User
from appliance.validation import Field, Schema, int_range, length

TOKEN = Schema(
    "ApiToken",
    Field("name", "Name", (length(1, 64),), help="What the token is for."),
    Field("expires_days", "Expires in (days)", (int_range(1, 3650),), required=False,
          type="integer", help="Empty: the token never expires."),
)
TOKEN_FIELDS = {
    "id": {"type": "integer"}, "name": {"type": "string"}, "username": {"type": "string"},
    "hint": {"type": "string", "description": "The token's first characters"},
    "created_at": {"type": "string", "format": "date-time"},
    "last_used_at": {"type": ["string", "null"], "format": "date-time"},
    "expires_at": {"type": ["string", "null"], "format": "date-time"},
    "expired": {"type": "boolean"},
}
COLUMNS = [
    Column("created", "Created", ApiToken.created_at),
    Column("name", "Name", ApiToken.label),
    Column("last_used", "Last used", ApiToken.last_used_at),
    Column("expires", "Expires", ApiToken.expires_at),
]
# Last-seen times of sessions and tokens are written at most this often, not on every request.
TOUCH = timedelta(minutes=1)


def issue_token(user: User, name: str = "", expires_days: int | None = None
                ) -> tuple[ApiToken, str]:
    """Create an API token for `user`; only its digest is stored, so show it once."""
    token = "apl_" + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, digest=digest(token), label=name[:64], hint=token[:8],
                   expires_at=utcnow() + timedelta(days=expires_days) if expires_days else None)
    db.session.add(row)
    db.session.commit()
    return row, token


def new_token(user: User, label: str = "", expires_days: int | None = None) -> str:
    """Create an API token for `user` and return it (the only time it is seen)."""
    return issue_token(user, label, expires_days)[1]


def tokens() -> list[ApiToken]:
    """Every API token, newest first (all administrators are equal)."""
    return list(db.session.scalars(select(ApiToken).order_by(ApiToken.id.desc())))


def tokens_page(args, per_page: int, adjustable: bool = False) -> Page:
    """One page of the API tokens, newest first unless `args` sort otherwise (?q= searches
    their names)."""
    args = {"sort": "created", "dir": "desc", **dict(args.items())}
    return paginate(select(ApiToken), COLUMNS, args, "created", search=(ApiToken.label,),
                    per_page=per_page, tiebreak=ApiToken.id, adjustable=adjustable)


def token_dict(t: ApiToken) -> dict:
    """What may be shown of a token: never the token itself, only its first characters."""
    def iso(dt: datetime | None) -> str | None:
        return dt.isoformat() + "Z" if dt else None
    return {"id": t.id, "name": t.label, "username": t.user.username,
            "hint": t.hint + "…" if t.hint else "", "created_at": iso(t.created_at),
            "last_used_at": iso(t.last_used_at), "expires_at": iso(t.expires_at),
            "expired": _expired(t, utcnow())}


def revoke_token(t: ApiToken, username: str | None = None) -> None:
    """Delete a token: the next call that sends it answers 401."""
    audit.record("delete", "api token", t.id, t.label, before=_token_audit(t), username=username,
                 commit=False)
    db.session.delete(t)
    db.session.commit()


def audit_token(t: ApiToken, username: str | None = None) -> None:
    audit.record("create", "api token", t.id, t.label, after=_token_audit(t), username=username)


def _token_audit(t: ApiToken) -> dict:
    return {"name": t.label, "owner": t.user.username, "expires_at": t.expires_at}


def _expired(t: ApiToken, now: datetime) -> bool:
    return t.expires_at is not None and t.expires_at <= now


def digest(token: str) -> str:
    """The SHA-256 hex digest stored in place of a token or session id."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_user(header: str | None) -> User | None:
    """The owner of the bearer token in `header`; None if unknown, revoked or expired."""
    if not header or not header.startswith("Bearer "):
        return None
    tok = db.session.scalar(select(ApiToken).where(ApiToken.digest == digest(header[7:].strip())))
    now = utcnow()
    if tok is None or _expired(tok, now):
        return None
    if tok.last_used_at is None or now - tok.last_used_at > TOUCH:
        tok.last_used_at = now  # at most one write a minute per token, not one per call
        db.session.commit()
    return tok.user
