"""Migrations: the schema they build matches the models, and they never drop data."""

import ast
import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from appliance import migrate
from appliance.db import db
from appliance.search import schema_object
from tests import postgres_server

ROOT = Path(__file__).resolve().parents[1]


def test_migrated_schema_matches_the_models(app):
    """Host and plugin branches together build exactly the tables of the models."""
    def include(name, type_, _parent):
        # The search indexes are no model's: on SQLite an FTS5 table with the tables it keeps
        # (contact_search, contact_search_data, ...), on PostgreSQL a GIN index
        # (ix_contact_search). tests/test_search.py checks them against the models.
        if type_ in ("table", "index") and schema_object(name):
            return False
        return type_ != "table" or not name.startswith("alembic_version")
    with app.app_context(), db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={
            "include_name": include,
            "compare_type": True})
        diffs = compare_metadata(ctx, db.metadata)
        assert diffs == [], diffs
        assert {"enterprise", "contact", "account", "job_run", "audit_entry",
                "peering_peer"} <= set(db.metadata.tables)


def test_upgrade_twice_is_a_no_op_and_keeps_data(app, api):
    api("POST", "/api/v1/enterprises", json={"name": "Keep", "eid": "keep"})
    assert migrate.upgrade(app) == []
    assert all(not s["pending"] for s in migrate.status(app))
    assert api("GET", "/api/v1/enterprises").get_json()["items"][0]["eid"] == "keep"


@pytest.mark.skipif(postgres_server.enabled(), reason="copies the SQLite file aside before "
                    "migrating; PostgreSQL's backup is pg_dump (tests/test_stores.py)")
def test_backup_copies_the_sqlite_file(app, api):
    api("POST", "/api/v1/enterprises", json={"name": "Keep", "eid": "keep"})
    with app.app_context():
        copy = migrate.backup(app)
    with sqlite3.connect(copy) as conn:
        assert conn.execute("select eid from enterprise").fetchall() == [("keep",)]


@pytest.mark.skipif(postgres_server.enabled(), reason="SQLite's own pragmas (journal mode, "
                    "foreign keys), which PostgreSQL does not have")
def test_sqlite_runs_in_wal_mode_with_foreign_keys(app):
    with app.app_context(), db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def _upgrade_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade")
    return [n.func.attr for n in ast.walk(fn)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]


def test_no_upgrade_drops_a_table_or_column():
    """Unless the migration says where an earlier one moved the data (DATA_MOVED_TO)."""
    files = [p for p in ROOT.glob("**/migrations/**/*.py")
             if ".venv" not in p.parts and "node_modules" not in p.parts
             and p.name not in ("env.py", "__init__.py")]
    assert len(files) > 8, "no migration found"
    for path in files:
        drops = [c for c in _upgrade_calls(path) if c in ("drop_table", "drop_column")]
        if drops and "DATA_MOVED_TO = " in path.read_text():
            continue
        assert drops == [], f"{path} drops data in upgrade(): {drops}"


def test_upgrading_an_older_database_keeps_its_data_and_backs_it_up(tmp_path):
    from alembic import command

    from appliance import create_app

    app = create_app({"DATA_DIR": str(tmp_path), "SECRET_KEY": "x"})
    location = dict(migrate.owners(app))[migrate.CORE]
    with app.app_context(), db.engine.begin() as conn:
        command.upgrade(migrate._config(app, migrate.CORE, location, conn), "0001")
        conn.execute(text("INSERT INTO enterprise (eid, name, created_at) "
                          "VALUES ('old-1', 'Old', '2026-01-01')"))
    moved = migrate.upgrade(app)
    assert migrate.CORE in moved
    assert list(tmp_path.glob("appliance.db.bak-*")), "no backup before migrating"
    with app.app_context(), db.engine.connect() as conn:
        assert conn.execute(text("SELECT eid FROM enterprise")).scalars().all() == ["old-1"]
        indexes = {r[1] for r in conn.execute(text("PRAGMA index_list(contact)"))}
        assert "ix_contact_ent_email" in indexes
    app.extensions["appliance"].jobs.shutdown()


def test_the_xmpp_settings_move_from_the_federation_plugin_to_the_host(tmp_path):
    from alembic import command

    from appliance import create_app

    app = create_app({"DATA_DIR": str(tmp_path), "SECRET_KEY": "x"})
    owners = dict(migrate.owners(app))
    with app.app_context(), db.engine.begin() as conn:
        command.upgrade(migrate._config(app, migrate.CORE, owners[migrate.CORE], conn), "0007")
        command.upgrade(migrate._config(app, "federation", owners["federation"], conn),
                        "federation_0001")
        conn.execute(text(
            "INSERT INTO federation_settings (id, enabled, domain, c2s_port, s2s_port, "
            "interfaces, cert_file, key_file, ca_file, probe_password_sealed, apply_message) "
            "VALUES (1, 1, 'im.old.example', 5333, 5399, '127.0.0.1', 'c.pem', 'k.pem', "
            "'ca.pem', 'sealed', 'done')"))
    migrate.upgrade(app)
    with app.app_context(), db.engine.connect() as conn:
        moved = conn.execute(text("SELECT domain, c2s_port, s2s_port, interfaces, cert_file, "
                                  "key_file, ca_file FROM xmpp_settings")).all()
        assert moved == [("im.old.example", 5333, 5399, "127.0.0.1", "c.pem", "k.pem",
                          "ca.pem")]
        kept = conn.execute(text("SELECT enabled, probe_password_sealed "
                                 "FROM federation_settings")).all()
        assert kept == [(1, "sealed")]
    app.extensions["appliance"].jobs.shutdown()
