"""The Federation tab's table, rules and events, in process. The XMPP service itself is
exercised with real Prosody instances in test_federation_xmpp.py."""

import re

import pytest
from sqlalchemy import select

from appliance.db import db
from appliance.directory import replace_source
from appliance.models import Contact, Enterprise
from appliance.plugins.federation.models import Server
from tests.conftest import Browser


@pytest.fixture
def app(make_app, tmp_path):
    # No Prosody here: the tab must say so, and everything else must still work.
    return make_app(XMPP_PROSODYCTL=str(tmp_path / "no-prosodyctl"),
                    XMPP_PROSODY=str(tmp_path / "no-prosody"), HOSTNAME="appliance.test")


def rows_of(html: str) -> list[str]:
    return re.findall(r'<tr data-row="([^"]+)"', html)


def form_of(html: str) -> dict:
    """The values the table form would post (hidden inputs and open text boxes)."""
    data: dict = {}
    for name, value in re.findall(r'<input (?:type="hidden" )?name="([^"]+)" value="([^"]*)"',
                                  html):
        data.setdefault(name, []).append(value)
    for name in re.findall(r'<input type="checkbox" name="([^"]+)"[^>]* checked', html):
        data[name] = ["on"]
    data.pop("csrf_token", None)
    return data


def step(admin, html, op, **kw):
    """One HTMX step on the table, posting what the page holds, with edits applied."""
    data = form_of(html)
    for k, v in kw.pop("set", {}).items():
        data[k] = [v]
    for k in kw.pop("unset", ()):
        data.pop(k, None)
    qs = "&".join(f"{k}={v}" for k, v in {"op": op, **kw}.items())
    url = "/federation/apply" if op == "apply" else f"/federation/table?{qs}"
    return admin.post(url, data=data, htmx=True)


def table(admin) -> str:
    return admin.get("/federation/table", htmx=True).get_data(as_text=True)


def add_row(admin, html, domain, **extra):
    html = step(admin, html, "add").get_data(as_text=True)
    key = rows_of(html)[-1]
    assert 'placeholder="Enter domain"' in html  # the new row's domain is open for typing
    return step(admin, html, "edit", key=key, col="domain",
                set={f"domain-{key}": domain, **{f"{k}-{key}": v for k, v in extra.items()}}
                ).get_data(as_text=True), key


def saved(app) -> list[tuple]:
    with app.app_context():
        return [(s.domain, s.nextplane, s.server, s.port)
                for s in db.session.scalars(select(Server).order_by(Server.domain))]


def test_tab_without_prosody_says_so(admin):
    page = admin.get("/federation/").get_data(as_text=True)
    assert "Enable Federation" in page and "john_smith@ocs.com" in page
    assert "MiCollab Client Login" in page and "personal contact" in page
    panel = admin.get("/federation/status", htmx=True).get_data(as_text=True)
    assert "The XMPP service is not installed" in panel


def test_add_edit_apply_reset_delete(app, admin):
    html = table(admin)
    assert "No federated server." in html
    html, key = add_row(admin, html, "ocs.com")
    assert "1 pending change" in html and saved(app) == []
    html = step(admin, html, "apply").get_data(as_text=True)
    assert saved(app) == [("ocs.com", False, "", None)]
    assert "pending" not in html and ">ocs.com<" in html

    # A NextPlane row: tick NextPlane, then fill server and port; Reset throws it away.
    html, key = add_row(admin, html, "partner.example")
    html = step(admin, html, "toggle", key=key, set={f"nextplane-{key}": "on"}).get_data(
        as_text=True)
    assert "Enter server" in html and ">Port<" in html
    assert saved(app) == [("ocs.com", False, "", None)]
    html = table(admin)  # Reset
    assert rows_of(html) == [rows_of(html)[0]] and "partner.example" not in html

    html, key = add_row(admin, html, "partner.example")
    html = step(admin, html, "toggle", key=key, set={f"nextplane-{key}": "on"}).get_data(
        as_text=True)
    data_edit = {f"server-{key}": "hub.nextplane.example", f"port-{key}": "5270"}
    html = step(admin, html, "edit", key=key, col="port", set=data_edit).get_data(as_text=True)
    resp = step(admin, html, "apply", set={**data_edit, f"nextplane-{key}": "on"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert saved(app) == [("ocs.com", False, "", None),
                          ("partner.example", True, "hub.nextplane.example", 5270)]

    # Delete Server is a pending change too: Apply deletes, nothing else changes.
    html = table(admin)
    first = rows_of(html)[0]
    html = step(admin, html, "delete", key=first).get_data(as_text=True)
    assert "1 pending change" in html and saved(app)[0][0] == "ocs.com"
    step(admin, html, "apply")
    assert [s[0] for s in saved(app)] == ["partner.example"]


@pytest.mark.parametrize("domain,extra,message", [
    ("", {}, "Domain is required"),
    ("not a domain", {}, "Domain must be a domain name"),
    ("10.0.0.1", {}, "Domain must be a domain name"),
    ("localhost", {}, "Domain must be a domain name"),
    ("OCS.com", {}, "ocs.com is already in the table"),
    ("hub.test", {"nextplane": "on"}, "Server is required"),
    ("hub.test", {"nextplane": "on", "server": "bad host!", "port": "5269"},
     "Server must be an IP address or a hostname"),
    ("hub.test", {"nextplane": "on", "server": "10.0.0.9", "port": "0"}, "Port must be 1 to 65535"),
    ("hub.test", {"nextplane": "on", "server": "10.0.0.9", "port": "65536"},
     "Port must be 1 to 65535"),
    ("hub.test", {"nextplane": "on", "server": "10.0.0.9", "port": "abc"},
     "Port must be 1 to 65535"),
])
def test_a_bad_row_is_marked_and_nothing_is_saved(app, admin, domain, extra, message):
    html, _ = add_row(admin, table(admin), "ocs.com")
    step(admin, html, "apply")
    html, good = add_row(admin, table(admin), "good.example")
    html, key = add_row(admin, html, domain, **extra)
    resp = step(admin, html, "apply", set={f"{k}-{key}": v for k, v in extra.items()})
    assert resp.status_code == 422
    body = resp.get_data(as_text=True)
    assert "Nothing was saved" in body and message in body
    assert body.count('class="invalid"') == 1
    assert saved(app) == [("ocs.com", False, "", None)]  # not even the good new row
    assert "good.example" in body  # the pending edits are kept on the page


def test_api_applies_the_whole_table_or_nothing(app, api):
    ok = api("PUT", "/api/v1/federation/servers", json={"servers": [
        {"domain": "ocs.com"}, {"domain": "hub.example", "nextplane": True,
                                "server": "10.1.2.3", "port": 5269}]})
    assert ok.status_code == 200, ok.get_json()
    bad = api("PUT", "/api/v1/federation/servers", json={"servers": [
        {"domain": "ocs.com"}, {"domain": "OCS.COM"}, {"domain": "x.example", "nextplane": True}]})
    assert bad.status_code == 422
    fields = {f["field"] for f in bad.get_json()["fields"]}
    assert fields == {"servers[1].domain", "servers[2].server", "servers[2].port"}
    assert [s[0] for s in saved(app)] == ["hub.example", "ocs.com"]
    listed = api("GET", "/api/v1/federation/servers?per_page=1&sort=domain&dir=desc").get_json()
    assert (listed["total"], listed["pages"], listed["per_page"]) == (2, 2, 1)
    assert [s["domain"] for s in listed["items"]] == ["ocs.com"]
    sid = api("GET", "/api/v1/federation/servers").get_json()["items"][0]["id"]
    assert api("DELETE", f"/api/v1/federation/servers/{sid}").status_code == 200
    assert [s[0] for s in saved(app)] == ["ocs.com"]
    dup = api("POST", "/api/v1/federation/servers", json={"domain": "ocs.com"})
    assert dup.status_code == 422
    assert dup.get_json()["fields"] == [{"field": "domain", "rule": "row",
                                         "message": "ocs.com is already in the table"}]
    assert api("DELETE", f"/api/v1/federation/servers/{sid}").get_json() == {
        "error": "not_found", "message": "No such federated server"}
    spec = api("GET", "/api/v1/openapi.json").get_json()
    assert "/api/v1/federation/servers/{sid}/test" in spec["paths"]


def test_enable_and_disable_write_the_xmpp_configuration(app, api):
    cfg_path = api("GET", "/api/v1/federation").get_json()["service"]["config_path"]
    assert api("POST", "/api/v1/federation/enable").get_json()["enabled"] is True
    text = open(cfg_path).read()
    assert re.search(r"appliance_federation_enabled\s*=\s*true", text)
    api("PUT", "/api/v1/federation/servers", json={"servers": [{"domain": "ocs.com"}]})
    assert '"ocs.com"' in open(cfg_path).read()
    api("POST", "/api/v1/federation/disable")
    assert re.search(r"appliance_federation_enabled\s*=\s*false", open(cfg_path).read())


def _import(app, source, addresses):
    with app.app_context():
        ent = db.session.scalar(select(Enterprise)) or Enterprise(eid="acme", name="Acme")
        db.session.add(ent)
        db.session.commit()
        replace_source(Contact, ent, source, source, [
            {"external_id": a, "last_name": a, "im_address": a} for a in addresses])
        return {c.im_address: c.federated for c in db.session.scalars(
            select(Contact).where(Contact.source == source))}


def test_contacts_from_peers_are_federated_when_federation_is_on(app, api):
    # Off: nothing is marked, no domain added.
    assert _import(app, "peering:1", ["ann@ocs.com"]) == {"ann@ocs.com": False}
    assert saved(app) == []
    api("POST", "/api/v1/federation/enable")  # turning it on federates what peers brought
    with app.app_context():
        assert db.session.scalar(select(Contact.federated)) is True
    assert saved(app) == [("ocs.com", False, "", None)]
    got = _import(app, "peering:2", ["bo@sametime.example", "cy@ocs.com", "no-domain"])
    assert got == {"bo@sametime.example": True, "cy@ocs.com": True, "no-domain": True}
    assert [s[0] for s in saved(app)] == ["ocs.com", "sametime.example"]
    # A synchronizer's contacts are this appliance's own users: never federated.
    assert _import(app, "sync:1", ["dee@acme.test"]) == {"dee@acme.test": False}
    assert [s[0] for s in saved(app)] == ["ocs.com", "sametime.example"]


def test_any_federated_server_may_have_a_route(app, api):
    """Not only NextPlane: a server that is not in DNS gets its address and port too."""
    cfg_path = api("GET", "/api/v1/federation").get_json()["service"]["config_path"]
    ok = api("PUT", "/api/v1/federation/servers", json={"servers": [
        {"domain": "ocs.com", "server": "10.9.8.7", "port": 5270}, {"domain": "plain.example"}]})
    assert ok.status_code == 200, ok.get_json()
    text = open(cfg_path).read()
    assert '["ocs.com"] = { host = "10.9.8.7", port = 5270 }' in text
    assert '["plain.example"]' not in text  # no route: found in DNS
    half = api("PUT", "/api/v1/federation/servers", json={"servers": [
        {"domain": "ocs.com", "server": "10.9.8.7"}, {"domain": "x.example", "port": 5269}]})
    assert half.status_code == 422
    assert {f["field"]: f["message"] for f in half.get_json()["fields"]} == {
        "servers[0].port": "Port must be 1 to 65535",
        "servers[1].server": "Server is required with a port"}
    assert saved(app)[0][2:] == ("10.9.8.7", 5270)  # nothing changed


def test_ports_the_deployment_fixes_are_shown_locked(make_app, tmp_path, admin):
    """APPLIANCE_XMPP_C2S_PORT (and _S2S_PORT, _INTERFACE) win over the tab: the page shows
    the value in use, read-only, naming the variable; the API says the same."""
    fixed = make_app(XMPP_PROSODYCTL=str(tmp_path / "none"), XMPP_PROSODY=str(tmp_path / "none"),
                     XMPP_C2S_PORT=15222, XMPP_INTERFACE="127.0.0.9")
    fixed_admin = Browser(fixed.test_client())  # the same data dir: the same admin
    assert fixed_admin.login().status_code == 302
    page = fixed_admin.get("/federation/").get_data(as_text=True)
    c2s = re.search(r'<input id="f-c2s_port"[^>]*>', page).group(0)
    assert 'value="15222"' in c2s and 'readonly="readonly"' in c2s
    assert "Set by APPLIANCE_XMPP_C2S_PORT on this appliance" in page
    s2s = re.search(r'<input id="f-s2s_port"[^>]*>', page).group(0)
    assert "readonly" not in s2s and 'value="5269"' in s2s
    with fixed.app_context():
        from appliance.xmpp import service as xmpp
        st = xmpp.status(links=False)
    assert st["c2s_port"] == 15222 and st["s2s_port"] == 5269
    assert st["locked"] == {"c2s_port": {"value": 15222, "by": "APPLIANCE_XMPP_C2S_PORT"},
                            "interfaces": {"value": "127.0.0.9",
                                           "by": "APPLIANCE_XMPP_INTERFACE"}}
