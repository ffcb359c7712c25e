"""Schema migrations: Alembic, one branch (script directory and version table) per owner.

The host owns `appliance/migrations/versions` with the table `alembic_version`; every
plugin that returns a directory from `appliance_migrations` owns it with the table
`alembic_version_<plugin>`, and by convention its tables are named `<plugin>_...`.
A blocked plugin is not upgraded and its tables and version row stay as they are.
"""

import sqlite3
from datetime import datetime
from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask

from appliance.db import db

CORE = "core"


def owners(app: Flask) -> list[tuple[str, str]]:
    """(owner, versions directory) for the host and every enabled plugin, host first."""
    out = [(CORE, str(files("appliance") / "migrations" / "versions"))]
    host = app.extensions["appliance"]
    for name, path in host.plugins.call_each("appliance_migrations"):
        out.append((name, str(path)))
    return out


def version_table(owner: str) -> str:
    return "alembic_version" if owner == CORE else f"alembic_version_{owner}"


def _config(app: Flask, owner: str, location: str, connection=None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(files("appliance") / "migrations"))
    cfg.set_main_option("version_locations", location)
    cfg.set_main_option("path_separator", "os")
    cfg.attributes.update(
        connection=connection, owner=owner, version_table=version_table(owner),
        plugin_names=[n for n, _ in owners(app) if n != CORE],
    )
    return cfg


def status(app: Flask) -> list[dict]:
    """Current and head revision of every owner."""
    out = []
    with app.app_context(), db.engine.connect() as conn:
        for owner, location in owners(app):
            script = ScriptDirectory.from_config(_config(app, owner, location))
            ctx = MigrationContext.configure(conn, opts={"version_table": version_table(owner)})
            current = ctx.get_current_heads()
            heads = script.get_heads()
            out.append({"owner": owner, "current": list(current), "heads": list(heads),
                        "pending": set(current) != set(heads)})
    return out


def backup(app: Flask) -> Path | None:
    """Copy the SQLite file aside before migrating it; return the copy's path."""
    url = db.engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    src = Path(url.database)
    if not src.exists() or src.stat().st_size == 0:
        return None
    dest = src.with_name(f"{src.name}.bak-{datetime.now():%Y%m%d-%H%M%S}")
    with sqlite3.connect(src) as a, sqlite3.connect(dest) as b:
        a.backup(b)
    return dest


def upgrade(app: Flask) -> list[str]:
    """Apply pending migrations of every owner; return the owners that moved."""
    moved = [s["owner"] for s in status(app) if s["pending"]]
    if not moved:
        return []
    with app.app_context():
        if any(s["current"] for s in status(app)):
            backup(app)
        for owner, location in owners(app):
            if owner not in moved:
                continue
            with db.engine.begin() as conn:
                command.upgrade(_config(app, owner, location, conn), "head")
    return moved


def revision(app: Flask, owner: str, message: str, autogenerate: bool = True) -> None:
    """Write a new migration for `owner` (for developers)."""
    location = dict(owners(app))[owner]
    Path(location).mkdir(parents=True, exist_ok=True)
    with app.app_context(), db.engine.begin() as conn:
        cfg = _config(app, owner, location, conn)
        heads = ScriptDirectory.from_config(cfg).get_heads()
        command.revision(cfg, message=message, autogenerate=autogenerate,
                         head=heads[0] if heads else "base", version_path=location,
                         branch_label=None if heads or owner == CORE else owner)
