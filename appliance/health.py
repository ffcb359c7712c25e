"""/healthz and what a request answers when the database is busy or gone.

A load balancer reads /healthz: 200 while the appliance can serve, 503 with Retry-After
when it cannot, with each check's state named.
"""

import logging
import sqlite3

from flask import current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from appliance.db import db
from appliance.host import host
from appliance.version import __version__

log = logging.getLogger(__name__)

RETRY_AFTER = 5  # seconds, in the Retry-After of every 503
PROBE_SECONDS = 1.0  # how long the probe waits for the database


def describe(exc: Exception) -> tuple[bool, str]:
    """(busy, message for the caller) for a database error; logs it without parameters."""
    first = (str(getattr(exc, "orig", None) or exc).splitlines() or [""])[0][:200]
    log.warning("database unavailable: %s: %s", exc.__class__.__name__, first)
    busy = "locked" in first or "busy" in first or "lock timeout" in first  # PostgreSQL's
    if busy:
        return True, "The database is busy with other work. Try again in a few seconds."
    return False, "The database cannot be reached. Try again in a few seconds."


def database() -> str:
    """ok, busy (a write could not start in time) or unavailable."""
    url = db.engine.url
    try:
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            # A write lock, taken and given back at once: reads succeed under a held lock.
            conn = sqlite3.connect(url.database, timeout=PROBE_SECONDS, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("SELECT count(*) FROM alembic_version").fetchone()
                conn.execute("ROLLBACK")
            finally:
                conn.close()
        else:
            with db.engine.connect() as conn:
                if url.get_backend_name() == "postgresql":
                    conn.execute(text(f"SET LOCAL statement_timeout = "
                                      f"{int(PROBE_SECONDS * 1000)}"))
                conn.execute(text("SELECT 1"))
    except (sqlite3.Error, SQLAlchemyError) as exc:
        busy, _ = describe(exc)
        return "busy" if busy else "unavailable"
    return "ok"


def view():
    """The health answer: 200 when the database answers (status "degraded" while the XMPP
    service this process runs is restarting), else 503 with Retry-After."""
    checks = {"database": database()}
    runner = host().xmpp
    if runner is not None:  # this process runs the XMPP service
        st = runner.status
        checks["xmpp"] = "ok" if st.state == "running" else (
            f"{st.state}: {st.last_exit}" + (f"; next try in {st.next_try_in} s"
                                             if st.next_try_in else ""))
    ok = checks["database"] == "ok"
    degraded = any(v != "ok" for v in checks.values())
    resp = jsonify(status="degraded" if ok and degraded else "ok" if ok else "unavailable",
                   version=__version__, checks=checks)
    if ok:
        return resp
    current_app.logger.warning("health: %s", checks)
    return resp, 503, {"Retry-After": str(RETRY_AFTER)}
