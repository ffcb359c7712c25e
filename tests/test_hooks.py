"""One test per hookspec: a small plugin handed to create_app through EXTRA_PLUGINS."""

import json
import sys
import types
from datetime import datetime, timedelta

import click
import pytest
from flask import Blueprint, jsonify, render_template_string
from sqlalchemy import select, text

from appliance import audit, hookimpl, migrate
from appliance.api import ApiBlueprint, body
from appliance.cli import cli
from appliance.db import db
from appliance.directory import SuspiciousImport, replace_source
from appliance.jobs import JobFailed, JobKind
from appliance.models import Account, AuditEntry, Contact, Enterprise
from appliance.plugins import declare
from appliance.ui import Panel, Tab
from appliance.validation import Field, Invalid, Schema, length
from tests.conftest import Browser

# --- a page, a panel and an API the plugins below hand to the host --------------------------

pages = Blueprint("hooktest", __name__, url_prefix="/hooktest")


@pages.route("/", methods=["GET", "POST"])
def index():
    return render_template_string(
        '{% extends "base.html" %}{% block content %}<h1>Hook page</h1>{% endblock %}')


@pages.get("/panel")
def panel():
    return "<p>Panel body</p>"


THING = Schema("HooktestThing", Field("name", "Name", (length(1, 10),)))
api_bp = ApiBlueprint("hooktest_api", __name__, url_prefix="/hooktest", tag="hooktest")


@api_bp.op("/things", "POST", summary="Echo a thing", body=THING, status=201)
def echo_thing():
    return jsonify(body(THING)), 201  # a broken rule: the host's handler answers 422


def login(app) -> Browser:
    from appliance.auth import create_admin
    from tests.conftest import PASSWORD

    with app.app_context():
        create_admin("admin", PASSWORD)
    b = Browser(app.test_client())
    assert b.login().status_code == 302
    return b


# --- appliance_metadata ---------------------------------------------------------------------

class Described:
    @hookimpl
    def appliance_metadata(self):
        return {"title": "Described", "version": "2.3.4", "description": "Says what it is.",
                "min_host_version": "0.1"}


class TooNew:
    @hookimpl
    def appliance_metadata(self):
        return {"title": "Too new", "version": "1.0", "min_host_version": "99.0"}

    @hookimpl
    def appliance_nav_tabs(self):
        return [Tab("Too new", "home.plugins")]


def test_hook_appliance_metadata(make_app):
    app = make_app(EXTRA_PLUGINS=[("described", Described()), ("toonew", TooNew())])
    plugins = app.extensions["appliance"].plugins
    info = plugins.infos["described"]
    assert (info.title, info.version, info.description) == ("Described", "2.3.4",
                                                            "Says what it is.")
    assert info.enabled and info.source == "extra" and info.hooks == ["appliance_metadata"]
    assert plugins.metadata("described")["min_host_version"] == "0.1"

    too_new = plugins.infos["toonew"]
    assert not too_new.enabled
    assert too_new.blocked_by == "requires appliance >= 99.0 (this is 0.1.0)"
    assert "Too new" not in [t.label for t in app.extensions["appliance"].tabs]

    b = login(app)
    html = b.get("/plugins").get_data(as_text=True)
    assert "<strong>Described</strong>" in html and "Says what it is." in html
    assert "requires appliance &gt;= 99.0" in html


# --- appliance_blueprints -------------------------------------------------------------------

class Pages:
    @hookimpl
    def appliance_blueprints(self):
        return [pages]


def test_hook_appliance_blueprints(make_app):
    app = make_app(EXTRA_PLUGINS=[("hooktest", Pages())])
    b = login(app)
    page = b.get("/hooktest/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<h1>Hook page</h1>" in html and 'class="tabs"' in html  # the host's layout

    anonymous = app.test_client().get("/hooktest/")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    assert b.client.post("/hooktest/").status_code == 400  # CSRF applies to plugin pages
    assert b.post("/hooktest/").status_code == 200

    blocked = make_app(EXTRA_PLUGINS=[("hooktest", Pages())], DISABLE_PLUGINS="hooktest")
    bb = Browser(blocked.test_client())
    bb.login()
    assert bb.get("/hooktest/").status_code == 404


# --- appliance_api_blueprints ---------------------------------------------------------------

class Api:
    @hookimpl
    def appliance_api_blueprints(self):
        return [api_bp]


def test_hook_appliance_api_blueprints(make_app):
    app = make_app(EXTRA_PLUGINS=[("hooktest", Api())])
    b = login(app)
    with app.app_context():
        from appliance.auth import new_token
        from appliance.models import User

        token = new_token(db.session.scalar(select(User)), "tests")
    client = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}

    assert client.post("/api/v1/hooktest/things", json={"name": "x"}).status_code == 401
    ok = client.post("/api/v1/hooktest/things", json={"name": "widget"}, headers=auth)
    assert ok.status_code == 201 and ok.get_json() == {"name": "widget"}
    bad = client.post("/api/v1/hooktest/things", json={"name": "far too long"}, headers=auth)
    assert bad.status_code == 422
    assert [(f["field"], f["rule"]) for f in bad.get_json()["fields"]] == [("name", "length")]

    doc = b.get("/api/v1/openapi.json").get_json()
    post = doc["paths"]["/api/v1/hooktest/things"]["post"]
    assert post["tags"] == ["hooktest"] and post["summary"] == "Echo a thing"
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/HooktestThing"}
    assert doc["components"]["schemas"]["HooktestThing"]["properties"]["name"]["maxLength"] == 10


# --- appliance_nav_tabs ---------------------------------------------------------------------

class Tabs(Pages):
    @hookimpl
    def appliance_nav_tabs(self):
        return [Tab("Hook tab", "hooktest.index", order=5)]


def test_hook_appliance_nav_tabs(make_app):
    app = make_app(EXTRA_PLUGINS=[("hooktest", Tabs())])
    labels = [t.label for t in app.extensions["appliance"].tabs]
    assert labels.index("Home") < labels.index("Hook tab") < labels.index("Enterprises")

    b = login(app)
    home = b.get("/").get_data(as_text=True)
    assert '<a href="/hooktest/">Hook tab</a>' in home
    page = b.get("/hooktest/").get_data(as_text=True)
    assert '<a href="/hooktest/" class="active" aria-current="page">Hook tab</a>' in page

    blocked = make_app(EXTRA_PLUGINS=[("hooktest", Tabs())], DISABLE_PLUGINS="hooktest")
    assert "Hook tab" not in [t.label for t in blocked.extensions["appliance"].tabs]


# --- appliance_dashboard_panels -------------------------------------------------------------

class Panels(Pages):
    @hookimpl
    def appliance_dashboard_panels(self):
        return [Panel("Hook panel", "hooktest.panel", order=1)]


def test_hook_appliance_dashboard_panels(make_app):
    app = make_app(EXTRA_PLUGINS=[("hooktest", Panels())])
    titles = [p.title for p in app.extensions["appliance"].panels]
    assert titles[0] == "Hook panel"

    b = login(app)
    home = b.get("/").get_data(as_text=True)
    assert '<h2>Hook panel</h2>' in home
    assert 'hx-get="/hooktest/panel" hx-trigger="load"' in home
    assert b.get("/hooktest/panel", htmx=True).get_data(as_text=True) == "<p>Panel body</p>"


# --- appliance_job_kinds --------------------------------------------------------------------

def work(ctx) -> None:
    n = int(ctx.params.get("n", 1))
    if n < 0:
        raise JobFailed("n must not be negative")
    for i in range(n):
        ctx.progress(100 * i / n)
    ctx.count(done=n)


def hourly(spec: dict, now: datetime) -> datetime:
    return now + timedelta(hours=1)


class Jobs:
    @hookimpl
    def appliance_job_kinds(self):
        return [JobKind("hooktest.work", "Hook work", work, next_run=hourly)]


def test_hook_appliance_job_kinds(make_app):
    app = make_app(EXTRA_PLUGINS=[("hooktest", Jobs())])
    jobs = app.extensions["appliance"].jobs
    assert jobs.kinds["hooktest.work"].title == "Hook work"
    with app.app_context():
        run, _ = jobs.submit("hooktest.work", "t1", params={"n": 3}, triggered_by="test")
        run = jobs.wait(run.id)
        assert (run.state, run.progress, json.loads(run.counts)) == ("succeeded", 100, {"done": 3})
        assert run.label == "Hook work"

        run, _ = jobs.submit("hooktest.work", "t1", params={"n": -1})
        run = jobs.wait(run.id)
        assert (run.state, run.message) == ("failed", "n must not be negative")

        now = datetime(2030, 1, 1, 12, 0)
        sched = jobs.schedule("hooktest.work", "t2", {}, now=now)
        db.session.commit()
        assert sched.next_run_at == datetime(2030, 1, 1, 13, 0)
        assert jobs.tick(now=now) == []
        started = jobs.tick(now=now + timedelta(hours=1))
        assert len(started) == 1 and jobs.wait(started[0]).state == "succeeded"

    blocked = make_app(EXTRA_PLUGINS=[("hooktest", Jobs())], DISABLE_PLUGINS="hooktest")
    with blocked.app_context():
        assert blocked.extensions["appliance"].jobs.tick(now=now + timedelta(days=1)) == []


# --- appliance_cli_commands -----------------------------------------------------------------

@click.command("hooktest-greet")
@click.argument("name")
def greet(name):
    """Greet someone."""
    click.echo(f"Hello, {name}")


class Commands:
    @hookimpl
    def appliance_cli_commands(self):
        return [greet]


def test_hook_appliance_cli_commands(make_app):
    app = make_app(EXTRA_PLUGINS=[("hooktest", Commands())])
    runner = app.test_cli_runner()
    result = runner.invoke(cli, ["hooktest-greet", "World"])
    assert result.exit_code == 0 and result.output == "Hello, World\n"
    assert "hooktest-greet" in runner.invoke(cli, ["--help"]).output

    blocked = make_app(EXTRA_PLUGINS=[("hooktest", Commands())], DISABLE_PLUGINS="hooktest")
    result = blocked.test_cli_runner().invoke(cli, ["hooktest-greet", "World"])
    assert result.exit_code != 0 and "No such command" in result.output


# --- appliance_migrations -------------------------------------------------------------------

FIRST_REVISION = '''"""hooktest: note table"""
import sqlalchemy as sa
from alembic import op

revision = "hooktest_0001"
down_revision = None
branch_labels = ("hooktest",)
depends_on = None


def upgrade():
    op.create_table("hooktest_note", sa.Column("id", sa.Integer(), primary_key=True),
                    sa.Column("body", sa.String(40), nullable=False))


def downgrade():
    op.drop_table("hooktest_note")
'''


class Migrating:
    def __init__(self, versions):
        self.versions = versions

    @hookimpl
    def appliance_migrations(self):
        return str(self.versions)


class NoMigrations:
    @hookimpl
    def appliance_migrations(self):
        return None


def test_hook_appliance_migrations(make_app, tmp_path_factory):
    versions = tmp_path_factory.mktemp("hooktest_versions")
    (versions / "hooktest_0001_note.py").write_text(FIRST_REVISION)
    plugins = [("hooktest", Migrating(versions)), ("nomig", NoMigrations())]
    app = make_app(EXTRA_PLUGINS=plugins)  # the fixture upgrades, like `appliance db upgrade`
    status = {s["owner"]: s for s in migrate.status(app)}
    assert "nomig" not in status
    assert status["hooktest"]["current"] == ["hooktest_0001"] and not status["hooktest"]["pending"]
    with app.app_context():
        assert db.session.execute(text("SELECT version_num FROM alembic_version_hooktest")
                                  ).all() == [("hooktest_0001",)]
        db.session.execute(text("INSERT INTO hooktest_note (body) VALUES ('kept')"))
        db.session.commit()

    # `appliance db revision --plugin hooktest` adds to the plugin's own branch.
    result = app.test_cli_runner().invoke(cli, ["db", "revision", "--plugin", "hooktest",
                                                "-m", "second", "--empty"])
    assert result.exit_code == 0, result.output
    new = [p for p in versions.glob("*.py") if p.name != "hooktest_0001_note.py"]
    assert len(new) == 1 and "down_revision = 'hooktest_0001'" in new[0].read_text()
    assert {s["owner"]: s for s in migrate.status(app)}["hooktest"]["pending"]

    blocked = make_app(EXTRA_PLUGINS=plugins, DISABLE_PLUGINS="hooktest")
    assert "hooktest" not in [s["owner"] for s in migrate.status(blocked)]
    with blocked.app_context():  # not upgraded, nothing dropped
        assert db.session.execute(text("SELECT version_num FROM alembic_version_hooktest")
                                  ).all() == [("hooktest_0001",)]
        assert db.session.execute(text("SELECT body FROM hooktest_note")).all() == [("kept",)]

    again = make_app(EXTRA_PLUGINS=plugins)  # enabled again: the new revision is applied
    second = new[0].name.split("_")[0]
    assert {s["owner"]: s for s in migrate.status(again)}["hooktest"]["current"] == [second]
    with again.app_context():
        assert db.session.execute(text("SELECT body FROM hooktest_note")).all() == [("kept",)]


# --- event hooks ----------------------------------------------------------------------------

class Listener:
    """Records the event hooks as the host calls them."""

    def __init__(self):
        self.calls: list[tuple] = []

    @hookimpl
    def appliance_enterprise_deleted(self, enterprise):
        rows = db.session.scalar(text("SELECT count(*) FROM enterprise WHERE id = :id"),
                                 {"id": enterprise.id})
        self.calls.append(("enterprise_deleted", enterprise.eid, rows))
        # Work done here commits (or rolls back) together with the deletion.
        audit.record("detach", "hooktest", enterprise.id, enterprise.eid, commit=False)

    @hookimpl
    def appliance_contacts_imported(self, enterprise, source, result):
        self.calls.append(("contacts_imported", enterprise.eid, source, result.as_dict(),
                           sorted(result.removed_keys)))

    @hookimpl
    def appliance_accounts_removed(self, enterprise, source, logins):
        self.calls.append(("accounts_removed", enterprise.eid, source, sorted(logins)))


def _enterprise(eid="acme") -> Enterprise:
    ent = Enterprise(eid=eid, name=eid.title())
    db.session.add(ent)
    db.session.commit()
    return ent


def test_hook_appliance_enterprise_deleted(make_app):
    listener = Listener()
    app = make_app(EXTRA_PLUGINS=[("hooktest", listener)])
    login(app)
    with app.app_context():
        from appliance.auth import new_token
        from appliance.models import User

        token = new_token(db.session.scalar(select(User)), "tests")
    client = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    ent = client.post("/api/v1/enterprises", json={"name": "Acme", "eid": "acme"},
                      headers=auth).get_json()
    assert listener.calls == []
    assert client.delete(f"/api/v1/enterprises/{ent['id']}", headers=auth).status_code == 204
    assert listener.calls == [("enterprise_deleted", "acme", 1)]  # called before the row goes
    assert client.get(f"/api/v1/enterprises/{ent['id']}", headers=auth).status_code == 404
    with app.app_context():
        entries = db.session.execute(select(AuditEntry.action, AuditEntry.object_type).where(
            AuditEntry.object_label == "acme").order_by(AuditEntry.id)).all()
        assert entries == [("create", "enterprise"), ("detach", "hooktest"),
                           ("delete", "enterprise")]


def test_hook_appliance_contacts_imported(make_app):
    listener = Listener()
    app = make_app(EXTRA_PLUGINS=[("hooktest", listener)])
    rows = [{"external_id": "1", "first_name": "Ada", "last_name": "Lovelace"},
            {"external_id": "2", "first_name": "Alan", "last_name": "Turing"}]
    with app.app_context():
        ent = _enterprise()
        replace_source(Contact, ent, "hooktest:1", "Hook source", rows)
        assert listener.calls == [("contacts_imported", "acme", "hooktest:1",
                                   {"added": 2, "updated": 0, "removed": 0, "unchanged": 0}, [])]
        listener.calls.clear()

        with pytest.raises(SuspiciousImport):  # changes nothing and announces nothing
            replace_source(Contact, ent, "hooktest:1", "Hook source", [])
        assert listener.calls == []

        changed = [{**rows[0], "email": "ada@example.com"}]
        replace_source(Contact, ent, "hooktest:1", "Hook source", changed, allow_drop=True)
        assert listener.calls == [("contacts_imported", "acme", "hooktest:1",
                                   {"added": 0, "updated": 1, "removed": 1, "unchanged": 0},
                                   ["2"])]


def test_hook_appliance_accounts_removed(make_app):
    listener = Listener()
    app = make_app(EXTRA_PLUGINS=[("hooktest", listener)])
    rows = [{"external_id": str(i), "login": login_} for i, login_ in
            enumerate(["alice", "bob", "carol"])]
    with app.app_context():
        ent = _enterprise()
        replace_source(Account, ent, "hooktest:1", "Hook source", rows)
        assert listener.calls == []  # nothing removed, nothing announced

        replace_source(Account, ent, "hooktest:1", "Hook source", rows[:1], allow_drop=True)
        assert listener.calls == [("accounts_removed", "acme", "hooktest:1", ["bob", "carol"])]
        assert db.session.scalars(select(Account.login)).all() == ["alice"]


def test_hook_appliance_pbx_connectors(make_app, tmp_path):
    """A partner's live connector feeds a PBX node; the sync plugin applies its rules."""
    from appliance.plugins.sync.pbx_model import Device, Issue

    class Live:
        name = "partner-live"

        def devices(self, node_settings):
            assert node_settings == {"path": "unused"}
            yield Device("2001", "5340 IP", first_name="Ann", last_name="Lee", department="Ops",
                         line=1)
            yield Device("3001", "App Server Port", first_name="Ann", last_name="Lee",
                         department="Ops", line=2)
            yield Issue(3, "", "invalid-row", "the PBX sent a record without a number")

    class Partner:
        @hookimpl
        def appliance_pbx_connectors(self):
            return [Live()]

    app = make_app(EXTRA_PLUGINS=[("partner", Partner())])
    from appliance.plugins.sync import service
    from appliance.plugins.sync.pbxsync import connectors

    with app.test_request_context():
        assert set(connectors()) == {"csv", "partner-live"}
        ent = _enterprise()
        node = service.save(ent, "pbx", {"name": "Live node", "platform": "MiVoice Business",
                                         "address": "10.0.0.9", "path": "unused",
                                         "max_drop": 20, "days": 0, "hour": 1, "minute": 0,
                                         "ampm": "AM"})
        node.connector = "partner-live"
        db.session.commit()
        jobs = app.extensions["appliance"].jobs
        run, _ = jobs.submit(service.KIND, node.source)
        done = jobs.wait(run.id)
        assert done.state == "succeeded", done.message
        assert db.session.scalars(select(Account.login)).all() == ["2001"]
        assert [i.reason for i in service.issues(node)] == [
            "the PBX sent a record without a number"]


def test_hook_appliance_flow_connectors(make_app):
    """A partner's connector receives a MiVoice Business element's queued user changes."""
    from appliance.plugins.network_elements import flow, service
    from appliance.plugins.network_elements.models import Change

    got = []

    class Live:
        name = "partner-live"

        def deliver(self, element, changes):
            got.append((element.name, [(c["action"], c["login"]) for c in changes]))

    class Partner:
        @hookimpl
        def appliance_flow_connectors(self):
            return [Live()]

    app = make_app(EXTRA_PLUGINS=[("partner", Partner())])
    with app.test_request_context():
        assert set(flow.connectors()) == {"file", "partner-live"}
        e = service.save_element({"name": "MiVB 1", "platform": "MiVoice Business",
                                  "address": "10.0.0.7", "connector": "partner-live"})
        assert e.connector == "partner-live"
        with pytest.raises(Invalid) as exc:  # only an installed connector can be chosen
            service.save_element({**service.element_dict(e), "connector": "gone"}, e)
        assert exc.value.messages() == {
            "connector": "No flow-through connector named gone: use file, partner-live"}
        db.session.rollback()
        service.set_licences({"MiCollab Client": 5})
        u = service.save_user({"login": "ann", "last_name": "Lee", "element": "MiVB 1",
                               "services": "MiCollab Client"})
        service.delete_user(u)
        assert flow.deliver() == {"delivered": 2, "failed": 0}
        assert got == [("MiVB 1", [("add", "ann"), ("delete", "ann")])]
        assert {c.state for c in db.session.scalars(select(Change))} == {"delivered"}


# --- hooks declared as data (appliance.plugins.declare) ---------------------------------------

def declared_module(monkeypatch, name="declared_demo", **parts) -> types.ModuleType:
    module = types.ModuleType(name)
    monkeypatch.setitem(sys.modules, name, module)
    declare(name, **parts)
    return module


def test_declared_hooks_are_hookimpls_pluggy_calls_and_blocking_leaves_out(make_app,
                                                                            monkeypatch):
    module = declared_module(monkeypatch, title="Demo", description="Declared as data",
                             blueprints=[pages],
                             nav_tabs=[Tab("Declared", "hooktest.index", order=990)])
    assert module.appliance_nav_tabs() == [Tab("Declared", "hooktest.index", order=990)]
    module.appliance_nav_tabs().clear()  # each caller gets its own list
    app = make_app(EXTRA_PLUGINS=[("demo", module)])
    plugins = app.extensions["appliance"].plugins
    info = plugins.infos["demo"]
    assert info.enabled and info.title == "Demo" and info.description == "Declared as data"
    assert info.hooks == ["appliance_blueprints", "appliance_metadata", "appliance_nav_tabs"]
    assert "demo" in {i.plugin_name for i in plugins.hook.appliance_nav_tabs.get_hookimpls()}
    assert "Declared" in [t.label for t in app.extensions["appliance"].tabs]

    blocked = make_app(EXTRA_PLUGINS=[("demo", module)], DISABLE_PLUGINS="demo")
    assert "Declared" not in [t.label for t in blocked.extensions["appliance"].tabs]
    assert blocked.extensions["appliance"].plugins.infos["demo"].blocked_by


def test_declare_refuses_what_is_no_hook_without_arguments(monkeypatch):
    with pytest.raises(TypeError, match="tabs= names no hook"):
        declared_module(monkeypatch, tabs=[])
    with pytest.raises(TypeError, match="enterprise_deleted= names no hook"):
        declared_module(monkeypatch, enterprise_deleted=None)
    module = declared_module(monkeypatch, title="Once")
    with pytest.raises(TypeError, match="both defines and declares appliance_metadata"):
        declare(module.__name__, title="Twice")
