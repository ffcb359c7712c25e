"""Backups of the database: SQLite's online backup API, `pg_dump` for PostgreSQL.

`appliance backup` writes one into <data dir>/backups (or where --to says); migrating an
existing SQLite file copies it aside first (migrate.backup), and migrating an existing
PostgreSQL database says how to take one (`dump_hint`): a dump of a big database is the
operator's call, not something to do at every start.
"""

import glob
import os
import shlex
import shutil
import sqlite3
import subprocess
from datetime import datetime
from pathlib import Path

from flask import Flask
from sqlalchemy.engine import URL

from appliance.db import db

# pg_dump's connection settings, from the URL's query (host=/run/postgresql and the like).
_LIBPQ = ("host", "port", "sslmode", "sslrootcert", "sslcert", "sslkey", "options",
          "application_name", "connect_timeout", "target_session_attrs", "service")


class BackupError(Exception):
    """A backup that could not be made; the message says why (never a password)."""


def sqlite_copy(src: Path, dest: Path) -> Path:
    """Copy the SQLite database `src` to `dest` with the online backup API: a consistent
    copy while other connections read and write it."""
    a, b = sqlite3.connect(src), sqlite3.connect(dest)
    try:
        a.backup(b)
    finally:
        a.close()
        b.close()
    return dest


def _conninfo(url: URL) -> str:
    """A libpq connection string for `url`, without its password."""
    parts = {"host": url.host, "port": url.port, "user": url.username,
             "dbname": url.database}
    for key in _LIBPQ:
        value = url.query.get(key)
        if value is not None:
            parts[key] = value if isinstance(value, str) else value[-1]

    def quoted(value) -> str:
        text = str(value)
        if text and not any(c in text for c in " '\\"):
            return text
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return " ".join(f"{k}={quoted(v)}" for k, v in parts.items() if v not in (None, ""))


def dump_hint(url: URL) -> str:
    """How to take a backup of the PostgreSQL database at `url` (no password in it)."""
    name = f"{url.database or 'appliance'}-{datetime.now():%Y%m%d-%H%M%S}.dump"
    return (f"pg_dump --format=custom --file={shlex.quote(name)} "
            f"{shlex.quote(_conninfo(url))} (or `appliance backup`)")


def pg_dump() -> str | None:
    """The pg_dump command: PATH's, else the newest of Debian's /usr/lib/postgresql."""
    found = shutil.which("pg_dump")
    if found:
        return found
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"),
                      key=lambda p: [int(x) for x in Path(p).parts[-3].split(".")
                                     if x.isdigit()])
    return versions[-1] if versions else None


def take(app: Flask, to: str | Path | None = None) -> Path:
    """Back the database up; return the file written. `to` is a file, or a directory to
    write into; by default <data dir>/backups, as appliance-<time>.db (SQLite) or .dump
    (PostgreSQL, pg_dump's custom format: `pg_restore` reads it)."""
    with app.app_context():
        url = db.engine.url
    backend = url.get_backend_name()
    suffix = {"sqlite": ".db", "postgresql": ".dump"}.get(backend)
    if suffix is None:
        raise BackupError(f"appliance backup knows SQLite and PostgreSQL, not {backend}")
    dest = Path(to).expanduser() if to else Path(app.config["DATA_DIR"]) / "backups"
    if dest.is_dir() or not to:
        dest.mkdir(mode=0o700, parents=True, exist_ok=True)
        dest = dest / f"appliance-{datetime.now():%Y%m%d-%H%M%S}{suffix}"
    if dest.exists():
        raise BackupError(f"{dest} exists already: name another file")
    if not dest.parent.is_dir():
        raise BackupError(f"{dest.parent} is not a directory")
    if backend == "sqlite":
        if not url.database or url.database == ":memory:" or not Path(url.database).exists():
            raise BackupError("there is no SQLite database file to back up")
        return sqlite_copy(Path(url.database), dest)
    command = pg_dump()
    if command is None:
        raise BackupError("pg_dump is missing: install PostgreSQL's client programs "
                          "(Debian: apt-get install postgresql-client), of the server's "
                          "version or newer")
    env = dict(os.environ)
    if url.password:  # libpq reads it here: not on a command line others can see
        env["PGPASSWORD"] = str(url.password)
    done = subprocess.run([command, "--format=custom", f"--file={dest}", _conninfo(url)],
                          env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        dest.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed: {(done.stderr or done.stdout).strip()[:500]}")
    return dest
