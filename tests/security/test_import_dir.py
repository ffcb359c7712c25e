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
