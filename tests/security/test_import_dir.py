"""Files an admin names are read only from the import directory, and no message quotes them."""

import os
import shutil
import stat
from pathlib import Path

import pytest
from sqlalchemy import func, select

from appliance.config import from_env
from appliance.db import db
from appliance.models import Account, AuditEntry, JobRun
from appliance.plugins.sync.models import Synchronizer, SyncIssue

DATA = Path(__file__).parent.parent / "data" / "pbx"
SECRET = "root:$6$NeverShowThis$abc:19000:0:99999:7:::"
HEADER = ("number,device_type,mac,first_name,last_name,department,group,group_kind,pilot,"
          "dynamic_extension\n")


@pytest.fixture
def ent(api):
    resp = api("POST", "/api/v1/enterprises", json={"name": "Acme", "eid": "acme"})
    ent_id = resp.get_json()["id"]
    assert api("PUT", f"/api/v1/sync/enterprises/{ent_id}", json={
        "mode": "pbx", "feature_profile": "Standard user", "dynamic_only": False}
    ).status_code == 200
    return ent_id


@pytest.fixture
def secret(tmp_path) -> Path:
    """A file outside the import directory that the appliance could read."""
    path = tmp_path / "not-for-admins.txt"
    path.write_text(SECRET + "\n")
    return path


def node_body(path, **kw) -> dict:
    return {"name": "MiVB node 1", "platform": "MiVoice Business", "address": "10.0.0.5",
            "path": str(path), "max_drop": 50, "days": 1, "hour": 2, "minute": 0,
            "ampm": "AM", **kw}


def import_dir(app) -> Path:
    return Path(app.config["IMPORT_DIR"])


def run_sync(app, api, syn_id) -> JobRun:
    run = api("POST", f"/api/v1/sync/synchronizers/{syn_id}/sync").get_json()
    with app.app_context():
        return app.extensions["appliance"].jobs.wait(run["run_id"], timeout=60)


def nodes(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Synchronizer))


def everything_said(app, client, api, syn_id) -> str:
    """Every message the appliance keeps about a node: API detail, job runs, issues, audit."""
    with app.app_context():
        runs = [r.message or "" for r in db.session.scalars(select(JobRun))]
        issues = [f"{i.entry} {i.attribute} {i.reason}" for i in db.session.scalars(
            select(SyncIssue))]
        audit = [repr(vars(a)) for a in db.session.scalars(select(AuditEntry))]
    detail = api("GET", f"/api/v1/sync/synchronizers/{syn_id}").get_data(as_text=True)
    return "\n".join(runs + issues + audit + [detail])


def test_the_import_dir_defaults_under_the_data_dir_with_mode_0700(app, tmp_path):
    where = import_dir(app)
    assert where == (tmp_path / "import").resolve()
    assert stat.S_IMODE(where.stat().st_mode) == 0o700
    assert from_env({"APPLIANCE_IMPORT_DIR": "/srv/exports"})["IMPORT_DIR"] == "/srv/exports"


@pytest.mark.parametrize("where", ["/etc/passwd", "secret", "../not-for-admins.txt",
                                   "secret_key", "link"])
def test_a_path_outside_the_import_dir_is_refused_on_save(app, api, ent, secret, where):
    """Absolute, relative with .., the data dir's secret key, a symlink out of the dir."""
    (import_dir(app) / "link").symlink_to(secret)
    (Path(app.config["DATA_DIR"]) / "secret_key").write_text("the-appliance-key\n")
    path = {"secret": secret, "secret_key": Path(app.config["DATA_DIR"]) / "secret_key"}.get(
        where, where)
    resp = api("POST", f"/api/v1/sync/enterprises/{ent}/pbx-nodes", json=node_body(path))
    assert resp.status_code == 422
    assert resp.get_json()["fields"] == [{
        "field": "path", "rule": "import_dir",
        "message": f"CSV file must be inside the import directory {import_dir(app)}"}]
    assert nodes(app) == 0


def test_the_page_refuses_it_too_and_keeps_what_was_typed(app, admin, ent, secret):
    resp = admin.post("/sync/new?kind=pbx", data=node_body(secret), htmx=True)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert f"CSV file must be inside the import directory {import_dir(app)}" in page
    assert str(secret) in page and SECRET not in page
    assert nodes(app) == 0


def test_a_change_to_an_outside_path_is_refused_and_nothing_changes(app, api, ent, secret):
    shutil.copy(DATA / "mixed_mivb.csv", import_dir(app) / "node.csv")
    node = api("POST", f"/api/v1/sync/enterprises/{ent}/pbx-nodes",
               json=node_body("node.csv")).get_json()
    url = f"/api/v1/sync/synchronizers/{node['id']}"
    resp = api("PUT", url, json={"path": str(secret)})
    assert resp.status_code == 422 and resp.get_json()["fields"][0]["rule"] == "import_dir"
    assert api("GET", url).get_json()["connector_settings"] == {"path": "node.csv"}


def test_a_relative_path_is_read_inside_the_import_dir(app, api, ent):
    shutil.copy(DATA / "mixed_mivb.csv", import_dir(app) / "node.csv")
    node = api("POST", f"/api/v1/sync/enterprises/{ent}/pbx-nodes",
               json=node_body("node.csv")).get_json()
    run = run_sync(app, api, node["id"])
    assert run.state == "succeeded", run.message


def test_a_symlink_swapped_in_after_the_save_fails_the_sync(app, client, api, ent, secret):
    """The path is checked again when the job opens it; nothing is read, nothing changes."""
    path = import_dir(app) / "node.csv"
    shutil.copy(DATA / "mixed_mivb.csv", path)
    node = api("POST", f"/api/v1/sync/enterprises/{ent}/pbx-nodes",
               json=node_body(path)).get_json()
    assert run_sync(app, api, node["id"]).state == "succeeded"
    with app.app_context():
        before = db.session.scalar(select(func.count()).select_from(Account))
    path.unlink()
    path.symlink_to(secret)
    run = run_sync(app, api, node["id"])
    assert run.state == "failed"
    assert f"CSV file must be inside the import directory {import_dir(app)}" in run.message
    assert "Nothing was changed" in run.message
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Account)) == before
    assert "NeverShowThis" not in everything_said(app, client, api, node["id"])


def test_a_file_that_is_not_an_export_is_never_quoted(app, client, api, ent):
    """A copy of /etc/shadow in the import dir fails on its header; the message describes the
    header (by known columns), never its text."""
    path = import_dir(app) / "node.csv"
    path.write_text(SECRET + "\n" + SECRET + "\n")
    node = api("POST", f"/api/v1/sync/enterprises/{ent}/pbx-nodes",
               json=node_body(path)).get_json()
    run = run_sync(app, api, node["id"])
    assert run.state == "failed" and "missing required column(s)" in run.message
    assert "known among them: none" in run.message
    said = everything_said(app, client, api, node["id"])
    assert "NeverShowThis" not in said and "19000" not in said


def test_bad_cells_are_reported_by_line_and_column_only(app, client, api, ent):
    path = import_dir(app) / "node.csv"
    path.write_text(HEADER + "2001,5340 IP,,Ann,Lee,Sales,,,,\n"
                    "NeverShowThis1,5340 IP,,Bo,Kim,Ops,,,,\n"
                    "2003,5340 IP,,Cy,Ng,Ops,,NeverShowThis2,,\n"
                    "2004,5340 IP,,Di,Ho,Ops,,,NeverShowThis3,\n"
                    "NeverShowThis4,5340 IP,,Ed\n")
    node = api("POST", f"/api/v1/sync/enterprises/{ent}/pbx-nodes",
               json=node_body(path)).get_json()
    run = run_sync(app, api, node["id"])
    assert run.state == "succeeded", run.message
    issues = api("GET", f"/api/v1/sync/synchronizers/{node['id']}").get_json()["issues"]
    assert {(i["entry"], i["attribute"]) for i in issues} == {
        ("line 3: ", "number"), ("line 4: 2003", "group_kind"), ("line 5: 2004", "pilot"),
        ("line 6: ", "invalid-row")}
    assert "NeverShowThis" not in everything_said(app, client, api, node["id"])


def test_the_import_dir_setting_is_used(make_app, tmp_path, secret):
    where = tmp_path / "exports"
    app = make_app(IMPORT_DIR=str(where))
    assert stat.S_IMODE(where.stat().st_mode) == 0o700
    from appliance import files
    with app.app_context():
        assert files.admin_path("a.csv") == where.resolve() / "a.csv"
        with pytest.raises(Exception, match=f"inside the import directory {where.resolve()}"):
            files.admin_path(str(tmp_path / "import" / "a.csv"))
        os.symlink(secret, where / "out")
        with pytest.raises(Exception, match="inside the import directory"):
            files.open_admin_file("out", mode="rb")


# --- the LDAP CA certificates field (synchronizers, external peers, IDS) -----------------------


def ldap_body(ca_file, **kw) -> dict:
    """A synchronizer on a port nothing listens on: saving it connects nowhere."""
    return {"name": "Head office", "servers": "127.0.0.1", "port": 9, "security": "starttls",
            "ca_file": str(ca_file), "bind_dn": "cn=reader", "password": "reader-secret",
            "base_dn": "dc=acme,dc=test", "filter": "(objectClass=person)", "scope": "sub",
            "page_size": 100, "preset": "OpenLDAP", "max_drop": 20, "days": 1, "hour": 1,
            "minute": 0, "ampm": "AM", **kw}


def peer_body(ca_file) -> dict:
    body = {**ldap_body(ca_file), "kind": "external", "description": "OCS", "hour": 3}
    body["ldap_port"] = body.pop("port")
    return body


@pytest.fixture
def ldap_ent(api) -> int:
    return api("POST", "/api/v1/enterprises", json={"name": "Acme", "eid": "acme"}).get_json()["id"]


@pytest.fixture
def ca(app) -> Path:
    """A CA file in the import directory (its content matters only to a connection)."""
    path = import_dir(app) / "ldap-ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return path


def refused(app, resp, field="ca_file", label="CA certificates") -> bool:
    assert resp.status_code == 422, resp.get_data(as_text=True)
    return resp.get_json()["fields"] == [{
        "field": field, "rule": "import_dir",
        "message": f"{label} must be inside the import directory {import_dir(app)}"}]


def rows(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("where", ["secret", "../not-for-admins.txt", "link"])
def test_an_ldap_ca_file_outside_the_import_dir_is_refused_by_the_api(app, api, ldap_ent,
                                                                      secret, where):
    """Synchronizers, external peers and IDS, on save and on Test connection: nothing saved."""
    from appliance.plugins.network_elements.models import IdsSource
    from appliance.plugins.peering.models import Peer

    (import_dir(app) / "link").symlink_to(secret)
    path = secret if where == "secret" else where
    assert refused(app, api("POST", f"/api/v1/sync/enterprises/{ldap_ent}/ldap",
                            json=ldap_body(path)))
    assert refused(app, api("POST", "/api/v1/sync/test-ldap", json=ldap_body(path)))
    assert refused(app, api("POST", f"/api/v1/peering/enterprises/{ldap_ent}/peers",
                            json=peer_body(path)))
    assert refused(app, api("POST", "/api/v1/peering/test-ldap", json=ldap_body(path)))
    mx = api("POST", "/api/v1/network-elements/elements", json={
        "name": "MX-1", "platform": "MiVoice MX-ONE", "address": "10.0.0.6"}).get_json()
    ids = f"/api/v1/network-elements/elements/{mx['id']}/ids"
    assert refused(app, api("PUT", ids, json={**ldap_body(path), "enterprise_id": ldap_ent}))
    assert refused(app, api("POST", ids + "/test", json=ldap_body(path)))
    assert nodes(app) == rows(app, Peer) == rows(app, IdsSource) == 0


def test_an_ldap_ca_file_change_to_outside_is_refused_and_nothing_changes(app, api, ldap_ent,
                                                                          ca, secret):
    """A relative name is taken in the import directory; a change to a path outside is
    refused, and the stored settings stay as they were."""
    syn = api("POST", f"/api/v1/sync/enterprises/{ldap_ent}/ldap", json=ldap_body(ca.name))
    assert syn.status_code == 201, syn.get_json()
    url = f"/api/v1/sync/synchronizers/{syn.get_json()['id']}"
    before = api("GET", url).get_json()
    assert before["ldap"]["ca_file"] == "ldap-ca.pem"
    assert refused(app, api("PUT", url, json={"ca_file": str(secret)}))
    assert api("GET", url).get_json() == before


def test_a_missing_ca_file_in_the_import_dir_is_still_refused(app, api, ldap_ent):
    resp = api("POST", f"/api/v1/sync/enterprises/{ldap_ent}/ldap",
               json=ldap_body("missing.pem"))
    assert resp.status_code == 422
    assert resp.get_json()["fields"] == [{
        "field": "ca_file", "rule": "readable_file",
        "message": "CA certificates must be the path of a readable PEM file on the appliance"}]
    assert nodes(app) == 0


def test_the_ldap_page_refuses_it_too_and_keeps_what_was_typed(app, admin, ldap_ent, secret):
    resp = admin.post("/sync/new?kind=ldap", data=ldap_body(secret), htmx=True)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert f"CA certificates must be inside the import directory {import_dir(app)}" in page
    assert str(secret) in page and SECRET not in page
    assert nodes(app) == 0
    form = admin.get("/sync/new?kind=ldap").get_data(as_text=True)
    assert f"PEM file in the import directory {import_dir(app)}" in form  # the field's help


def test_a_ca_file_swapped_for_a_symlink_out_fails_the_connection(app, client, api, ldap_ent,
                                                                 ca, secret):
    """The stored path is resolved again when the connection is made: the symlink is refused,
    not followed; nothing is read, nothing changes."""
    from appliance import ldapdir, ldapform

    syn = api("POST", f"/api/v1/sync/enterprises/{ldap_ent}/ldap", json=ldap_body(ca)).get_json()
    ca.unlink()
    ca.symlink_to(secret)
    run = run_sync(app, api, syn["id"])
    assert run.state == "failed"
    assert (f"The CA file {ca} is refused: CA certificates must be inside the import "
            f"directory {import_dir(app)}") in run.message
    assert "Nothing was changed" in run.message
    assert rows(app, Account) == 0
    assert "NeverShowThis" not in everything_said(app, client, api, syn["id"])
    with app.app_context():  # external peers and IDS connect through the same settings
        settings = ldapform.settings({**ldap_body(ca), "servers": "127.0.0.1"}, "pw")
        with pytest.raises(ldapdir.LdapError, match=f"The CA file {ca} is refused") as exc:
            ldapdir.test_connection(settings, {"login": "uid"})
        assert exc.value.kind == "tls"


# --- the federation settings' TLS files ----------------------------------------------------------


def xmpp_body(**kw) -> dict:
    return {"domain": "appliance.test", "c2s_port": 5222, "s2s_port": 5269,
            "interfaces": "127.0.0.1", "cert_file": "", "key_file": "", "ca_file": "", **kw}


@pytest.mark.parametrize("field,label", [("cert_file", "Certificate"),
                                         ("key_file", "Private key"),
                                         ("ca_file", "CA certificates")])
def test_federation_tls_files_outside_the_import_dir_are_refused(app, api, admin, secret,
                                                                 field, label):
    before = api("GET", "/api/v1/federation/settings").get_json()
    for path in (secret, "../not-for-admins.txt"):
        resp = api("PUT", "/api/v1/federation/settings", json=xmpp_body(**{field: str(path)}))
        assert refused(app, resp, field, label)
        page = admin.post("/federation/settings", data=xmpp_body(**{field: str(path)}),
                          htmx=True, headers={"HX-Target": "main"})  # as the form posts
        text = page.get_data(as_text=True)
        assert page.status_code == 422
        assert f"{label} must be inside the import directory {import_dir(app)}" in text
        assert str(path) in text and SECRET not in text
    assert api("GET", "/api/v1/federation/settings").get_json() == before


def test_a_tls_file_swapped_for_a_symlink_out_is_not_written_to_prosody(app, api, admin,
                                                                        secret):
    """Checked again when Prosody's configuration is written: refused, the file is left as it
    was and the error is shown."""
    cert = import_dir(app) / "xmpp.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    saved = api("PUT", "/api/v1/federation/settings",
                json=xmpp_body(cert_file="xmpp.pem", key_file=str(cert)))
    assert saved.status_code == 200, saved.get_json()
    config = Path(api("GET", "/api/v1/federation").get_json()["service"]["config_path"])
    written = config.read_text()
    assert f'certificate = "{cert}"' in written and f'key = "{cert}"' in written
    cert.unlink()
    cert.symlink_to(secret)
    message = api("POST", "/api/v1/federation/enable").get_json()["message"]
    assert message == ("Saved, but the XMPP service configuration was not written: "
                       f"Certificate must be inside the import directory {import_dir(app)}")
    assert config.read_text() == written
    assert api("GET", "/api/v1/federation").get_json()["service"]["apply_message"] == message
    admin.post("/federation/disable")  # the page says so too
    assert message in admin.get("/federation/").get_data(as_text=True)
    assert config.read_text() == written
