"""A busy or unreachable database answers 503 with Retry-After, and /healthz says so; a
PostgreSQL restart costs no request a 500 (this module starts a cluster of its own, so
that runs whatever store the suite is on)."""

import json
import sqlite3
import time
from contextlib import contextmanager

import psycopg
import pytest
from sqlalchemy.engine import make_url

from appliance import create_app
from appliance.auth import create_admin, new_token
from appliance.db import db
from tests import postgres_server
from tests.conftest import PASSWORD
from tests.security.live import Live


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = Live(tmp_path_factory.mktemp("dbfaults"), {"APPLIANCE_DB_BUSY_SECONDS": "1"})
    yield server
    server.stop()


def test_healthz_checks_the_database(live):
    status, _, raw = live.request("GET", "/healthz", token=False)
    assert status == 200
    assert json.loads(raw)["checks"] == {"database": "ok"}


@contextmanager
def held(live):
    """Another writer holding the database (SQLite) or the enterprise table (PostgreSQL)."""
    if not postgres_server.enabled():
        lock = sqlite3.connect(live.proc.data_dir / "appliance.db", isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        return
    url = make_url(postgres_server.database_for(live.proc.data_dir)[0])
    with psycopg.connect(host=url.host, port=url.port, user=url.username,
                         dbname=url.database) as lock:
        lock.execute("LOCK TABLE enterprise IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            lock.rollback()


def test_a_locked_database_answers_503_with_retry_after(live):
    with held(live):
        started = time.monotonic()
        status, headers, raw = live.request("POST", "/api/v1/enterprises",
                                            {"eid": "acme-1", "name": "Acme"})
        assert status == 503, raw
        assert time.monotonic() - started < 5
        assert int(headers["Retry-After"]) > 0
        assert json.loads(raw)["error"] == "database_busy"

        status, headers, raw = live.request("GET", "/healthz", token=False)
        if not postgres_server.enabled():  # (PostgreSQL's other tables are there to use)
            assert status == 503 and int(headers["Retry-After"]) > 0
            assert json.loads(raw) | {"version": ""} == {
                "status": "unavailable", "version": "", "checks": {"database": "busy"}}
    status, _, _ = live.request("POST", "/api/v1/enterprises", {"eid": "acme-1", "name": "Acme"})
    assert status == 201
    assert live.request("GET", "/healthz", token=False)[0] == 200


def test_an_unreachable_database_answers_503(tmp_path):
    app = create_app({"DATA_DIR": str(tmp_path), "SECRET_KEY": "x", "TESTING": True,
                      "DATABASE_URL": f"sqlite:///{tmp_path}/gone/x.db"})  # no such directory
    client = app.test_client()
    resp = client.get("/healthz")
    assert resp.status_code == 503
    assert resp.get_json()["checks"] == {"database": "unavailable"}
    for url in ("/login", "/api/v1/enterprises"):
        resp = client.get(url, headers={"Authorization": "Bearer x"})
        assert resp.status_code == 503, url
        assert "cannot be reached" in resp.get_data(as_text=True)
        assert int(resp.headers["Retry-After"]) > 0
    app.extensions["appliance"].jobs.shutdown()


@pytest.mark.skipif(not postgres_server.enabled(), reason="PostgreSQL's own (a cluster of "
                    "this module's, restarted under it): runs in make test-pg (CI runs both)")
def test_a_postgresql_restart_costs_no_request(own_cluster, make_app):
    app = make_app(DATABASE_URL=own_cluster.create_database(own_cluster.new_name()))
    with app.app_context():
        token = new_token(create_admin("admin", PASSWORD), "tests")
        db.session.remove()
    client = app.test_client()

    def get(url):
        return client.get(url, headers={"Authorization": f"Bearer {token}"})
    assert get("/api/v1/enterprises").status_code == 200
    own_cluster.restart()  # the pooled connections are dead: pre-ping replaces them
    assert get("/api/v1/enterprises").status_code == 200
    assert get("/healthz").status_code == 200
    own_cluster.stop_server()
    try:
        resp = get("/api/v1/enterprises")
        assert resp.status_code == 503 and int(resp.headers["Retry-After"]) > 0
        assert resp.get_json()["error"] == "database_unavailable"
        resp = client.get("/login")
        assert resp.status_code == 503 and int(resp.headers["Retry-After"]) > 0
        assert "cannot be reached" in resp.get_data(as_text=True)
        resp = get("/healthz")
        assert resp.status_code == 503
        assert resp.get_json()["checks"] == {"database": "unavailable"}
    finally:
        own_cluster.start_server()
    assert get("/api/v1/enterprises").status_code == 200
