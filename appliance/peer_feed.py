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
above what the store has handed out (a restored backup), is unknown: the peer fetches all.
"""

from datetime import timedelta

from sqlalchemy import delete, func, select, text, update

from appliance.db import db, utcnow
from appliance.models import ContactFeed, ContactTombstone

RETENTION = timedelta(days=30)


def _sqlite() -> bool:
    return db.engine.dialect.name == "sqlite"


def cursor(retention: timedelta = RETENTION) -> int:
    """A new cursor (prunes old tombstones on the way: a short write transaction)."""
    with db.engine.begin() as conn:
        if conn.dialect.name == "sqlite":  # its first statement: it waits for the writers
            conn.execute(update(ContactFeed).where(ContactFeed.id == 1)
                         .values(rev=ContactFeed.rev + 1))
        _prune(conn, retention)
    db.session.commit()  # end the request's read snapshot (SQLite): read from now on
    return head(low=True)


def head(low: bool = False) -> int:
    """The highest cursor the store could have handed out by now (`low`: the one to hand
    out now, after cursor() moved the counter on)."""
    if _sqlite():
        return db.session.scalar(select(ContactFeed.rev).where(ContactFeed.id == 1)) + 1
    which = "pg_snapshot_xmin" if low else "pg_snapshot_xmax"
    return db.session.scalar(text(f"SELECT {which}(pg_current_snapshot())::text::bigint"))


def _prune(conn, retention: timedelta) -> None:
    """Drop tombstones older than `retention`, remembering the newest revision dropped."""
    old = ContactTombstone.at < utcnow() - retention
    top = conn.scalar(select(func.max(ContactTombstone.rev)).where(old))
    if top is None:
        return
    conn.execute(delete(ContactTombstone).where(old, ContactTombstone.rev <= top))
    conn.execute(update(ContactFeed).where(ContactFeed.id == 1, ContactFeed.pruned_below <= top)
                 .values(pruned_below=top + 1))


def unknown(since: int, until: int) -> str | None:
    """Why a feed from `since` to `until` cannot be answered (None when it can)."""
    pruned = db.session.scalar(select(ContactFeed.pruned_below).where(ContactFeed.id == 1))
    if since < (pruned or 0):
        return (f"changes that old are no longer kept (removals are kept "
                f"{RETENTION.days} days)")
    if since > until or until > head():
        return "this appliance never handed out that cursor (was its database restored?)"
    return None
