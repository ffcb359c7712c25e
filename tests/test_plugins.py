"""Profiles, blocking, the plugin listing, hooks called through pluggy, plugin settings."""

import json
import logging
import os

import pytest
from click.testing import CliRunner

from appliance import app as app_module
from appliance import create_app, hookimpl, migrate
from appliance.cli import cli
from appliance.config import Setting, SettingError, from_env
from appliance.db import db
from appliance.directory import replace_source
from appliance.models import Account, Contact, Enterprise
from appliance.plugins import PluginError
from tests.conftest import command
from tests.test_hookspecs import hook_names

FEATURES = {"peering", "federation", "sync", "network_elements"}


def _cli_json(tmp_path, **env):
    out = command(tmp_path, "plugins", "--json", **env)
    assert out.exit_code == 0, out.output
    return {p["name"]: p for p in json.loads(out.stdout)}


def test_gcp_profile_blocks_peering_and_federation_from_the_command_line(tmp_path):
    listed = _cli_json(tmp_path, APPLIANCE_PROFILE="micloud-flex-gcp")
    for name in ("peering", "federation"):
        assert listed[name]["enabled"] is False
        assert listed[name]["blocked_by"] == "profile micloud-flex-gcp"
    for name in ("sync", "network_elements", "enterprises", "directory"):
        assert listed[name]["enabled"] is True
    entry = listed["peering"]
    assert set(entry) >= {"name", "version", "source", "enabled", "blocked_by", "hooks"}
    assert entry["source"] == "builtin" and "appliance_nav_tabs" in entry["hooks"]


def test_profile_option_on_the_command(tmp_path):
    out = command(tmp_path, "--profile", "micloud-flex-gcp", "plugins")
    assert out.exit_code == 0, out.output
    assert "profile: micloud-flex-gcp" in out.stdout
    assert "blocked (profile micloud-flex-gcp)" in out.stdout
    assert "APPLIANCE_PROFILE" not in os.environ


def test_standard_loads_everything(app, runner):
    result = runner.invoke(cli, ["plugins", "--json"])
    listed = {p["name"]: p for p in json.loads(result.output)}
    assert all(listed[n]["enabled"] for n in FEATURES)
    assert listed["enterprises"]["core"] is True and listed["peering"]["core"] is False


def test_blocked_plugin_is_absent_and_its_data_survives(make_app, tmp_path):
    std = make_app()
    with std.app_context():
        from appliance.auth import create_admin
        create_admin("admin", "correct-horse-battery")
    from tests.conftest import Browser

    def visit(app):
        b = Browser(app.test_client())
        b.login()
        return b

    b = visit(std)
    assert b.get("/peering/").status_code == 200
    assert 'href="/peering/"' in b.get("/").get_data(as_text=True)
    b.post("/enterprises", data={"name": "Acme", "eid": "acme"})
    added = b.post("/peering/new", data={
        "kind": "external", "description": "OCS directory", "servers": "ldap.ocs.test",
        "security": "none", "base_dn": "dc=ocs,dc=test", "filter": "(objectClass=person)",
        "scope": "sub", "page_size": "500", "preset": "OpenLDAP", "days": "1", "hour": "2",
        "minute": "0", "ampm": "AM"})
    assert added.status_code == 302, added.get_data(as_text=True)

    gcp = make_app(PROFILE="micloud-flex-gcp")
    g = visit(gcp)
    home = g.get("/").get_data(as_text=True)
    assert 'href="/peering/"' not in home and 'href="/federation/"' not in home
    assert 'href="/sync/"' in home
    assert g.get("/peering/").status_code == 404
    assert g.get("/federation/").status_code == 404
    api = g.get("/api/v1/peering/enterprises/1/peers")
    assert api.status_code == 404 and api.get_json()["error"] == "not_found"
    spec = g.get("/api/v1/openapi.json").get_json()
    assert not any(p.startswith("/api/v1/peering") for p in spec["paths"])
    assert "Acme" in g.get("/enterprises").get_data(as_text=True)

    again = visit(make_app())
    assert again.get("/peering/").status_code == 200
    peers = again.get("/api/v1/peering/enterprises/1/peers").get_json()["items"]
    assert [p["description"] for p in peers] == ["OCS directory"]  # kept while blocked


def test_disable_plugins_env_adds_to_the_profile(make_app):
    app = make_app(PROFILE="micloud-flex-gcp", DISABLE_PLUGINS="sync, network_elements")
    plugins = app.extensions["appliance"].plugins
    assert not any(plugins.enabled(n) for n in FEATURES)
    assert plugins.infos["sync"].blocked_by == "APPLIANCE_DISABLE_PLUGINS"
    assert plugins.infos["peering"].blocked_by == "profile micloud-flex-gcp"


def test_core_plugins_cannot_be_blocked(tmp_path):
    with pytest.raises(PluginError, match="Core plugin.* enterprises cannot be blocked"):
        create_app({"DATA_DIR": str(tmp_path), "DISABLE_PLUGINS": "enterprises"})
    out = command(tmp_path, "plugins", APPLIANCE_DISABLE_PLUGINS="audit")
    assert out.exit_code != 0 and "audit cannot be blocked" in out.stderr


def test_unknown_profile_is_refused(tmp_path):
    with pytest.raises(PluginError, match="Unknown profile 'nope'; known profiles: "):
        create_app({"DATA_DIR": str(tmp_path), "PROFILE": "nope"})


def test_integrated_profile_sets_its_flag(make_app):
    assert make_app(PROFILE="micollab-integrated").extensions["appliance"].flags[
        "integrated_mode"] is True
    assert make_app().extensions["appliance"].flags["integrated_mode"] is False


def test_api_plugins_route(api):
    listed = {p["name"]: p for p in api("GET", "/api/v1/plugins").get_json()}
    assert FEATURES <= set(listed)


# --- hooks are called through pluggy --------------------------------------------------------

def watcher():
    """A plugin with a new-style hook wrapper (@hookimpl(wrapper=True)) around every hook."""
    seen: list[str] = []

    def wrap(name):
        @hookimpl(wrapper=True)
        def wrapper(self):
            seen.append(name)
            return (yield)
        return wrapper

    cls = type("Watcher", (), {name: wrap(name) for name in hook_names()})
    return cls(), seen


def fire_every_runtime_hook(app) -> None:
    """Make the host call the hooks it calls after start-up: events, connectors, migrations."""
    from appliance.core import enterprises, home, jobs
    from appliance.core.client import service as client_service
    from appliance.plugins.network_elements import flow
    from appliance.plugins.sync import pbxsync
    from appliance.xmpp import service as xmpp_service

    with app.test_request_context():
        migrate.status(app)
        ent = Enterprise(eid="acme", name="Acme", im_domain="acme.test")
        db.session.add(ent)
        db.session.commit()
        replace_source(Contact, ent, "test:1", "Test", [{"external_id": "1", "last_name": "A"}])
        replace_source(Account, ent, "test:1", "Test", [{"external_id": "1", "login": "a"}])
        assert client_service.check("acme.test", "a", "pw") == "wrong"  # a sign-in
        replace_source(Account, ent, "test:1", "Test", [], allow_drop=True)
        assert "csv" in pbxsync.connectors() and "file" in flow.connectors()
        xmpp_service.config()  # the XMPP service's configuration asks for a policy
        db.session.commit()
        assert home.summaries()  # the home page's cards
        jobs.filtered({"enterprise": str(ent.id)})  # the Jobs filter asks for its targets
        enterprises.delete(ent)


def test_a_hook_wrapper_sees_every_hook_the_host_calls(make_app):
    plugin, seen = watcher()
    app = make_app(EXTRA_PLUGINS=[("watcher", plugin)])
    # Those the host calls while it starts (metadata once per other plugin).
    others = app.extensions["appliance"].plugins.pm.get_plugins() - {plugin}
    assert seen.count("appliance_metadata") == len(others) > 10
    started = {"appliance_metadata", "appliance_blueprints", "appliance_api_blueprints",
               "appliance_nav_tabs", "appliance_dashboard_panels", "appliance_account_panels",
               "appliance_job_kinds", "appliance_cli_commands", "appliance_migrations"}
    assert started <= set(seen)
    fire_every_runtime_hook(app)
    assert set(seen) == set(hook_names())


def test_hook_call_monitoring_sees_every_hook_the_host_calls(make_app, caplog):
    """APPLIANCE_TRACE_HOOKS logs pluggy's trace (pm.enable_tracing, which is
    pm.add_hookcall_monitoring) from the first call on."""
    caplog.set_level(logging.DEBUG, logger="appliance.hooks")
    app = make_app(TRACE_HOOKS=True)
    pm = app.extensions["appliance"].plugins.pm
    monitored: list[str] = []
    pm.add_hookcall_monitoring(lambda name, impls, kwargs: monitored.append(name),
                               lambda outcome, name, impls, kwargs: None)
    fire_every_runtime_hook(app)
    traced = {m.split()[0] for m in caplog.messages if m.lstrip().startswith("appliance_")}
    assert traced == set(hook_names())
    assert set(monitored) == set(hook_names()) - {
        "appliance_metadata", "appliance_blueprints", "appliance_api_blueprints",
        "appliance_nav_tabs", "appliance_dashboard_panels", "appliance_account_panels",
        "appliance_job_kinds", "appliance_cli_commands"}  # called once, at start-up, before
    # monitoring was added


def test_call_each_attributes_answers_through_pluggy(make_app):
    plugin, seen = watcher()
    app = make_app(EXTRA_PLUGINS=[("watcher", plugin)])
    plugins = app.extensions["appliance"].plugins
    seen.clear()
    owners = dict(plugins.call_each("appliance_migrations"))
    assert {"peering", "federation", "sync", "network_elements"} <= set(owners)
    assert "watcher" not in owners and "home" not in owners  # a wrapper answers nothing
    assert seen == ["appliance_migrations"] * len(owners)
    assert plugins.call_one("appliance_migrations", "home") is None


# --- plugin settings ------------------------------------------------------------------------

class Configured:
    """A plugin declaring a plain, a typed, a required and a secret setting."""

    def __init__(self, required=True):
        self.required = required

    @hookimpl
    def appliance_metadata(self):
        return {"title": "Configured", "settings": [
            Setting("greeting", default="Hello", help="What to say"),
            Setting("retries", default=3),
            Setting("endpoint", required=self.required, help="The partner's URL"),
            Setting("api_key", secret=True),
        ]}


def test_settings_defaults_environment_and_config(make_app, monkeypatch):
    monkeypatch.setenv("APPLIANCE_CONFIGURED_RETRIES", "5")
    monkeypatch.setenv("APPLIANCE_CONFIGURED_ENDPOINT", "https://partner.test/")
    monkeypatch.setenv("APPLIANCE_CONFIGURED_API_KEY", "s3cret-from-env")
    app = make_app(EXTRA_PLUGINS=[("configured", Configured())],
                   CONFIGURED_GREETING="Hi")  # create_app's config wins over the environment
    assert (app.config["CONFIGURED_GREETING"], app.config["CONFIGURED_RETRIES"],
            app.config["CONFIGURED_ENDPOINT"], app.config["CONFIGURED_API_KEY"]) == (
        "Hi", 5, "https://partner.test/", "s3cret-from-env")
    listed = {s["name"]: s for s in
              app.extensions["appliance"].plugins.infos["configured"].settings}
    assert listed["greeting"] == {
        "name": "greeting", "key": "CONFIGURED_GREETING", "env": "APPLIANCE_CONFIGURED_GREETING",
        "value": "Hi", "source": "config", "default": "Hello", "required": False,
        "secret": False, "help": "What to say"}
    assert (listed["retries"]["value"], listed["retries"]["source"]) == (5, "environment")
    assert listed["api_key"]["value"] == "••••••" and listed["api_key"]["secret"]

    monkeypatch.delenv("APPLIANCE_CONFIGURED_RETRIES")
    monkeypatch.delenv("APPLIANCE_CONFIGURED_API_KEY")
    plain = make_app(EXTRA_PLUGINS=[("configured", Configured())])
    assert (plain.config["CONFIGURED_GREETING"], plain.config["CONFIGURED_RETRIES"],
            plain.config["CONFIGURED_API_KEY"]) == ("Hello", 3, None)
    listed = {s["name"]: s for s in
              plain.extensions["appliance"].plugins.infos["configured"].settings}
    assert (listed["greeting"]["source"], listed["api_key"]["value"]) == ("default", None)


def test_a_missing_required_setting_refuses_start_up(tmp_path, monkeypatch):
    monkeypatch.delenv("APPLIANCE_CONFIGURED_ENDPOINT", raising=False)
    config = {"DATA_DIR": str(tmp_path), "EXTRA_PLUGINS": [("configured", Configured())]}
    with pytest.raises(PluginError) as exc:
        create_app(config)
    assert str(exc.value) == ("Plugin configured needs the setting CONFIGURED_ENDPOINT: "
                              "set APPLIANCE_CONFIGURED_ENDPOINT (The partner's URL)")
    # Blocked, the plugin needs nothing.
    create_app({**config, "DISABLE_PLUGINS": "configured"})

    # The `appliance` command says it in one line.
    monkeypatch.setattr(app_module, "from_env", lambda: {**from_env(), **config})
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 1
    assert result.output == ("Error: Plugin configured needs the setting CONFIGURED_ENDPOINT: "
                             "set APPLIANCE_CONFIGURED_ENDPOINT (The partner's URL)\n")

    monkeypatch.setenv("APPLIANCE_CONFIGURED_ENDPOINT", "https://partner.test/")
    monkeypatch.setenv("APPLIANCE_CONFIGURED_RETRIES", "many")
    with pytest.raises(SettingError, match="^APPLIANCE_CONFIGURED_RETRIES must be a whole "
                                           "number, not 'many'$"):
        create_app(config)


def test_bad_setting_declarations_are_refused(tmp_path):
    class Bad:
        def __init__(self, setting):
            self.setting = setting

        @hookimpl
        def appliance_metadata(self):
            return {"settings": [self.setting]}

    for setting, message in ((Setting("Greeting"), "lower-case name"),
                             ({"name": "x"}, "lower-case name"),
                             (Setting("timeout"), "would be the host's setting PEER_TIMEOUT")):
        with pytest.raises(PluginError, match=message):
            create_app({"DATA_DIR": str(tmp_path), "EXTRA_PLUGINS": [("peer", Bad(setting))]})


def test_settings_are_listed_on_the_page_and_in_json(make_app, monkeypatch):
    monkeypatch.setenv("APPLIANCE_CONFIGURED_API_KEY", "s3cret-from-env")
    app = make_app(EXTRA_PLUGINS=[("configured", Configured(required=False))])
    runner = app.test_cli_runner()
    listed = {p["name"]: p for p in json.loads(runner.invoke(cli, ["plugins", "--json"]).output)}
    settings = {s["key"]: s for s in listed["configured"]["settings"]}
    assert settings["CONFIGURED_GREETING"]["value"] == "Hello"
    assert settings["CONFIGURED_API_KEY"]["value"] == "••••••"
    assert listed["federation"]["settings"] == []
    assert [s["key"] for s in listed["peering"]["settings"]] == ["PEERING_CHANGE_FEED"]
    text = runner.invoke(cli, ["plugins"]).output
    assert "setting CONFIGURED_GREETING = 'Hello' (default)" in text
    assert "s3cret" not in text

    with app.app_context():
        from appliance.auth import create_admin
        create_admin("admin", "correct-horse-battery")
    from tests.conftest import Browser
    b = Browser(app.test_client())
    b.login()
    html = b.get("/plugins").get_data(as_text=True)
    assert "<code>CONFIGURED_GREETING</code> = <code>Hello</code>" in html
    assert "<code>CONFIGURED_API_KEY</code> = <code>••••••</code>" in html
    assert "<code>CONFIGURED_ENDPOINT</code> = <span class=\"muted\">(empty)</span>" in html
    assert "s3cret" not in html
    api = b.get("/api/v1/plugins").get_json()
    assert "s3cret" not in json.dumps(api)
    assert next(p for p in api if p["name"] == "configured")["settings"][0]["value"] == "Hello"
