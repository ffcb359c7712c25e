"""A stored secret is only sent to the endpoint it was typed for: pointing it elsewhere needs
it typed again (LDAP bind passwords of synchronizers and external peers, peer keys, network
element passwords), on save and on Test connection / Select Enterprise, pages and API."""

from pathlib import Path

import pytest
from sqlalchemy import select

from appliance import ldapform, vault
from appliance.db import db
from appliance.models import Enterprise
from appliance.plugins.network_elements.models import Element
from appliance.plugins.peering import service as peering
from appliance.plugins.peering.models import Peer
from appliance.plugins.sync.models import Synchronizer

BIND = "stored-bind-secret"
KEY = "apk_stored_peer_key"
RETYPE = ("Bind password: type it again for these servers; the stored one is only sent to "
          "the directory it was typed for")


@pytest.fixture
def app(make_app):
    # peer.test answers nowhere: a saved peer gets a note, nothing is sent
    return make_app(PEER_HOSTS="peer.test=127.0.0.9,other.test=127.0.0.9", PEER_TIMEOUT=1)


@pytest.fixture
def ent(app, admin):
    """An enterprise, selected in the admin's browser."""
    admin.post("/enterprises", data={"name": "Acme", "eid": "acme"})
    with app.app_context():
        return db.session.scalar(select(Enterprise.id).where(Enterprise.eid == "acme"))


@pytest.fixture
def sent(monkeypatch):
    """Where Test connection would have sent a bind password: (servers, port, security,
    ca_file, password) per call; nothing goes out."""
    calls = []

    def fake(settings, mapping):
        calls.append((tuple(settings.servers), settings.port, settings.security,
                      settings.ca_file, settings.password))
        return []
    monkeypatch.setattr(ldapform, "test_connection", fake)
    return calls


@pytest.fixture
def cas(app):
    """Two CA files in the import directory (the only place the field allows)."""
    out = []
    for name in ("ca-one.pem", "ca-two.pem"):
        path = Path(app.config["IMPORT_DIR"]) / name
        path.write_text("-----BEGIN CERTIFICATE-----\n")
        out.append(str(path))
    return out


def ldap_body(cas, **kw):
    return {"name": "Head office", "servers": "ldap1.test", "port": "", "security": "starttls",
            "ca_file": cas[0], "bind_dn": "cn=reader", "password": BIND,
            "base_dn": "dc=acme,dc=test", "filter": "(objectClass=person)", "scope": "sub",
            "page_size": 100, "preset": "OpenLDAP", "max_drop": 20, "days": 1, "hour": 1,
            "minute": 0, "ampm": "AM", **kw}


def fields(resp) -> dict:
    assert resp.status_code == 422, resp.get_data(as_text=True)
    return {f["field"]: (f["rule"], f["message"]) for f in resp.get_json()["fields"]}


def stored(app, model, row_id, *attrs) -> tuple:
    with app.app_context():
        row = db.session.get(model, row_id)
        return tuple(getattr(row, a) for a in attrs)


def elsewhere(cas) -> list[dict]:
    """Every way to point a bind password at another endpoint."""
    return [{"servers": "ldap2.test"}, {"servers": "ldap1.test, ldap-backup.test"},
            {"port": 1389}, {"security": "ldaps"}, {"security": "none"}, {"ca_file": cas[1]}]


# --- LDAP synchronizers ------------------------------------------------------------------------


def test_a_synchronizer_password_is_not_sent_elsewhere_by_the_api(app, api, ent, cas):
    syn = api("POST", f"/api/v1/sync/enterprises/{ent}/ldap", json=ldap_body(cas)).get_json()
    url = f"/api/v1/sync/synchronizers/{syn['id']}"
    before = stored(app, Synchronizer, syn["id"], "ldap", "password_sealed")
    for change in elsewhere(cas):
        assert fields(api("PUT", url, json=change)) == {"password": ("retype", RETYPE)}, change
        assert stored(app, Synchronizer, syn["id"], "ldap", "password_sealed") == before
    # Same endpoint, written differently (order, case, the default port spelled out): kept.
    same = api("PUT", url, json={"servers": "LDAP1.test", "port": 389, "page_size": 50})
    assert same.status_code == 200, same.get_json()
    with app.app_context():
        assert vault.unseal(db.session.get(Synchronizer, syn["id"]).password_sealed) == BIND
    moved = api("PUT", url, json={"servers": "ldap2.test", "port": 1389, "security": "ldaps",
                                  "ca_file": cas[1], "password": "typed-again"})
    assert moved.status_code == 200, moved.get_json()
    with app.app_context():
        assert vault.unseal(db.session.get(Synchronizer, syn["id"]).password_sealed) == \
            "typed-again"


def test_a_synchronizer_password_is_not_sent_elsewhere_by_the_page(app, admin, ent, cas,
                                                                   sent):
    admin.post("/sync/new?kind=ldap", data=ldap_body(cas))
    with app.app_context():
        syn_id = db.session.scalar(select(Synchronizer.id))
    before = stored(app, Synchronizer, syn_id, "ldap", "password_sealed")
    for change in elsewhere(cas):
        body = ldap_body(cas, password="", **change)
        page = admin.post(f"/sync/{syn_id}", data=body, htmx=True)
        assert page.status_code == 422 and "type it again" in page.get_data(as_text=True)
        test = admin.post(f"/sync/test-ldap?syn_id={syn_id}", data=body, htmx=True)
        assert test.status_code == 422 and "type it again" in test.get_data(as_text=True)
    assert sent == []  # Test connection never reached the directory
    assert stored(app, Synchronizer, syn_id, "ldap", "password_sealed") == before
    test = admin.post(f"/sync/test-ldap?syn_id={syn_id}", data=ldap_body(cas, password=""),
                      htmx=True)
    assert test.status_code == 200
    assert sent == [(("ldap1.test",), None, "starttls", cas[0], BIND)]  # where it was typed
    test = admin.post(f"/sync/test-ldap?syn_id={syn_id}", htmx=True,
                      data=ldap_body(cas, servers="ldap2.test", password="typed-again"))
    assert test.status_code == 200 and sent[-1] == (("ldap2.test",), None, "starttls",
                                                     cas[0], "typed-again")


# --- external peers (their LDAP directory) ------------------------------------------------


def test_an_external_peers_password_is_not_sent_elsewhere(app, api, ent, cas):
    body = {**ldap_body(cas), "kind": "external", "description": "OCS", "days": 0}
    body["ldap_port"] = body.pop("port")
    peer = api("POST", f"/api/v1/peering/enterprises/{ent}/peers", json=body).get_json()
    url = f"/api/v1/peering/peers/{peer['id']}"
    before = stored(app, Peer, peer["id"], "ldap", "ldap_password_sealed")
    for change in ({"ldap_port": 1389}, {"servers": "ldap2.test"}, {"security": "none"}):
        assert fields(api("PUT", url, json=change)) == {"password": ("retype", RETYPE)}, change
    assert stored(app, Peer, peer["id"], "ldap", "ldap_password_sealed") == before
    assert api("PUT", url, json={"ldap_port": 1389, "password": BIND}).status_code == 200


# --- MiCollab peers: the peer key --------------------------------------------------------------


def mcs(**kw):
    return {"kind": "mcs", "description": "Peer one", "hostname": "peer.test", "port": "",
            "peer_eid": "bravo", "key": KEY, "dialing_prefix": "", "days": 1, "hour": 2,
            "minute": 30, "ampm": "AM", **kw}


KEY_RETYPE = ("Peer key: type it again for this hostname and port; the stored one is only "
              "sent to the peer it was typed for")


def test_a_peer_key_is_not_sent_to_another_address_by_the_api(app, api, ent):
    peer = api("POST", f"/api/v1/peering/enterprises/{ent}/peers", json=mcs()).get_json()
    url = f"/api/v1/peering/peers/{peer['id']}"
    before = stored(app, Peer, peer["id"], "hostname", "port", "key_sealed")
    for change in ({"hostname": "other.test"}, {"port": 8443}, {"hostname": "127.0.0.9"}):
        assert fields(api("PUT", url, json=change)) == {"key": ("retype", KEY_RETYPE)}, change
        assert stored(app, Peer, peer["id"], "hostname", "port", "key_sealed") == before
    assert api("PUT", url, json={"description": "Renamed", "hostname": "PEER.test",
                                 "port": 443}).status_code == 200  # the same peer: kept
    moved = api("PUT", url, json={"hostname": "other.test", "port": 8443, "key": "apk_new"})
    assert moved.status_code == 200, moved.get_json()
    with app.app_context():
        got = db.session.get(Peer, peer["id"])
        assert (got.hostname, got.port, vault.unseal(got.key_sealed)) == (
            "other.test", 8443, "apk_new")


def test_a_peer_key_is_not_sent_to_another_address_by_the_page(app, admin, ent, monkeypatch):
    asked = []

    def offered(hostname, port, key):
        asked.append((hostname, port, key))
        return [{"eid": "bravo", "name": "Bravo"}]
    monkeypatch.setattr(peering, "peer_enterprises", offered)
    admin.post("/peering/new", data=mcs())
    with app.app_context():
        peer_id = db.session.scalar(select(Peer.id))
    before = stored(app, Peer, peer_id, "hostname", "port", "key_sealed")
    for change in ({"hostname": "other.test"}, {"port": "8443"}):
        page = admin.post(f"/peering/{peer_id}", data=mcs(key="", **change), htmx=True)
        assert page.status_code == 422
        assert "Peer key: type it again" in page.get_data(as_text=True)
        pick = admin.post(f"/peering/enterprises?peer_id={peer_id}", htmx=True,
                          data={"hostname": "peer.test", "port": "", "key": "", **change})
        assert pick.status_code == 422
        assert "Peer key: type it again" in pick.get_data(as_text=True)
    assert asked == []  # Select Enterprise never called the other address
    assert stored(app, Peer, peer_id, "hostname", "port", "key_sealed") == before
    pick = admin.post(f"/peering/enterprises?peer_id={peer_id}", htmx=True,
                      data={"hostname": "peer.test", "port": "", "key": ""})
    assert pick.status_code == 200 and asked == [("peer.test", 443, KEY)]
    pick = admin.post(f"/peering/enterprises?peer_id={peer_id}", htmx=True,
                      data={"hostname": "other.test", "port": "", "key": "apk_typed"})
    assert pick.status_code == 200 and asked[-1] == ("other.test", 443, "apk_typed")


# --- network elements: the administrator password --------------------------------------------


def test_an_elements_password_is_not_kept_for_another_address(app, api):
    url = "/api/v1/network-elements/elements"
    e = api("POST", url, json={"name": "MiVB 1", "platform": "MiVoice Business",
                               "address": "10.0.0.5", "port": 443, "username": "system",
                               "password": "element-secret"}).get_json()
    before = stored(app, Element, e["id"], "address", "port", "password_sealed")
    for change in ({"address": "10.0.0.6"}, {"port": 8443}):
        assert fields(api("PUT", f"{url}/{e['id']}", json=change))["password"][0] == "retype"
        assert stored(app, Element, e["id"], "address", "port", "password_sealed") == before
    assert api("PUT", f"{url}/{e['id']}", json={"description": "Lab"}).status_code == 200
    moved = api("PUT", f"{url}/{e['id']}", json={"address": "10.0.0.6", "password": "new"})
    assert moved.status_code == 200, moved.get_json()
    with app.app_context():
        got = db.session.get(Element, e["id"])
        assert (got.address, vault.unseal(got.password_sealed)) == ("10.0.0.6", "new")
