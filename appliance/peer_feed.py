"""What changed in the contacts peers are served, since a cursor (the serving side).

The database's triggers (migration 0013) give every served contact a revision when what a
peer sees of it changes, and leave a tombstone when it is deleted. A cursor C promises:
every change the peer has not been sent has a revision >= C. A feed hands out the rows and
tombstones with C <= rev < C', and C' as the next cursor, where C' is read so that no
change still uncommitted can ever get a revision below it:

- SQLite: writers take turns. They stamp rows with the counter contact_feed.rev + 1; a
  reader first moves the counter on (a write of its own, so after every earlier writer
  committed), then C' is the new counter + 1, which later writers use.
- PostgreSQL: rows carry the id of the transaction that wrote them, and C' is the xmin of
  the reader's snapshot: every transaction below it has ended, and one still running (or
  starting later) has an id >= C'. It is sent next time, however late it commits.

Tombstones older than RETENTION are pruned; a cursor below the newest pruned revision, or
above the last one handed out (a restored backup), is unknown: the peer fetches all. On
PostgreSQL a database restored into another cluster, whose transaction ids are lower, sets
every revision back to 0 and makes every cursor unknown.
"""

from datetime import timedelta

from sqlalchemy import delete, func, select, text, update

from appliance.db import db, utcnow
from appliance.models import Contact, ContactFeed, ContactTombstone

RETENTION = timedelta(days=30)


_FEED = ContactFeed.__table__
PRUNED = f"changes that old are no longer kept (removals are kept {RETENTION.days} days)"
NEVER = ("this appliance never handed out that cursor (was its database restored from a "
         "backup?)")


def cursor(since: int | None = None) -> tuple[int, str | None]:
    """Hand out a new cursor, in a short write transaction that also prunes old
    tombstones; with `since`, also say why the changes since it cannot be told (None: they
    can). A cursor above the last one handed out is unknown: a restored backup."""
    with db.engine.begin() as conn:
        if conn.dialect.name == "sqlite":  # its first statement: it waits for the writers
            conn.execute(update(_FEED).values(rev=_FEED.c.rev + 1))
            handed = conn.scalar(select(_FEED.c.rev))  # the last cursor was the old rev + 1
            new = handed + 1
        else:
            handed = conn.scalar(select(_FEED.c.rev).with_for_update())
            new = conn.scalar(text("SELECT pg_snapshot_xmin(pg_current_snapshot())"
                                   "::text::bigint"))
            if new < handed:  # transaction ids went back: restored into another cluster
                _restart(conn, new)
            conn.execute(update(_FEED).values(rev=new))
        pruned = _prune(conn)
    db.session.commit()  # end the request's read snapshot (SQLite): read from now on
    if since is None:
        return new, None
    return new, PRUNED if since < pruned else NEVER if since > handed else None


def check(since: int, until: int) -> str | None:
    """Why the changes from `since` to `until` (a cursor handed out) cannot be told."""
    rev, pruned = db.session.execute(select(_FEED.c.rev, _FEED.c.pruned_below)).one()
    if since < pruned:
        return PRUNED
    return NEVER if since > until or until > rev + (db.engine.dialect.name == "sqlite") \
        else None


def _restart(conn, new: int) -> None:
    """Revisions of another cluster mean nothing here: every peer reads everything again."""
    conn.execute(update(Contact).where(Contact.rev >= new).values(rev=0))
    conn.execute(delete(ContactTombstone))
    conn.execute(update(_FEED).values(pruned_below=new))


def _prune(conn) -> int:
    """Drop tombstones older than RETENTION, remembering the newest revision dropped;
    return the revision below which changes are no longer known."""
    old = ContactTombstone.at < utcnow() - RETENTION
    top = conn.scalar(select(func.max(ContactTombstone.rev)).where(old))
    if top is not None:
        conn.execute(delete(ContactTombstone).where(old, ContactTombstone.rev <= top))
        conn.execute(update(_FEED).where(_FEED.c.pruned_below <= top)
                     .values(pruned_below=top + 1))
    return conn.scalar(select(_FEED.c.pruned_below))
