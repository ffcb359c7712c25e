"""Network elements and user provisioning (seed 004), in process."""

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from appliance import hookimpl
from appliance.db import db
from appliance.plugins.network_elements import flow
from appliance.plugins.network_elements.models import Change

PLATFORM_METHODS = {
    "MiVoice Business": ["flow_through", "bulk", "ids", "manual"],
    "MiVoice Office 250": ["bulk", "manual"],
    "MiVoice Office 400": ["bulk", "manual"],
    "MiVoice 5000": ["platform", "ids"],
    "MiVoice MX-ONE": ["platform", "ids"],
}


#: What a form whose hx-target is #main sends (the page's content comes back, not a table).
MAIN = {"HX-Target": "main"}


class Connectors:
    """A test plugin (EXTRA_PLUGINS) offering the flow-through connectors a test adds."""

    def __init__(self):
        self.offered = []

    @hookimpl
    def appliance_flow_connectors(self):
        return self.offered


@pytest.fixture
def connectors():
    return Connectors()


@pytest.fixture
def app(make_app, connectors):
    return make_app(EXTRA_PLUGINS=[("test_connectors", connectors)])


def use_connector(api, connectors, connector, element_name="MiVB-1"):
    """Offer `connector` and have the element deliver through it."""
    connectors.offered.append(connector)
    e = next(e for e in api("GET", "/api/v1/network-elements/elements").get_json()["items"]
             if e["name"] == element_name)
    resp = api("PUT", f"/api/v1/network-elements/elements/{e['id']}",
               json={"connector": connector.name})
    assert resp.status_code == 200, resp.get_json()


def element(api, name, platform, address="10.0.0.5"):
    resp = api("POST", "/api/v1/network-elements/elements",
               json={"name": name, "platform": platform, "address": address})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


@pytest.fixture
def site(api):
    """A MiVB and a MiVoice 5000 element, a location, two departments, licences, a template
    and a role."""
    element(api, "MiVB-1", "MiVoice Business")
    element(api, "MV5000-1", "MiVoice 5000")
    api("POST", "/api/v1/network-elements/locations", json={"name": "Ottawa"})
    for d in ("Sales", "Support"):
        api("POST", "/api/v1/network-elements/departments", json={"name": d})
    api("PUT", "/api/v1/network-elements/licences", json={"items": [
        {"type": "MiCollab Client", "available": 3}, {"type": "NuPoint Voice Mail",
                                                      "available": 1}]})
    t = api("POST", "/api/v1/network-elements/templates", json={
        "name": "Sales staff", "kind": "template", "department": "Sales",
        "location": "Ottawa", "services": ["MiCollab Client", "NuPoint Voice Mail"]})
    assert t.status_code == 201, t.get_json()
    r = api("POST", "/api/v1/network-elements/templates", json={
        "name": "Agent", "kind": "role", "services": ["MiCollab Client"]})
    assert r.status_code == 201, r.get_json()


def add_user(api, **kw):
    return api("POST", "/api/v1/network-elements/users", json={
        "login": "ann", "first_name": "Ann", "last_name": "Lee", "element": "MiVB-1", **kw})


@pytest.mark.parametrize("platform,methods", PLATFORM_METHODS.items())
def test_each_platform_offers_exactly_its_methods(api, admin, platform, methods):
    e = element(api, "E1", platform)
    assert [m["method"] for m in e["methods"]] == methods
    recommended = [m["method"] for m in e["methods"] if m["recommended"]]
    assert recommended == (["flow_through"] if platform == "MiVoice Business" else [])
    page = admin.get(f"/network-elements/elements/{e['id']}").get_data(as_text=True)
    if platform == "MiVoice Business":
        assert "Flow Through Provisioning — <strong>recommended</strong>" in page
    for label in ("Flow Through Provisioning", "Bulk Import from File", "Provisioning with IDS",
                  "Manually provision users", "Provision from management platform"):
        offered = any(m["label"] == label for m in e["methods"])
        assert (label in page.split('id="methods"')[1]) is offered


def test_element_fields_are_validated(api):
    resp = api("POST", "/api/v1/network-elements/elements",
               json={"name": "", "platform": "Asterisk", "address": "not a host!", "port": 0})
    fields = {f["field"] for f in resp.get_json()["fields"]}
    assert resp.status_code == 422 and fields == {"name", "platform", "address", "port"}


def test_template_is_applied_and_visible_on_the_user(api, admin, site):
    resp = add_user(api, template="Sales staff")
    assert resp.status_code == 201, resp.get_json()
    u = resp.get_json()
    assert u["services"] == ["MiCollab Client", "NuPoint Voice Mail"]
    assert (u["department"], u["location"], u["template"]) == ("Sales", "Ottawa", "Sales staff")
    page = admin.get(f"/network-elements/users/{u['id']}").get_data(as_text=True)
    assert "Template: Sales staff" in page


def test_a_change_beyond_a_licence_is_refused_naming_it(api, site):
    assert add_user(api, template="Sales staff").status_code == 201  # takes the 1 voice mail
    resp = add_user(api, login="bo", template="Sales staff")
    assert resp.status_code == 422
    [f] = resp.get_json()["fields"]
    assert f["rule"] == "licence" and f["message"] == (
        "Licence NuPoint Voice Mail: 1 available and 1 in use; this user needs one more")
    licences = {r["type"]: r for r in api("GET", "/api/v1/network-elements/licences")
                .get_json()["items"]}
    assert licences["NuPoint Voice Mail"]["in_use"] == 1
    assert licences["MiCollab Client"] == {"type": "MiCollab Client", "available": 3,
                                           "in_use": 1}


def test_a_location_or_department_in_use_says_by_whom(api, site):
    add_user(api, department="Support")
    deps = {d["name"]: d for d in api("GET", "/api/v1/network-elements/departments")
            .get_json()["items"]}
    resp = api("DELETE", f"/api/v1/network-elements/departments/{deps['Support']['id']}")
    assert resp.status_code == 409 and resp.get_json()["error"] == "in_use"
    assert "The department Support is in use by 1 user(s): ann" in resp.get_json()["message"]
    locs = api("GET", "/api/v1/network-elements/locations").get_json()["items"]
    resp = api("DELETE", f"/api/v1/network-elements/locations/{locs[0]['id']}")
    assert "template(s)/role(s): Sales staff" in resp.get_json()["message"]


def _templates(api):
    return {t["name"]: t for t in api("GET", "/api/v1/network-elements/templates")
            .get_json()["items"]}


def test_a_changed_template_applies_to_users_provisioned_afterwards(api, site):
    before = add_user(api, template="Sales staff").get_json()
    tid = _templates(api)["Sales staff"]["id"]
    resp = api("PUT", f"/api/v1/network-elements/templates/{tid}", json={
        "name": "Sales staff", "kind": "template", "department": "Support",
        "services": ["MiCollab Client"]})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json() == {"id": tid, "name": "Sales staff", "kind": "template",
                               "services": ["MiCollab Client"], "location": None,
                               "department": "Support"}
    users = {u["login"]: u for u in api("GET", "/api/v1/network-elements/users")
             .get_json()["items"]}
    assert users["ann"] == before  # provisioned before the change: kept as it was
    bob = add_user(api, login="bob", template="Sales staff").get_json()
    assert (bob["services"], bob["department"], bob["location"]) == (
        ["MiCollab Client"], "Support", None)


def test_a_template_in_use_keeps_its_kind_and_cannot_be_deleted(api, site):
    add_user(api, template="Sales staff")
    tid = _templates(api)["Sales staff"]["id"]
    resp = api("PUT", f"/api/v1/network-elements/templates/{tid}", json={
        "name": "Sales staff", "kind": "role", "services": ["MiCollab Client"]})
    assert resp.status_code == 422
    assert resp.get_json()["fields"] == [{
        "field": "kind", "rule": "in_use",
        "message": "The template Sales staff is in use by 1 user(s): it cannot become a role"}]
    assert _templates(api)["Sales staff"]["services"] == ["MiCollab Client",
                                                          "NuPoint Voice Mail"]  # unchanged
    assert api("DELETE", f"/api/v1/network-elements/templates/{tid}").status_code == 409
    agent = _templates(api)["Agent"]["id"]  # nobody has it: any change goes
    assert api("PUT", f"/api/v1/network-elements/templates/{agent}", json={
        "name": "Agent", "kind": "template"}).status_code == 200
    assert api("DELETE", f"/api/v1/network-elements/templates/{agent}").status_code == 204
    assert set(_templates(api)) == {"Sales staff"}


def test_template_page_edits_a_template(admin, api, site):
    tid = _templates(api)["Sales staff"]["id"]
    page = admin.get(f"/network-elements/templates/{tid}").get_data(as_text=True)
    assert "Change the template Sales staff" in page
    assert 'value="NuPoint Voice Mail" checked' in page
    bad = admin.post(f"/network-elements/templates/{tid}", data={
        "name": "Sales staff", "kind": "template", "location": "Nowhere"}, htmx=True,
        headers=MAIN)
    assert bad.status_code == 422 and "Unknown location Nowhere" in bad.get_data(as_text=True)
    assert _templates(api)["Sales staff"]["location"] == "Ottawa"  # nothing saved
    ok = admin.post(f"/network-elements/templates/{tid}", data={
        "name": "Sales", "kind": "template", "location": "",
        "services": ["MiCollab Client", "Teleworker"]})
    assert ok.status_code in (302, 303)
    t = _templates(api)["Sales"]
    assert (t["services"], t["location"], t["department"]) == (
        ["MiCollab Client", "Teleworker"], None, None)


def test_a_location_is_renamed_through_the_api(api, site):
    loc = api("GET", "/api/v1/network-elements/locations").get_json()["items"][0]
    resp = api("PUT", f"/api/v1/network-elements/locations/{loc['id']}",
               json={"name": "Kanata"})
    assert resp.status_code == 200 and resp.get_json()["name"] == "Kanata"
    assert _templates(api)["Sales staff"]["location"] == "Kanata"
    api("POST", "/api/v1/network-elements/locations", json={"name": "Ottawa"})
    clash = api("PUT", f"/api/v1/network-elements/locations/{loc['id']}",
                json={"name": "ottawa"})
    assert clash.status_code == 422


def test_manual_users_need_an_element_that_offers_it(api, site):
    resp = add_user(api, element="MV5000-1")
    [f] = resp.get_json()["fields"]
    assert f["field"] == "element" and "MiVoice 5000 does not offer Manually provision users" \
        in f["message"]


def test_user_rules(api, site):
    bad = add_user(api, login="has space", last_name="", number="12a", services="Fax",
                   department="Nowhere", email="x\x01y")
    fields = {f["field"] for f in bad.get_json()["fields"]}
    assert {"login", "last_name", "number", "email"} <= fields
    assert add_user(api).status_code == 201
    dup = add_user(api, login="ANN")
    assert dup.get_json()["fields"][0]["message"] == "Login ANN is already provisioned"


def test_flow_through_delivers_to_the_file_connector(app, api, site, tmp_path):
    uid = add_user(api, template="Sales staff", number="2001").get_json()["id"]
    api("PUT", f"/api/v1/network-elements/users/{uid}", json={"first_name": "Annie"})
    api("DELETE", f"/api/v1/network-elements/users/{uid}")
    queue = api("GET", "/api/v1/network-elements/flow-through").get_json()["items"]
    assert [(c["action"], c["state"]) for c in reversed(queue)] == [
        ("add", "pending"), ("update", "pending"), ("delete", "pending")]
    with app.test_request_context():
        assert flow.deliver() == {"delivered": 3, "failed": 0}
    [written] = list((Path(app.config["DATA_DIR"]) / "flow-through").rglob("*.csv"))
    rows = list(csv.DictReader(written.open()))
    assert [(r["action"], r["login"], r["first_name"]) for r in rows] == [
        ("add", "ann", "Ann"), ("update", "ann", "Annie"), ("delete", "ann", "Annie")]
    assert rows[0]["services"] == "MiCollab Client;NuPoint Voice Mail"
    assert rows[0]["department"] == "Sales" and rows[0]["number"] == "2001"


def test_flow_through_failures_are_retried_then_kept_with_the_error(app, api, site):
    add_user(api)
    with app.test_request_context():
        e = db.session.scalar(select(Change)).element_id
        from appliance.plugins.network_elements.models import Element
        db.session.get(Element, e).connector = "gone"
        db.session.commit()
        for _ in range(flow.MAX_ATTEMPTS):
            flow.deliver()
        c = db.session.scalar(select(Change))
        assert c.state == "failed" and c.attempts == flow.MAX_ATTEMPTS
        assert "no flow-through connector named 'gone'" in c.error
        db.session.get(Element, e).connector = "file"
        db.session.commit()
    assert api("POST", "/api/v1/network-elements/flow-through/retry").get_json() == {
        "requeued": 1}
    with app.test_request_context():
        assert flow.deliver() == {"delivered": 1, "failed": 0}


def test_flow_through_delivers_in_batches_and_a_refused_batch_holds_back_the_rest(
        app, api, site, connectors, monkeypatch):
    for i in range(5):
        add_user(api, login=f"u{i}")
    calls = []

    class Flaky:
        name = "flaky"

        def deliver(self, element, changes):
            calls.append([c["login"] for c in changes])
            if len(calls) == 2:
                raise OSError("element busy")

    use_connector(api, connectors, Flaky())
    monkeypatch.setattr(flow, "BATCH", 2)
    with app.test_request_context():
        assert flow.deliver() == {"delivered": 2, "failed": 2}
        assert calls == [["u0", "u1"], ["u2", "u3"]]  # u4 waits behind the refused batch
        states = dict(db.session.execute(select(Change.login, Change.state)).all())
        assert states == {"u0": "delivered", "u1": "delivered", "u2": "pending",
                          "u3": "pending", "u4": "pending"}
        assert flow.deliver() == {"delivered": 3, "failed": 0}
        assert calls[2:] == [["u2", "u3"], ["u4"]]


def test_management_platform_endpoint(app, client, api, site):
    mv = next(e for e in api("GET", "/api/v1/network-elements/elements").get_json()["items"]
              if e["name"] == "MV5000-1")
    token = api("POST", f"/api/v1/network-elements/elements/{mv['id']}/token").get_json()["token"]

    def call(method, login, body=None, tok=token):
        return client.open(f"/api/v1/network-elements/platform/users/{login}", method=method,
                           json=body, headers={"Authorization": f"Bearer {tok}"})

    assert call("PUT", "bo", {"last_name": "Kim"}, tok="ane_wrong").status_code == 401
    no_role = call("PUT", "bo", {"last_name": "Kim"})
    assert no_role.status_code == 422 and no_role.get_json()["fields"][0]["field"] == "role"
    made = call("PUT", "bo", {"last_name": "Kim", "role": "Agent", "number": "3001"})
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["template"] == "Agent" and made.get_json()["origin"] == "platform"
    assert made.get_json()["services"] == ["MiCollab Client"]
    assert call("PUT", "bo", {"last_name": "Kimura", "role": "Agent"}).status_code == 200
    users = api("GET", "/api/v1/network-elements/users").get_json()["items"]
    assert [(u["login"], u["last_name"], u["element"]) for u in users] == [
        ("bo", "Kimura", "MV5000-1")]
    assert call("DELETE", "bo").status_code == 204
    assert api("GET", "/api/v1/network-elements/users").get_json()["items"] == []
    with app.app_context():
        from appliance.models import AuditEntry
        assert [(a.username, a.action) for a in db.session.scalars(select(AuditEntry).where(
            AuditEntry.object_type == "user").order_by(AuditEntry.id))] == [
            ("platform:MV5000-1", "create"), ("platform:MV5000-1", "update"),
            ("platform:MV5000-1", "delete")]
    # An admin's token is not an element's; a MiVB element cannot provision this way.
    mivb = next(e for e in api("GET", "/api/v1/network-elements/elements").get_json()["items"]
                if e["name"] == "MiVB-1")
    mivb_token = api("POST", f"/api/v1/network-elements/elements/{mivb['id']}/token") \
        .get_json()["token"]
    assert call("PUT", "cy", {"last_name": "X", "role": "Agent"}, tok=mivb_token) \
        .status_code == 403


def test_pages_render(admin, site):
    for url in ("/network-elements/", "/network-elements/licences",
                "/network-elements/locations", "/network-elements/departments",
                "/network-elements/templates", "/network-elements/users",
                "/network-elements/users/new", "/network-elements/flow",
                "/network-elements/elements/new"):
        resp = admin.get(url)
        assert resp.status_code == 200, url
    resp = admin.post("/network-elements/departments", data={"name": "Sales"}, htmx=True,
                      headers=MAIN)
    assert resp.status_code == 422 and "A department with this name exists" in \
        resp.get_data(as_text=True)


def test_ids_seeds_users_on_mivb_and_contacts_on_mx_one(app, api, site, tmp_path):
    from tests.ldap_server import IMPORT_CA, PEOPLE_DN, READER_DN, READER_PASSWORD, Slapd

    api("PUT", "/api/v1/network-elements/licences", json={"items": [
        {"type": "MiCollab Client", "available": 100}]})
    mxone = element(api, "MX-1", "MiVoice MX-ONE")
    mivb = next(e for e in api("GET", "/api/v1/network-elements/elements").get_json()["items"]
                if e["name"] == "MiVB-1")
    ent = api("POST", "/api/v1/enterprises", json={"name": "Acme", "eid": "acme"}).get_json()
    with Slapd(tmp_path / "slapd", people=12) as slapd:
        slapd.ca_into(app.config["IMPORT_DIR"])
        ldap = {"servers": "localhost", "port": slapd.ldap_port, "security": "starttls",
                "ca_file": IMPORT_CA, "bind_dn": READER_DN,
                "password": READER_PASSWORD, "base_dn": PEOPLE_DN,
                "filter": "(objectClass=inetOrgPerson)", "scope": "sub", "page_size": 5,
                "preset": "OpenLDAP"}
        missing = api("PUT", f"/api/v1/network-elements/elements/{mxone['id']}/ids", json=ldap)
        assert missing.status_code == 422  # contacts need the enterprise they go to
        assert api("PUT", f"/api/v1/network-elements/elements/{mxone['id']}/ids",
                   json={**ldap, "enterprise_id": ent["id"]}).status_code == 200
        assert api("PUT", f"/api/v1/network-elements/elements/{mivb['id']}/ids",
                   json={**ldap, "template": "Agent"}).status_code == 200
        with app.app_context():
            jobs = app.extensions["appliance"].jobs
            for e in (mivb, mxone):
                run = api("POST", f"/api/v1/network-elements/elements/{e['id']}/ids/run")
                assert jobs.wait(run.get_json()["run_id"]).state == "succeeded"
    users = api("GET", "/api/v1/network-elements/users").get_json()["items"]
    assert len(users) == 12 and {u["origin"] for u in users} == {"ids"}
    assert {u["template"] for u in users} == {"Agent"} and users[0]["element"] == "MiVB-1"
    contacts = api("GET", f"/api/v1/enterprises/{ent['id']}/contacts").get_json()
    assert contacts["total"] == 12
    assert {c["source"] for c in contacts["items"]} == {f"ids:{mxone['id']}"}
    # MiVoice Office 250 has no IDS.
    mivo = element(api, "MiVO-1", "MiVoice Office 250")
    resp = api("PUT", f"/api/v1/network-elements/elements/{mivo['id']}/ids", json=ldap)
    assert resp.status_code == 422 and "does not offer IDS" in resp.get_json()["message"]


def test_bulk_tool_pages_preview_apply_report_and_export(app, admin, api, site):
    import io
    import re

    csv_text = ("login,first_name,last_name,email,number,element,location,department,"
                "template,services\n"
                "ann,Ann,Lee,ann@x.test,2001,MiVB-1,,,Agent,\n"
                "bo,Bo,,bo@x.test,2002,MiVB-1,,,Agent,\n"
                "cy,Cy,Kim,cy@x.test,2003,MiVB-1,,Nowhere,Agent,\n")

    def wait(resp):
        assert resp.status_code == 204, resp.get_data(as_text=True)
        url = re.search(r'"path": "([^"]+)"', resp.headers["HX-Location"]).group(1)
        with app.app_context():
            app.extensions["appliance"].jobs.wait(int(url.rsplit("/", 1)[1]))
        return url, admin.get(url).get_data(as_text=True)

    url, page = wait(admin.post("/network-elements/bulk/preview", htmx=True, data={
        "file": (io.BytesIO(csv_text.encode()), "users.csv")},
        content_type="multipart/form-data"))
    assert "<strong>1</strong> to add" in page and "<strong>2</strong> rejected" in page
    assert "<strong>0</strong> to update" in page and "disabled>Apply" not in page
    assert "Last name is required" in page and "Unknown department Nowhere" in page
    assert api("GET", "/api/v1/network-elements/users").get_json()["items"] == []
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    defaults = re.search(r'name="defaults" value="([^"]*)"', page).group(1)
    url, page = wait(admin.post("/network-elements/bulk/apply", htmx=True, data={
        "token": token, "fmt": "csv", "defaults": defaults.replace("&#34;", '"')}))
    assert "<strong>1</strong> added" in page
    report = admin.get(url + "/report.csv").get_data(as_text=True)
    assert report.splitlines()[0] == "line,login,action,reasons" and "rejected" in report
    export = admin.get("/network-elements/users/export.csv").get_data(as_text=True)
    assert export.splitlines()[1].startswith("ann,Ann,Lee,ann@x.test,2001,MiVB-1")


def test_names_match_ignoring_case_beyond_ascii(api, site):
    api("POST", "/api/v1/network-elements/departments", json={"name": "Équipe"})
    dup = api("POST", "/api/v1/network-elements/departments", json={"name": "équipe"})
    assert dup.status_code == 422  # the same name, whatever the case
    resp = add_user(api, department="ÉQUIPE")
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["department"] == "Équipe"


def _ldap(slapd, **kw):
    """IDS settings for `slapd`; its CA certificate is in the import directory (ca_into)."""
    from tests.ldap_server import IMPORT_CA, PEOPLE_DN, READER_DN, READER_PASSWORD
    return {"servers": "localhost", "port": slapd.ldap_port, "security": "starttls",
            "ca_file": IMPORT_CA, "bind_dn": READER_DN, "password": READER_PASSWORD,
            "base_dn": PEOPLE_DN, "filter": "(objectClass=inetOrgPerson)", "scope": "sub",
            "page_size": 5, "preset": "OpenLDAP", **kw}


def _seed(app, api, e):
    run = api("POST", f"/api/v1/network-elements/elements/{e['id']}/ids/run").get_json()
    with app.app_context():
        return app.extensions["appliance"].jobs.wait(run["run_id"])


def _contacts(api, ent):
    return api("GET", f"/api/v1/enterprises/{ent['id']}/contacts").get_json()["total"]


def test_ids_contacts_follow_their_set_up_and_go_with_it(app, api, admin, site, tmp_path):
    """Test connection, moving to another enterprise, removing IDS and deleting the element
    take the seeded contacts with them; the password is never shown back."""
    from tests.ldap_server import READER_PASSWORD, Slapd

    mx = element(api, "MX-1", "MiVoice MX-ONE")
    url = f"/api/v1/network-elements/elements/{mx['id']}"
    acme, beta = (api("POST", "/api/v1/enterprises", json={"name": n, "eid": n.lower()})
                  .get_json() for n in ("Acme", "Beta"))
    with Slapd(tmp_path / "slapd", people=4) as slapd:
        slapd.ca_into(app.config["IMPORT_DIR"])
        tested = api("POST", url + "/ids/test", json=_ldap(slapd))
        assert tested.status_code == 200
        assert [e["login"] for e in tested.get_json()["entries"]] == [
            "user0", "user1", "user2", "user3"]
        wrong = api("POST", url + "/ids/test", json=_ldap(slapd, password="nope"))
        assert wrong.status_code == 502 and "password" in wrong.get_json()["message"].lower()
        assert api("PUT", url + "/ids", json=_ldap(slapd, enterprise_id=acme["id"])) \
            .status_code == 200
        shown = api("GET", url + "/ids").get_json()
        assert shown["password_set"] is True and READER_PASSWORD not in str(shown)
        # The page's Test connection uses the stored password when none is typed.
        page = admin.post(f"/network-elements/elements/{mx['id']}/ids/test", htmx=True,
                          data=_ldap(slapd, password=""))
        assert "The first 4 entries as they would be seeded as contacts" in \
            page.get_data(as_text=True)
        assert _seed(app, api, mx).state == "succeeded" and _contacts(api, acme) == 4
        # Another platform would make the set-up mean something else: refused, kept.
        moved = api("PUT", url, json={"platform": "MiVoice Business"})
        assert moved.status_code == 422 and "remove IDS before changing its platform" in \
            moved.get_json()["message"]
        assert api("PUT", url, json={"platform": "MiVoice 5000"}).status_code == 200
        # Seeding another enterprise's directory takes the contacts out of the first one's.
        assert api("PUT", url + "/ids", json=_ldap(slapd, password="", enterprise_id=beta["id"])
                   ).status_code == 200
        assert _contacts(api, acme) == 0
        assert _seed(app, api, mx).state == "succeeded" and _contacts(api, beta) == 4
    page = admin.get(f"/network-elements/elements/{mx['id']}").get_data(as_text=True)
    assert "The 4 contact(s) it seeded leave Beta's Corporate Directory." in page
    assert api("DELETE", url + "/ids").get_json() == {"contacts_removed": 4}
    assert _contacts(api, beta) == 0
    assert api("GET", url + "/ids").status_code == 404


def test_deleting_an_element_says_and_takes_what_hangs_off_it(app, api, admin, site, tmp_path):
    from tests.ldap_server import Slapd

    mx = element(api, "MX-1", "MiVoice MX-ONE")
    ent = api("POST", "/api/v1/enterprises", json={"name": "Acme", "eid": "acme"}).get_json()
    with Slapd(tmp_path / "slapd", people=3) as slapd:
        slapd.ca_into(app.config["IMPORT_DIR"])
        api("PUT", f"/api/v1/network-elements/elements/{mx['id']}/ids",
            json=_ldap(slapd, enterprise_id=ent["id"]))
        assert _seed(app, api, mx).state == "succeeded"
    # While IDS seeds, neither the element nor its IDS can go (the run would bring them back).
    with app.app_context():
        from appliance.models import JobRun
        run = JobRun(kind="network_elements.ids", target=f"ids:{mx['id']}", state="running")
        db.session.add(run)
        db.session.commit()
        busy = api("DELETE", f"/api/v1/network-elements/elements/{mx['id']}")
        assert busy.status_code == 409 and "IDS is seeding" in busy.get_json()["message"]
        assert api("DELETE", f"/api/v1/network-elements/elements/{mx['id']}/ids") \
            .status_code == 409
        run.state = "succeeded"
        db.session.commit()
    page = admin.get(f"/network-elements/elements/{mx['id']}").get_data(as_text=True)
    assert ("Its IDS set-up goes too, with the 3 contact(s) it seeded into Acme's "
            "Corporate Directory.") in page
    gone = api("DELETE", f"/api/v1/network-elements/elements/{mx['id']}").get_json()
    assert gone["deleted"] == {"users": 0, "ids": True, "ids_contacts": 3,
                               "ids_enterprise": "Acme"}
    assert _contacts(api, ent) == 0
    # A MiVoice Business element waits for its users' changes (their deletes among them).
    mivb = next(e for e in api("GET", "/api/v1/network-elements/elements").get_json()["items"]
                if e["name"] == "MiVB-1")
    uid = add_user(api).get_json()["id"]
    api("DELETE", f"/api/v1/network-elements/users/{uid}")
    refused = api("DELETE", f"/api/v1/network-elements/elements/{mivb['id']}")
    assert refused.status_code == 409 and refused.get_json()["message"] == (
        "MiVB-1 cannot be deleted yet: 2 flow-through change(s) have not reached it. Delete "
        "it once they are delivered, or discard the failed ones on the Flow Through page")
    with app.test_request_context():
        assert flow.deliver() == {"delivered": 2, "failed": 0}
    resp = admin.post(f"/network-elements/elements/{mivb['id']}/delete")
    assert resp.status_code in (302, 303)
    assert "Network element MiVB-1 deleted." in \
        admin.get("/network-elements/").get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Change.id)) is None  # its history went with it


def test_ids_updates_its_own_users_whatever_the_case_and_leaves_others_alone(
        app, api, site, tmp_path):
    from tests.ldap_server import PEOPLE_DN, Slapd

    api("PUT", "/api/v1/network-elements/licences", json={"items": [
        {"type": "MiCollab Client", "available": 100}]})
    element(api, "MiVO-1", "MiVoice Office 250")
    assert add_user(api, login="USER0", last_name="Old", department="Sales").status_code == 201
    assert add_user(api, login="user1", last_name="Elsewhere", element="MiVO-1") \
        .status_code == 201
    mivb = next(e for e in api("GET", "/api/v1/network-elements/elements").get_json()["items"]
                if e["name"] == "MiVB-1")
    with Slapd(tmp_path / "slapd", people=3) as slapd:
        slapd.ca_into(app.config["IMPORT_DIR"])
        slapd.add(f"cn=Second,{PEOPLE_DN}", {"objectClass": ["inetOrgPerson"], "cn": "Second",
                                             "sn": "Second", "uid": "user2"})
        api("PUT", f"/api/v1/network-elements/elements/{mivb['id']}/ids",
            json=_ldap(slapd, template="Agent"))
        with app.app_context():
            queued = db.session.scalar(select(func.count()).select_from(Change))
        run = _seed(app, api, mivb)
        again = _seed(app, api, mivb)
    assert run.state == "succeeded"
    assert run.message.startswith("1 added, 1 updated, 0 unchanged, 2 rejected: ")
    assert "user1 lives on MiVO-1: IDS of MiVB-1 does not move users" in run.message
    assert "Login user2 is also the login of uid=user2,ou=people" in run.message
    users = {u["login"]: u for u in api("GET", "/api/v1/network-elements/users")
             .get_json()["items"]}
    assert set(users) == {"user0", "user1", "user2"}  # USER0 is user0, spelled as IDS does
    # The directory's data is taken; what the admin gave the user stays.
    assert (users["user0"]["last_name"], users["user0"]["department"],
            users["user0"]["template"]) == ("Last0", "Sales", None)
    assert users["user2"]["template"] == "Agent"  # a new user gets the template
    assert (users["user1"]["element"], users["user1"]["last_name"]) == ("MiVO-1", "Elsewhere")
    # Nothing changed in the directory: nothing changes here, nothing is sent to the element.
    assert again.message.startswith("0 added, 0 updated, 2 unchanged, 2 rejected")
    with app.app_context():
        changes = db.session.execute(select(Change.action, Change.login).where(
            Change.id > queued).order_by(Change.id)).all()
    assert changes == [("update", "user0"), ("add", "user2")]


def test_users_list_shows_and_filters_by_element(api, admin, site):
    element(api, "MiVO-1", "MiVoice Office 250")
    add_user(api, template="Agent")
    add_user(api, login="bo", element="MiVO-1", services="none")
    elements = {e["name"]: e["id"] for e in api("GET", "/api/v1/network-elements/elements")
                .get_json()["items"]}
    by_element = api("GET", f"/api/v1/network-elements/users?element={elements['MiVO-1']}")
    assert [u["login"] for u in by_element.get_json()["items"]] == ["bo"]
    ordered = api("GET", "/api/v1/network-elements/users?sort=element&dir=desc").get_json()
    assert [u["element"] for u in ordered["items"]] == ["MiVO-1", "MiVB-1"]
    page = admin.get(f"/network-elements/users?element={elements['MiVB-1']}") \
        .get_data(as_text=True)
    assert "Users on MiVB-1" in page and ">bo<" not in page
    assert "<td>MiVB-1</td><td>Agent <span class=\"muted\">(role)</span></td>" \
           "<td>MiCollab Client</td>" in page
    index = admin.get("/network-elements/").get_data(as_text=True)
    assert f'href="/network-elements/users?element={elements["MiVO-1"]}">1</a>' in index


def test_a_users_own_data_outlives_its_templates_defaults(app, api, admin, site, tmp_path):
    """Empty means the template's; none means none: a user with none keeps none through
    edits (page and API), and an export re-imports unchanged after the template changed."""
    from appliance.plugins.network_elements import bulk, bulk_export

    u = add_user(api, template="Agent", services="none").get_json()
    assert u["services"] == []
    url = f"/api/v1/network-elements/users/{u['id']}"
    assert api("PUT", url, json={"first_name": "Annie"}).get_json()["services"] == []
    form = admin.get(f"/network-elements/users/{u['id']}").get_data(as_text=True)
    assert 'value="none" checked> No services' in form
    assert admin.post(f"/network-elements/users/{u['id']}", data={
        "login": "ann", "first_name": "Annie", "last_name": "Lee", "element": "MiVB-1",
        "template": "Agent", "location": "", "department": "none",
        "services": ["none"]}).status_code in (302, 303)
    after = api("GET", "/api/v1/network-elements/users").get_json()["items"][0]
    assert (after["services"], after["department"], after["location"]) == ([], None, None)
    # The role gains a location and a department later: the user keeps none of them.
    agent = _templates(api)["Agent"]
    api("PUT", f"/api/v1/network-elements/templates/{agent['id']}", json={
        "name": "Agent", "kind": "role", "services": ["MiCollab Client"],
        "location": "Ottawa", "department": "Support"})
    assert api("PUT", url, json={"last_name": "Leigh"}).get_json()["location"] is None
    with app.test_request_context():
        path = tmp_path / "export.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            bulk_export.export_csv(f)
        assert path.read_text().splitlines()[1] == "ann,Annie,Leigh,,,MiVB-1,none,none,Agent,none"
        assert bulk.run(path, "csv").counts == {"add": 0, "update": 0, "unchanged": 1,
                                                 "rejected": 0}
    # A null location or an empty services list in a PUT means none too.
    bo = add_user(api, login="bo", template="Sales staff").get_json()
    assert (bo["location"], bo["services"]) == ("Ottawa", ["MiCollab Client",
                                                           "NuPoint Voice Mail"])
    bo = api("PUT", f"/api/v1/network-elements/users/{bo['id']}", json={
        "location": None, "services": []}).get_json()
    assert (bo["location"], bo["department"], bo["services"]) == (None, "Sales", [])
    # No location or department may be called none.
    bad = api("POST", "/api/v1/network-elements/locations", json={"name": "None"})
    assert bad.status_code == 422 and bad.get_json()["fields"][0]["rule"] == "reserved"


def test_flow_through_follows_a_user_between_elements_and_across_a_rename(app, api, site):
    element(api, "MiVB-2", "MiVoice Business")
    element(api, "MiVO-1", "MiVoice Office 250")
    ids = {e["name"]: e["id"] for e in api("GET", "/api/v1/network-elements/elements")
           .get_json()["items"]}
    uid = add_user(api).get_json()["id"]
    url = f"/api/v1/network-elements/users/{uid}"
    api("PUT", url, json={"element": "MiVB-2"})  # delete from MiVB-1, add to MiVB-2
    api("PUT", url, json={"login": "ann2"})  # MiVB-2 renames ann
    api("PUT", url, json={"element": "MiVO-1"})  # no flow-through there: MiVB-2 deletes
    with app.app_context():
        changes = [(c.element_id, c.action, c.login, json.loads(c.payload))
                   for c in db.session.scalars(select(Change).order_by(Change.id))]
    assert [c[:3] for c in changes] == [
        (ids["MiVB-1"], "add", "ann"), (ids["MiVB-1"], "delete", "ann"),
        (ids["MiVB-2"], "add", "ann"), (ids["MiVB-2"], "update", "ann2"),
        (ids["MiVB-2"], "delete", "ann2")]
    assert changes[3][3]["previous_login"] == "ann" and "previous_login" not in changes[2][3]
    assert changes[1][3]["element"] == "MiVB-1"  # the delete carries the user as it was there
    with app.test_request_context():
        assert flow.deliver() == {"delivered": 5, "failed": 0}
    written = sorted((Path(app.config["DATA_DIR"]) / "flow-through" / str(ids["MiVB-2"]))
                     .glob("*.csv"))
    rows = [r for f in written for r in csv.DictReader(f.open())]
    assert [(r["action"], r["login"], r["previous_login"]) for r in rows] == [
        ("add", "ann", ""), ("update", "ann2", "ann"), ("delete", "ann2", "")]


def test_a_change_that_failed_for_good_holds_back_the_later_ones(app, api, site, connectors):
    """Retried later, an add would overtake the delete queued after it: it waits instead,
    until retried or discarded."""
    delivered, down = [], [True]

    class Connector:
        name = "down-or-up"

        def deliver(self, element, changes):
            if down[0]:
                raise OSError("element unreachable")
            delivered.extend((c["action"], c["login"]) for c in changes)

    use_connector(api, connectors, Connector())
    uid = add_user(api).get_json()["id"]
    with app.test_request_context():
        for _ in range(flow.MAX_ATTEMPTS):
            flow.deliver()
    api("DELETE", f"/api/v1/network-elements/users/{uid}")
    add_user(api, login="bo")
    down[0] = False
    with app.test_request_context():
        assert flow.deliver() == {"delivered": 0, "failed": 0}  # both wait behind the add
        assert flow.held() == {db.session.scalar(select(Change.element_id)): 2}
    assert api("POST", "/api/v1/network-elements/flow-through/retry").get_json() == {
        "requeued": 1}
    with app.test_request_context():
        assert flow.deliver() == {"delivered": 3, "failed": 0}
    assert delivered == [("add", "ann"), ("delete", "ann"), ("add", "bo")]
    # Discarded instead, a failed change lets the ones behind it go.
    down[0] = True
    add_user(api, login="cy")
    with app.test_request_context():
        for _ in range(flow.MAX_ATTEMPTS):
            flow.deliver()
    add_user(api, login="di")
    down[0] = False
    assert api("POST", "/api/v1/network-elements/flow-through/discard").get_json() == {
        "discarded": 1}
    with app.test_request_context():
        assert flow.deliver() == {"delivered": 1, "failed": 0}
    assert delivered[-1] == ("add", "di")
    states = {c["login"]: c["state"] for c in api("GET", "/api/v1/network-elements/flow-through")
              .get_json()["items"]}
    assert states["cy"] == "discarded" and states["di"] == "delivered"


def test_licences_are_saved_all_or_none(api, admin, site):
    def held():
        return {r["type"]: r["available"] for r in api(
            "GET", "/api/v1/network-elements/licences").get_json()["items"]}

    before = held()
    add_user(api, template="Sales staff")  # takes a NuPoint Voice Mail licence
    for items in ([{"type": "MiCollab Client", "available": 50}, {"type": "Fax", "available": 1}],
                  [{"type": "MiCollab Client", "available": 50},
                   {"type": "Teleworker", "available": True}],
                  [{"type": "MiCollab Client", "available": 50},
                   {"type": "NuPoint Voice Mail", "available": 0}]):
        resp = api("PUT", "/api/v1/network-elements/licences", json={"items": items})
        assert resp.status_code == 422 and held() == before, items
    assert resp.get_json()["fields"] == [{
        "field": "NuPoint Voice Mail", "rule": "in_use",
        "message": "Licence NuPoint Voice Mail: 1 in use, so at least 1 must be available "
                   "(take the service from users first)"}]
    page = admin.post("/network-elements/licences", htmx=True, data={
        "MiCollab Client": "9", "NuPoint Voice Mail": "²", "Audio Web Video": "0",
        "Teleworker": "0"})
    assert page.status_code == 422 and held() == before
    text = page.get_data(as_text=True)
    assert "NuPoint Voice Mail: available must be a whole number, 0 to 2147483647" in text
    assert 'name="MiCollab Client" value="9"' in text  # what was typed stays on the page
    ok = admin.post("/network-elements/licences", htmx=True, data={
        "MiCollab Client": "9", "NuPoint Voice Mail": "2", "Audio Web Video": "0",
        "Teleworker": "1"})
    assert ok.status_code == 200
    assert held() == {"MiCollab Client": 9, "NuPoint Voice Mail": 2, "Audio Web Video": 0,
                      "Teleworker": 1}


def test_a_template_ids_uses_follows_a_rename_and_cannot_go(app, api, site, tmp_path):
    mivb = next(e for e in api("GET", "/api/v1/network-elements/elements").get_json()["items"]
                if e["name"] == "MiVB-1")
    with app.app_context():
        from appliance.plugins.network_elements.models import IdsSource
        db.session.add(IdsSource(element_id=mivb["id"], template="agent"))  # as ids.save does
        db.session.commit()
    agent = _templates(api)["Agent"]
    url = f"/api/v1/network-elements/templates/{agent['id']}"
    refused = api("DELETE", url)
    assert refused.status_code == 409 and refused.get_json()["message"] == (
        "The role Agent is in use by IDS of MiVB-1: choose another there first")
    assert api("PUT", url, json={"name": "Agents", "kind": "role"}).status_code == 200
    with app.app_context():
        assert db.session.get(IdsSource, mivb["id"]).template == "Agents"


def test_names_are_one_name_whatever_their_case_everywhere(api, site):
    api("POST", "/api/v1/network-elements/elements", json={
        "name": "Straße", "platform": "MiVoice Business", "address": "10.0.0.9"})
    dup = api("POST", "/api/v1/network-elements/elements", json={
        "name": "STRASSE", "platform": "MiVoice Business", "address": "10.0.0.9"})
    assert dup.status_code == 422  # the same name, as casefold() has it...
    resp = add_user(api, element="STRASSE")  # ...so a user may name it so too
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["element"] == "Straße"


def test_old_bulk_files_are_removed(app, admin):
    import os
    import time

    from appliance.plugins.network_elements import imports

    with app.test_request_context():
        folder = imports.folder()
        old, new = folder / "old.csv", folder / "report-1.csv"
        for p in (old, new):
            p.write_text("login\n")
        past = time.time() - (imports.KEEP_DAYS + 1) * 86400
        os.utime(old, (past, past))
        assert imports.tidy() == 1
        assert not old.exists() and new.exists()
        from appliance.models import JobSchedule
        app.extensions["appliance"].jobs.ensure_default_schedules()  # as start-up does
        sched = db.session.scalar(select(JobSchedule).where(
            JobSchedule.kind == "network_elements.tidy"))
        assert json.loads(sched.spec) == {"seconds": 86400}


def test_lists_are_pages_sorted_and_searched_alike_in_the_api_and_on_the_pages(api, admin, site):
    elements = api("GET", "/api/v1/network-elements/elements?sort=platform&per_page=1")
    assert elements.status_code == 200
    body = elements.get_json()
    assert ({k: v for k, v in body.items() if k != "items"}, body["items"][0]["name"]) == (
        {"total": 2, "more": False, "page": 1, "pages": 2, "per_page": 1}, "MV5000-1")
    found = api("GET", "/api/v1/network-elements/elements?q=MiVB").get_json()
    assert [e["name"] for e in found["items"]] == ["MiVB-1"]
    deps = api("GET", "/api/v1/network-elements/departments?dir=desc").get_json()
    assert [d["name"] for d in deps["items"]] == ["Support", "Sales"] and deps["total"] == 2
    roles = api("GET", "/api/v1/network-elements/templates?sort=kind").get_json()
    assert [t["name"] for t in roles["items"]] == ["Agent", "Sales staff"]  # role, template
    for i in range(3):
        add_user(api, login=f"u{i}")
    queue = api("GET", "/api/v1/network-elements/flow-through").get_json()
    assert [c["login"] for c in queue["items"]] == ["u2", "u1", "u0"]  # newest first
    oldest = api("GET", "/api/v1/network-elements/flow-through?sort=id&dir=asc&per_page=2")
    assert [c["login"] for c in oldest.get_json()["items"]] == ["u0", "u1"]
    assert api("GET", "/api/v1/network-elements/flow-through?page=0").status_code == 422
    # The pages' tables go through the same listing: sorted, searched and paged.
    page = admin.get("/network-elements/?sort=platform", htmx=True,
                     headers={"HX-Target": "element-table"}).get_data(as_text=True)
    assert page.index("MV5000-1") < page.index("MiVB-1") and "page 1 of 1" in page
    page = admin.get("/network-elements/departments?q=supp").get_data(as_text=True)
    assert "Support" in page and 'value="Sales"' not in page
    page = admin.get("/network-elements/flow?sort=login&dir=asc").get_data(as_text=True)
    assert page.index(">u0<") < page.index(">u1<") < page.index(">u2<")


def test_a_page_shows_a_refusal_where_the_action_came_from(api, admin, site):
    add_user(api, department="Support")
    deps = {d["name"]: d["id"] for d in api("GET", "/api/v1/network-elements/departments")
            .get_json()["items"]}
    resp = admin.post(f"/network-elements/departments/{deps['Support']}/delete")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(
        "/network-elements/departments")
    page = admin.get("/network-elements/departments").get_data(as_text=True)
    assert "The department Support is in use by 1 user(s): ann" in page
    # A rename the rules refuse comes back in its row, with what was typed.
    bad = admin.post(f"/network-elements/departments/{deps['Sales']}",
                     data={"name": "Support", "description": "typed"}, htmx=True, headers=MAIN)
    text = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "A department with this name exists" in text
    assert 'value="typed"' in text
    # A bulk preview without a file says so next to the file field.
    none = admin.post("/network-elements/bulk/preview", data={"element": "MiVB-1"},
                      content_type="multipart/form-data")
    assert none.status_code == 422 and "Choose the file to import" in none.get_data(as_text=True)


def test_forms_state_the_rules_the_api_checks(admin, api, site):
    """The element form's fields come from the schema the API validates with."""
    from markupsafe import escape

    from appliance.plugins.network_elements import service

    page = admin.get("/network-elements/elements/new").get_data(as_text=True)
    name = service.ELEMENT.fields["name"]
    assert f'maxlength="{name.attrs()["maxlength"]}"' in page
    assert 'name="port" type="number" min="1" max="65535"' in page
    assert str(escape(service.ELEMENT.fields["port"].help)) in page
    spec = api("GET", "/api/v1/openapi.json").get_json()
    put = spec["paths"]["/api/v1/network-elements/elements/{eid}"]["put"]
    ref = put["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/NetworkElementUpdate")
    assert spec["components"]["schemas"]["NetworkElementUpdate"]["required"] == []
    user_put = spec["paths"]["/api/v1/network-elements/users/{uid}"]["put"]
    assert user_put["requestBody"]["content"]["application/json"]["schema"]["required"] == []


@pytest.mark.parametrize("services", [5, [5], {"a": 1}, True])
def test_services_that_are_not_names_are_refused(api, services):
    resp = api("POST", "/api/v1/network-elements/templates",
               json={"name": "Odd", "kind": "template", "services": services})
    assert resp.status_code == 422, resp.get_json()
    assert resp.get_json()["fields"][0]["field"] == "services"
