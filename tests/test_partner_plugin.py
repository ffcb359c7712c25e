"""The example partner plugin, installed for real with pip and found through its entry point."""

import importlib
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from openapi_spec_validator import validate
from sqlalchemy import select, text

from appliance import migrate
from appliance.db import db
from appliance.models import AuditEntry, JobSchedule
from tests import postgres_server
from tests.conftest import Browser, command

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "partner-plugin"
APPLIANCE = Path(sys.executable).parent / "appliance"


@pytest.fixture(scope="session")
def hello_site(tmp_path_factory) -> Path:
    """`pip install` the example into a directory of its own, once per session."""
    base = tmp_path_factory.mktemp("partner")
    # Build from a copy: building in place leaves build/ and *.egg-info in the repository.
    src = shutil.copytree(EXAMPLE, base / "src",
                          ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = base / "site"
    # The build uses the venv's setuptools (a test dependency): an isolated build env would
    # install it afresh, a third of this file's time.
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet",
                           "--disable-pip-version-check", "--no-build-isolation",
                           "--target", str(site), str(src)],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode:
        pytest.fail(f"pip install of the example failed:\n{proc.stdout}\n{proc.stderr}")
    return site


@pytest.fixture(scope="module", autouse=True)
def hello_on_path(hello_site):
    """Make the installed plugin visible to this module's apps only, then forget it."""
    sys.path.insert(0, str(hello_site))
    importlib.invalidate_caches()
    yield hello_site
    sys.path.remove(str(hello_site))
    for name in [m for m in sys.modules if m.split(".")[0] == "appliance_hello"]:
        del sys.modules[name]
    table = db.metadata.tables.get("hello_greeting")
    if table is not None:  # so other tests' model/migration comparisons do not see it
        db.metadata.remove(table)


def cli(site: Path, data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run the installed `appliance` console script with the plugin on PYTHONPATH."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    clean.update(PYTHONPATH=str(site), APPLIANCE_DATA_DIR=str(data_dir),
                 **postgres_server.env_for(data_dir), **env)
    return subprocess.run([str(APPLIANCE), *args], env=clean, capture_output=True, text=True,
                          timeout=120)


def login(app) -> Browser:
    b = Browser(app.test_client())
    assert b.login().status_code == 302
    return b


def bearer(app, token):
    client = app.test_client()

    def call(method, url, **kw):
        return client.open(url, method=method, headers={"Authorization": f"Bearer {token}"},
                           **kw)
    return call


def hello_info(listing: list[dict]) -> dict:
    return next(p for p in listing if p["name"] == "hello")


# --- listing --------------------------------------------------------------------------------

def test_listed_by_the_cli_as_an_entry_point(hello_on_path, tmp_path):
    proc = cli(hello_on_path, tmp_path, "plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    info = hello_info(json.loads(proc.stdout))
    assert info["source"] == "entry point"
    assert info["enabled"] is True and info["blocked_by"] is None
    assert info["version"] == "1.0.0"
    assert info["title"] == "Hello"
    assert {"appliance_metadata", "appliance_blueprints", "appliance_api_blueprints",
            "appliance_nav_tabs", "appliance_job_kinds", "appliance_cli_commands",
            "appliance_migrations"} <= set(info["hooks"])
    assert [(s["key"], s["value"], s["source"]) for s in info["settings"]] == [
        ("HELLO_HEADING", "Greetings", "default")]

    got = command(tmp_path, "plugins", "--json", APPLIANCE_HELLO_HEADING="Hi there")
    assert got.exit_code == 0, got.output
    assert [(s["value"], s["source"]) for s in hello_info(json.loads(got.stdout))["settings"]
            ] == [("Hi there", "environment")]

    got = command(tmp_path, "plugins", "--json", APPLIANCE_DISABLE_PLUGINS="hello")
    assert got.exit_code == 0, got.output
    info = hello_info(json.loads(got.stdout))
    assert info["enabled"] is False
    assert info["blocked_by"] == "APPLIANCE_DISABLE_PLUGINS"
    assert info["version"] == "1.0.0"


def test_cli_migrates_and_runs_the_job(tmp_path):
    got = command(tmp_path, "db", "upgrade")
    assert got.exit_code == 0, got.output
    assert "hello" in got.stdout
    got = command(tmp_path, "jobs", "run", "hello.count", "hello")
    assert got.exit_code == 0, got.output
    assert "succeeded" in got.stdout and '"greetings": 0' in got.stdout
    assert command(tmp_path, "hello").exit_code == 0
    blocked = command(tmp_path, "hello", APPLIANCE_DISABLE_PLUGINS="hello")
    assert blocked.exit_code != 0 and "No such command" in blocked.stderr


# --- enabled --------------------------------------------------------------------------------

def test_tab_and_page_with_form(admin):
    home = admin.get("/").get_data(as_text=True)
    assert 'href="/hello/">Greetings</a>' in home

    page = admin.get("/hello/")
    assert page.status_code == 200
    assert "No greeting yet" in page.get_data(as_text=True)
    assert "<h1>Greetings</h1>" in page.get_data(as_text=True)  # HELLO_HEADING's default

    resp = admin.post("/hello/", data={"text": "Good morning"})
    assert resp.status_code == 302
    html = admin.get("/hello/").get_data(as_text=True)
    assert "<td>Good morning</td><td>admin</td>" in html

    bad = admin.post("/hello/", data={"text": "x" * 81})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert "Greeting must be at most 80 characters" in html
    assert 'value="' + "x" * 81 + '"' in html  # what was typed comes back

    frag = admin.post("/hello/", data={"text": ""}, htmx=True)
    html = frag.get_data(as_text=True)
    assert frag.status_code == 422
    assert "Greeting is required" in html and 'id="add-greeting"' in html
    assert "<html" not in html

    no_token = admin.client.post("/hello/", data={"text": "sneaky"})
    assert no_token.status_code == 400
    assert "sneaky" not in admin.get("/hello/").get_data(as_text=True)


def test_api_validates_and_is_documented(app, api):
    assert api("GET", "/api/v1/hello/greetings").get_json() == {
        "items": [], "total": 0, "more": False, "page": 1, "pages": 1, "per_page": 100}

    resp = api("POST", "/api/v1/hello/greetings", json={"text": "  Hello, API  "})
    assert resp.status_code == 201
    created = resp.get_json()
    assert created["text"] == "Hello, API" and created["created_by"] == "admin"
    items = api("GET", "/api/v1/hello/greetings").get_json()["items"]
    assert [i["text"] for i in items] == ["Hello, API"]

    missing = api("POST", "/api/v1/hello/greetings", json={})
    assert missing.status_code == 422
    assert [(f["field"], f["rule"]) for f in missing.get_json()["fields"]] == [
        ("text", "required")]
    long = api("POST", "/api/v1/hello/greetings", json={"text": "x" * 81})
    assert long.status_code == 422
    assert [(f["field"], f["rule"]) for f in long.get_json()["fields"]] == [("text", "length")]
    assert len(api("GET", "/api/v1/hello/greetings").get_json()["items"]) == 1

    with app.app_context():
        audit = db.session.scalars(select(AuditEntry).where(
            AuditEntry.object_type == "greeting")).all()
        assert [(a.action, a.object_label) for a in audit] == [("create", "Hello, API")]

    doc = api("GET", "/api/v1/openapi.json").get_json()
    validate(doc)
    path = doc["paths"]["/api/v1/hello/greetings"]
    assert set(path) == {"get", "post"}
    assert path["post"]["tags"] == ["hello"]
    assert doc["components"]["schemas"]["HelloGreeting"]["properties"]["text"]["maxLength"] == 80


def test_job_counts_greetings(app, api):
    for t in ("one", "two", "three"):
        assert api("POST", "/api/v1/hello/greetings", json={"text": t}).status_code == 201
    jobs = app.extensions["appliance"].jobs
    with app.app_context():
        run, created = jobs.submit("hello.count", "hello", triggered_by="test")
        assert created
        run = jobs.wait(run.id)
        assert run.state == "succeeded"
        assert json.loads(run.counts) == {"greetings": 3}
        assert run.progress == 100 and run.message == "3 greeting(s)"


def test_migration_branch_matches_the_model(app):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    hello = next(s for s in migrate.status(app) if s["owner"] == "hello")
    assert hello["current"] == hello["heads"] == ["hello_0001"]
    with app.app_context(), db.engine.connect() as conn:
        def only_hello(_obj, name, type_, _reflected, _other):
            return type_ != "table" or name.startswith("hello_")

        ctx = MigrationContext.configure(conn, opts={"compare_type": True,
                                                     "include_object": only_hello})
        assert compare_metadata(ctx, db.metadata) == []
        assert conn.execute(text("SELECT version_num FROM alembic_version_hello")).all() == [
            ("hello_0001",)]


# --- blocked over the same data, then enabled again -----------------------------------------

def test_blocked_is_absent_and_its_data_untouched(make_app, admin, token, api):
    enabled = admin.client.application
    for t in ("Hi", "Hej"):
        assert api("POST", "/api/v1/hello/greetings", json={"text": t}).status_code == 201
    with enabled.app_context():
        enabled.extensions["appliance"].jobs.schedule("hello.count", "hello", {"hours": 1})
        db.session.commit()

    blocked = make_app(DISABLE_PLUGINS="hello")
    host = blocked.extensions["appliance"]
    b = login(blocked)
    call = bearer(blocked, token)

    assert "/hello/" not in b.get("/").get_data(as_text=True)
    assert b.get("/hello/").status_code == 404
    assert b.post("/hello/", data={"text": "x"}).status_code == 404
    resp = call("GET", "/api/v1/hello/greetings")
    assert resp.status_code == 404 and resp.get_json()["error"] == "not_found"
    assert call("POST", "/api/v1/hello/greetings", json={"text": "x"}).status_code == 404
    assert not [p for p in call("GET", "/api/v1/openapi.json").get_json()["paths"]
                if p.startswith("/api/v1/hello")]
    assert "hello.count" not in host.jobs.kinds
    result = blocked.test_cli_runner().invoke(args=["hello"])
    assert result.exit_code != 0 and "No such command" in result.output

    info = hello_info(call("GET", "/api/v1/plugins").get_json())
    assert info["enabled"] is False and info["blocked_by"] == "APPLIANCE_DISABLE_PLUGINS"
    assert info["source"] == "entry point" and info["version"] == "1.0.0"

    with blocked.app_context():
        assert "hello" not in [s["owner"] for s in migrate.status(blocked)]
        with pytest.raises(KeyError):
            host.jobs.submit("hello.count", "hello")
        assert host.jobs.tick(now=datetime.now() + timedelta(days=2)) == []
        sched = db.session.scalar(select(JobSchedule).where(JobSchedule.kind == "hello.count"))
        assert sched is not None and sched.last_run_id is None  # kept, but not run
        rows = db.session.execute(text("SELECT text, created_by FROM hello_greeting "
                                       "ORDER BY id")).all()
        assert rows == [("Hi", "admin"), ("Hej", "admin")]
        assert db.session.execute(text("SELECT version_num FROM alembic_version_hello")
                                  ).all() == [("hello_0001",)]

    again = make_app()
    b = login(again)
    assert 'href="/hello/">Greetings</a>' in b.get("/").get_data(as_text=True)
    page = b.get("/hello/").get_data(as_text=True)
    assert "Hi" in page and "Hej" in page
    items = bearer(again, token)("GET", "/api/v1/hello/greetings").get_json()["items"]
    assert [i["text"] for i in items] == ["Hi", "Hej"]
    with again.app_context():
        started = again.extensions["appliance"].jobs.tick(now=datetime.now() + timedelta(days=2))
        assert len(started) == 1
        run = again.extensions["appliance"].jobs.wait(started[0])
        assert run.state == "succeeded" and json.loads(run.counts) == {"greetings": 2}
