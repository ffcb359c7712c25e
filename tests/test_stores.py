"""The suite's store (make test: SQLite; make test-pg: PostgreSQL; CI runs both): processes
starting together migrate an empty database once, `appliance backup`, the pg_dump hint
before migrating an older database, ANALYZE after a large import. On PostgreSQL the module
starts a cluster of its own."""

import logging
import sqlite3
import subprocess
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from appliance import backup, migrate
from appliance.cli import cli
from appliance.db import ANALYZE_ROWS, db
from appliance.directory import replace_source
from appliance.models import Contact, Enterprise
from tests.conftest import build
from tests.postgres_server import Cluster, planner_rows, store
from tests.servers import ApplianceProcess

STORES = (store(),)
ON_POSTGRESQL = pytest.mark.skipif(
    store() != "postgresql", reason="PostgreSQL's own: runs in make test-pg (CI runs both)")


@pytest.fixture(scope="module")
def cluster():
    if store() != "postgresql":
        yield None
        return
    c = Cluster().start()
    yield c
    c.stop()


def _url(store: str, cluster: Cluster, data_dir) -> str:
    """An empty database of `store`: the SQLite file in data_dir, or a new PostgreSQL one."""
    if store == "sqlite":
        return f"sqlite:///{data_dir}/appliance.db"
    return cluster.create_database(cluster.new_name())


@pytest.fixture(params=STORES)
def store_app(request, cluster, tmp_path):
    """A migrated app on each store."""
    app = build(tmp_path, DATABASE_URL=_url(request.param, cluster, tmp_path))
    yield app
    app.extensions["appliance"].jobs.shutdown()
    with app.app_context():
        db.engine.dispose()


@pytest.mark.parametrize("store", STORES)
def test_four_processes_started_at_once_on_an_empty_database_migrate_it_once(
        store, cluster, tmp_path):
    url = _url(store, cluster, tmp_path / "data")
    # On SQLite they share the data directory (the file is in it), and make its secret key
    # together; on PostgreSQL each has its own, as processes on different machines would.
    env = {"APPLIANCE_DATABASE_URL": url}
    if store == "sqlite":
        env["APPLIANCE_SECRET_KEY"] = ""
    procs = [ApplianceProcess(tmp_path / ("data" if store == "sqlite" else f"data{i}"),
                              env=env) for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        starting = [pool.submit(p.start) for p in procs]
    try:
        failed = [str(f.exception()) for f in starting if f.exception() is not None]
        assert failed == []
        logs = ["".join(p.output) for p in procs]
        assert not [log for log in logs if "Traceback" in log or "Error:" in log], logs
        assert sum("Database upgraded:" in log for log in logs) == 1, logs
        for p in procs:
            with urllib.request.urlopen(p.url + "healthz", timeout=10) as resp:
                assert resp.status == 200
    finally:
        for p in procs:
            p.stop()
    if store == "sqlite":
        assert sorted(p.name for p in (tmp_path / "data").iterdir() if "secret" in p.name) \
            == ["secret_key"]
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    finally:
        engine.dispose()
    app = build(tmp_path / "check", DATABASE_URL=url)
    assert not any(s["pending"] for s in migrate.status(app))
    app.extensions["appliance"].jobs.shutdown()
    with app.app_context():
        db.engine.dispose()


@ON_POSTGRESQL
def test_migrating_an_older_postgresql_database_says_how_to_back_it_up(
        cluster, tmp_path, caplog):
    name = cluster.new_name()
    # Trust authentication ignores the password: it is here to be left out of the message.
    url = cluster.create_database(name).replace("appliance@", "appliance:pw-Secret-4u@")
    from appliance import create_app

    app = create_app({"DATA_DIR": str(tmp_path), "SECRET_KEY": "x", "DATABASE_URL": url})
    location = dict(migrate.owners(app))[migrate.CORE]
    with app.app_context(), db.engine.begin() as conn:
        command.upgrade(migrate._config(app, migrate.CORE, location, conn), "0001")
    with caplog.at_level(logging.WARNING, logger="appliance.migrate"):
        assert migrate.CORE in migrate.upgrade(app)
    said = "\n".join(r.getMessage() for r in caplog.records)
    assert "pg_dump --format=custom" in said and f"dbname={name}" in said
    assert f"port={cluster.port}" in said and "pw-Secret-4u" not in said
    app.extensions["appliance"].jobs.shutdown()
    with app.app_context():
        db.engine.dispose()


def _enterprise(app, eid="keep") -> int:
    with app.app_context():
        ent = Enterprise(eid=eid, name=eid.title())
        db.session.add(ent)
        db.session.commit()
        return ent.id


def test_appliance_backup_writes_a_copy_that_restores(store_app, cluster, tmp_path):
    _enterprise(store_app)
    runner = store_app.test_cli_runner()
    done = runner.invoke(cli, ["backup"])
    assert done.exit_code == 0, done.output
    path = done.output.strip().removeprefix("Backup written: ")
    assert path.startswith(str(tmp_path / "backups" / "appliance-"))
    with store_app.app_context():
        store = db.engine.url.get_backend_name()
    if store == "sqlite":
        assert path.endswith(".db")
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT eid FROM enterprise").fetchall() == [("keep",)]
        conn.close()
    else:
        assert path.endswith(".dump")
        restored = cluster.new_name("restored")
        cluster.create_database(restored)
        subprocess.run([str(cluster.bin / "pg_restore"), "--no-owner", "-h", "127.0.0.1",
                        "-p", str(cluster.port), "-U", "appliance", "-d", restored, path],
                       check=True, capture_output=True)
        assert cluster.sql("SELECT eid FROM enterprise", dbname=restored) == [("keep",)]
    # --to a directory writes into it; --to a file that exists is refused.
    (tmp_path / "elsewhere").mkdir()
    done = runner.invoke(cli, ["backup", "--to", str(tmp_path / "elsewhere")])
    assert done.exit_code == 0, done.output
    assert len(list((tmp_path / "elsewhere").iterdir())) == 1
    done = runner.invoke(cli, ["backup", "--to", path])
    assert done.exit_code == 1 and "exists already" in done.output


@ON_POSTGRESQL
def test_backup_without_pg_dump_says_what_to_install(cluster, tmp_path, monkeypatch):
    app = build(tmp_path, DATABASE_URL=_url("postgresql", cluster, tmp_path))
    monkeypatch.setattr(backup, "pg_dump", lambda: None)
    done = app.test_cli_runner().invoke(cli, ["backup"])
    assert done.exit_code == 1
    assert "pg_dump is missing" in done.output and "postgresql-client" in done.output
    app.extensions["appliance"].jobs.shutdown()
    with app.app_context():
        db.engine.dispose()


def test_a_large_import_is_analyzed_and_counted(store_app):
    ent = _enterprise(store_app, "big")
    rows = [{"external_id": f"u{i}", "first_name": f"F{i}", "last_name": f"L{i}",
             "email": f"u{i}@big.test"} for i in range(ANALYZE_ROWS + 1)]
    with store_app.app_context():
        small = replace_source(Contact, db.session.get(Enterprise, ent), "sync:1", "Small",
                               rows[:10])
        assert small.added == 10  # psycopg said -1 for INSERT ... SELECT
        assert planner_rows("contact") != 10  # not analyzed after so few
        large = replace_source(Contact, db.session.get(Enterprise, ent), "sync:2", "Large",
                               rows)
        assert large.added == ANALYZE_ROWS + 1
        assert planner_rows("contact") == ANALYZE_ROWS + 11
