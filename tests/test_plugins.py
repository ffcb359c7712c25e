"""Profiles, blocking, and the plugin listing."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from appliance import create_app
from appliance.cli import cli
from appliance.plugins import PluginError

APPLIANCE = str(Path(sys.executable).parent / "appliance")
FEATURES = {"peering", "federation", "sync", "network_elements"}


def _cli_json(tmp_path, **env):
    out = subprocess.run([APPLIANCE, "plugins", "--json"], capture_output=True, text=True,
                         env={**os.environ, "APPLIANCE_DATA_DIR": str(tmp_path), **env},
                         timeout=60, check=True)
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
    env = {**os.environ, "APPLIANCE_DATA_DIR": str(tmp_path)}
    env.pop("APPLIANCE_PROFILE", None)
    out = subprocess.run([APPLIANCE, "--profile", "micloud-flex-gcp", "plugins"],
                         capture_output=True, text=True, env=env, timeout=60, check=True)
    assert "profile: micloud-flex-gcp" in out.stdout
    assert "blocked (profile micloud-flex-gcp)" in out.stdout


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
    out = subprocess.run([APPLIANCE, "plugins"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "APPLIANCE_DATA_DIR": str(tmp_path),
                              "APPLIANCE_DISABLE_PLUGINS": "audit"})
    assert out.returncode != 0 and "audit cannot be blocked" in out.stderr


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
