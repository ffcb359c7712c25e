"""External peers: an IM server's AD/LDAP directory read through the host's LDAP reader,
against a real slapd."""

import pytest

from appliance.db import db
from appliance.models import Contact
from tests.ldap_server import IMPORT_CA, PEOPLE_DN, READER_DN, READER_PASSWORD, Slapd


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    with Slapd(tmp_path_factory.mktemp("slapd"), people=20) as server:
        yield server




def ldap(slapd, **kw):
    """An external server's directory: `slapd`, its CA certificate in the import directory."""
    return {"servers": "localhost", "ldap_port": slapd.ldap_port, "security": "starttls",
            "ca_file": IMPORT_CA, "bind_dn": READER_DN, "password": READER_PASSWORD,
            "base_dn": PEOPLE_DN, "filter": "(objectClass=inetOrgPerson)", "scope": "sub",
            "page_size": 7, "preset": "OpenLDAP", **kw}


def peer(slapd, **kw):
    return {"kind": "external", "description": "OCS", "days": 1, "hour": 3, "minute": 0,
            "ampm": "AM", **ldap(slapd), **kw}


def sync(app, api, peer_id):
    run = api("POST", f"/api/v1/peering/peers/{peer_id}/sync").get_json()
    with app.app_context():
        return app.extensions["appliance"].jobs.wait(run["run_id"])


def test_test_connection_shows_mapped_entries_or_the_reason(api, slapd, ca):
    body = {**ldap(slapd), "port": slapd.ldap_port}
    del body["ldap_port"]
    resp = api("POST", "/api/v1/peering/test-ldap", json=body)
    assert resp.status_code == 200, resp.get_json()
    first = resp.get_json()["entries"][0]
    assert first["login"].startswith("user") and first["email"].endswith("@example.test")
    assert len(first["external_id"]) == 36  # entryUUID
    wrong = api("POST", "/api/v1/peering/test-ldap", json={**body, "password": "nope-nope"})
    assert wrong.status_code == 502 and wrong.get_json()["error"] == "credentials"
    assert "nope-nope" not in wrong.get_data(as_text=True)


def test_test_connection_button_on_the_page(admin, ent, slapd, ca):
    html = admin.post("/peering/test-ldap", data=ldap(slapd), htmx=True).get_data(as_text=True)
    assert "Connected. The first 5 entries" in html and "First0" in html
    html = admin.post("/peering/test-ldap", data=ldap(slapd, base_dn="ou=nowhere,dc=example,"
                                                  "dc=test"), htmx=True).get_data(as_text=True)
    assert "does not exist" in html


def test_sync_imports_the_directory_and_a_failure_removes_nothing(app, api, ent, slapd, ca):
    created = api("POST", f"/api/v1/peering/enterprises/{ent}/peers", json=peer(slapd))
    assert created.status_code == 201, created.get_json()
    p = created.get_json()
    assert p["server"] == "N/A" and p["status"] == "N/A" and p["password_set"] is True
    run = sync(app, api, p["id"])
    assert run.state == "succeeded", run.message
    with app.app_context():
        rows = db.session.query(Contact).filter_by(source=p["source"]).all()
        assert len(rows) == 20 and {r.source_label for r in rows} == {"OCS"}
        assert {r.im_address for r in rows} == {f"user{i}@example.test" for i in range(20)}

    # The directory becomes unreachable: the sync fails and the 20 contacts stay.
    moved = api("PUT", f"/api/v1/peering/peers/{p['id']}", json={  # a new port: typed again
        "ldap_port": 1, "password": READER_PASSWORD})
    assert moved.status_code == 200, moved.get_json()
    run = sync(app, api, p["id"])
    assert run.state == "failed" and "Nothing was changed" in run.message
    assert ".." not in run.message
    with app.app_context():
        assert db.session.query(Contact).filter_by(source=p["source"]).count() == 20


def test_a_directory_that_shrinks_past_the_threshold_needs_confirming(app, api, ent, slapd, ca):
    p = api("POST", f"/api/v1/peering/enterprises/{ent}/peers", json=peer(slapd)).get_json()
    assert sync(app, api, p["id"]).state == "succeeded"
    api("PUT", f"/api/v1/peering/peers/{p['id']}", json={"filter": "(uid=user1)"})
    run = sync(app, api, p["id"])
    assert run.state == "failed" and "safety threshold" in run.message
    with app.app_context():
        assert db.session.query(Contact).filter_by(source=p["source"]).count() == 20
    run = api("POST", f"/api/v1/peering/peers/{p['id']}/sync?allow_drop=1").get_json()
    with app.app_context():
        assert app.extensions["appliance"].jobs.wait(run["run_id"]).state == "succeeded"
        assert db.session.query(Contact).filter_by(source=p["source"]).count() == 1


def test_sync_announces_contacts_imported_and_works_without_federation(make_app, slapd):
    """Peering calls the host's contacts-imported event; federation left out breaks nothing."""
    from appliance import hookimpl
    from appliance.models import Enterprise
    from appliance.plugins.peering import service

    seen = []

    class Recorder:
        @hookimpl
        def appliance_contacts_imported(self, enterprise, source, result):
            seen.append((enterprise.eid, source, result.added))

    app = make_app(DISABLE_PLUGINS="federation", EXTRA_PLUGINS=[("recorder", Recorder())])
    assert not app.extensions["appliance"].plugins.enabled("federation")
    slapd.ca_into(app.config["IMPORT_DIR"])
    with app.test_request_context():
        ent = Enterprise(eid="acme", name="Acme")
        db.session.add(ent)
        db.session.commit()
        p, _ = service.save(ent, peer(slapd))
        jobs = app.extensions["appliance"].jobs
        run, _ = jobs.submit(service.KIND, p.source)
        assert jobs.wait(run.id).state == "succeeded"
        assert seen == [("acme", p.source, 20)]
