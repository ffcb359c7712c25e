"""Enterprises, trusted servers and the header's enterprise list box: pages and API."""

import json

from sqlalchemy import func, select

from appliance.db import db
from appliance.directory import replace_source
from appliance.models import AuditEntry, Contact, Enterprise, TrustedServer


def _add(admin, name, eid, htmx=False):
    return admin.post("/enterprises", data={"name": name, "eid": eid}, htmx=htmx)


def test_add_through_the_htmx_form(admin):
    resp = _add(admin, "Acme Corp", "acme-01", htmx=True)
    assert resp.status_code == 204
    assert json.loads(resp.headers["HX-Location"])["path"] == "/enterprises"
    assert resp.headers["HX-Trigger"] == "enterprises-changed"
    page = admin.get("/enterprises").get_data(as_text=True)
    assert "Acme Corp" in page and "acme-01" in page
    assert "Enterprise Acme Corp (acme-01) added and selected." in page


def test_bad_enterprise_id_comes_back_beside_the_field_with_what_was_typed(app, admin):
    resp = _add(admin, "Acme Corp", "ac me", htmx=True)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert 'id="add-enterprise"' in html  # only the form block
    assert "Enterprise ID cannot contain spaces, vertical bars, commas, semicolons, or colons" \
        in html
    assert 'value="Acme Corp"' in html and 'value="ac me"' in html
    assert 'aria-invalid="true"' in html
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Enterprise)) == 0


def test_enterprise_id_is_unique_ignoring_case(admin):
    _add(admin, "One", "acme")
    resp = _add(admin, "Two", "ACME", htmx=True)
    assert resp.status_code == 422 and "Enterprise ID is already in use" in resp.get_data(True)


def test_edit_keeps_state_on_a_bad_save(app, admin):
    _add(admin, "Acme", "acme")
    with app.app_context():
        ent_id = db.session.scalar(select(Enterprise.id))
    bad = admin.post(f"/enterprises/{ent_id}", data={"name": "Renamed", "eid": "x;y"}, htmx=True)
    assert bad.status_code == 422
    with app.app_context():
        ent = db.session.get(Enterprise, ent_id)
        assert (ent.name, ent.eid) == ("Acme", "acme")
    ok = admin.post(f"/enterprises/{ent_id}", data={"name": "Renamed", "eid": "acme-2"})
    assert ok.status_code == 302
    with app.app_context():
        assert db.session.get(Enterprise, ent_id).eid == "acme-2"


def test_trusted_servers(app, admin):
    _add(admin, "Acme", "acme")
    with app.app_context():
        ent_id = db.session.scalar(select(Enterprise.id))
    url = f"/enterprises/{ent_id}/trusted"
    ok = admin.post(url, data={"address": "peer.example.com", "description": "Peer"}, htmx=True)
    assert ok.status_code == 200 and "peer.example.com" in ok.get_data(as_text=True)
    assert admin.post(url, data={"address": "10.1.2.3"}, htmx=True).status_code == 200
    bad = admin.post(url, data={"address": "not a host"}, htmx=True)
    assert bad.status_code == 422
    assert "IP address/hostname must be an IP address or a hostname" in bad.get_data(True)
    dup = admin.post(url, data={"address": "PEER.example.com"}, htmx=True)
    assert "This server is already trusted" in dup.get_data(True)
    with app.app_context():
        tid = db.session.scalar(select(TrustedServer.id).where(TrustedServer.address == "10.1.2.3"))
    gone = admin.post(f"/enterprises/{ent_id}/trusted/{tid}/delete", htmx=True)
    assert "10.1.2.3" not in gone.get_data(as_text=True)
    with app.app_context():
        assert [t.address for t in db.session.get(Enterprise, ent_id).trusted_servers] == \
            ["peer.example.com"]


def test_delete_removes_what_belongs_to_the_enterprise(app, admin):
    _add(admin, "Acme", "acme")
    _add(admin, "Other", "other")
    with app.app_context():
        acme = db.session.scalar(select(Enterprise).where(Enterprise.eid == "acme"))
        other = db.session.scalar(select(Enterprise).where(Enterprise.eid == "other"))
        rows = [{"external_id": str(i), "last_name": f"L{i}"} for i in range(3)]
        replace_source(Contact, acme, "test:1", "Test", rows)
        replace_source(Contact, other, "test:1", "Test", rows)
        acme_id, other_id = acme.id, other.id
    page = admin.get(f"/enterprises/{acme_id}").get_data(as_text=True)
    assert "3 contacts" in page  # the confirmation says what goes with it
    assert admin.post(f"/enterprises/{acme_id}/delete").status_code == 302
    with app.app_context():
        assert db.session.get(Enterprise, acme_id) is None
        left = db.session.scalars(select(Contact.enterprise_id)).all()
        assert len(left) == 3 and set(left) == {other_id}


def test_header_list_box_selects_the_current_enterprise(app, admin):
    _add(admin, "Alpha", "alpha")
    _add(admin, "Beta", "beta")
    with app.app_context():
        alpha = db.session.scalar(select(Enterprise.id).where(Enterprise.eid == "alpha"))
    resp = admin.post("/session/enterprise", data={"enterprise_id": alpha}, htmx=True,
                      headers={"HX-Current-URL": "http://localhost/directory?sort=email"})
    assert resp.status_code == 204  # htmx reloads the page the admin is on into #main
    assert json.loads(resp.headers["HX-Location"]) == {"path": "/directory?sort=email",
                                                       "target": "#main"}
    elsewhere = admin.post("/session/enterprise", data={"enterprise_id": alpha}, htmx=True,
                           headers={"HX-Current-URL": "http://evil.example/x"})
    assert json.loads(elsewhere.headers["HX-Location"])["path"] == "/"
    page = admin.get("/directory").get_data(as_text=True)
    assert f'<option value="{alpha}" selected>Alpha (alpha)</option>' in page
    assert "Corporate Directory of <strong>Alpha</strong>" in page
    # The refresh of #main renders only the content block.
    part = admin.get("/directory", htmx=True, headers={"HX-Target": "main"}).get_data(True)
    assert "<h1>Corporate Directory" in part and "<header" not in part
    assert admin.post("/session/enterprise", data={"enterprise_id": 999}).status_code == 404


def test_api_crud(app, api):
    created = api("POST", "/api/v1/enterprises", json={"name": "Acme", "eid": "acme"})
    assert created.status_code == 201
    ent = created.get_json()
    assert api("GET", f"/api/v1/enterprises/{ent['id']}").get_json()["eid"] == "acme"
    bad = api("PUT", f"/api/v1/enterprises/{ent['id']}", json={"eid": "ab:cd"})
    assert bad.status_code == 422
    assert bad.get_json()["fields"] == [{
        "field": "eid", "rule": "forbidden_characters",
        "message": "Enterprise ID cannot contain spaces, vertical bars, commas, semicolons, "
                   "or colons ( | , ; : )"}]
    assert api("PUT", f"/api/v1/enterprises/{ent['id']}", json={"name": "Acme 2"}).status_code \
        == 200
    listing = api("GET", "/api/v1/enterprises?q=acme").get_json()
    assert listing["total"] == 1 and listing["items"][0]["name"] == "Acme 2"
    t = api("POST", f"/api/v1/enterprises/{ent['id']}/trusted-servers",
            json={"address": "192.0.2.7"})
    assert t.status_code == 201
    assert api("DELETE", f"/api/v1/enterprises/{ent['id']}/trusted-servers/"
               f"{t.get_json()['id']}").status_code == 204
    assert api("DELETE", f"/api/v1/enterprises/{ent['id']}").status_code == 204
    missing = api("GET", f"/api/v1/enterprises/{ent['id']}")
    assert missing.status_code == 404 and missing.get_json()["error"] == "not_found"


def test_api_rejects_a_body_that_is_not_an_object(api):
    resp = api("POST", "/api/v1/enterprises", data="nope", content_type="application/json")
    assert resp.status_code == 422 and resp.get_json()["error"] == "invalid"


def test_changes_are_audited_without_secrets(app, admin):
    _add(admin, "Acme", "acme")
    with app.app_context():
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.object_type == "enterprise"))
        assert (entry.username, entry.action, entry.object_label) == ("admin", "create", "acme")
        after = json.loads(entry.summary)["after"]
        assert after == {"name": "Acme", "eid": "acme", "im_domain": None}
        setup = db.session.scalar(select(AuditEntry).where(
            AuditEntry.object_type == "administrator"))
        assert setup is None or "password" not in setup.summary
    page = admin.get("/audit?action=create&object_type=enterprise").get_data(as_text=True)
    assert "acme" in page
    assert "No entries." in admin.get("/audit?action=delete").get_data(as_text=True)


def test_enterprise_list_sorts_searches_and_pages(app, admin, make_app):
    for i in range(60):
        _add(admin, f"Ent {i:02d}", f"ent-{i:02d}")
    first = admin.get("/enterprises?sort=eid&dir=desc", htmx=True,
                      headers={"HX-Target": "enterprise-table"}).get_data(as_text=True)
    assert first.index("ent-59") < first.index("ent-58")
    assert "page 1 of 2" in first and "<header" not in first
    second = admin.get("/enterprises?sort=eid&dir=desc&page=2", htmx=True).get_data(True)
    assert "<code>ent-00</code>" in second and "<code>ent-59</code>" not in second
    found = admin.get("/enterprises?q=ent-4").get_data(as_text=True)
    assert "10 results" in found
