"""API tokens have a name, an expiry and a last use, and are listed and revoked through the
API (against waitress), the CLI and the page; a revoked or expired token answers 401 at once."""

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from appliance.auth import create_admin, new_token
from appliance.cli import cli
from appliance.db import db, utcnow
from appliance.models import ApiToken, AuditEntry, User
from tests.conftest import PASSWORD
from tests.security.served import Served


@pytest.fixture
def served(tmp_path):
    s = Served(tmp_path)
    with s.app.app_context():
        s.token = new_token(db.session.scalar(select(User)), "deploy script")
    yield s
    s.close()


def _call(served, method, path, token, body=None):
    """(status, decoded JSON or None) of an API call with a bearer token."""
    status, _, text = served.agent().request(
        method, path, headers={"Authorization": f"Bearer {token}"}, json_body=body)
    return status, (json.loads(text) if text else None)


def test_tokens_are_listed_without_the_secret_and_revoked_at_once(served):
    status, made = _call(served, "POST", "/api/v1/tokens", served.token,
                         {"name": "nightly export", "expires_days": 30})
    assert status == 201
    second = made["token"]
    assert second.startswith("apl_") and made["name"] == "nightly export"
    assert made["username"] == "admin" and made["hint"] == second[:8] + "…"
    expires = made["expires_at"]
    assert expires.startswith((utcnow() + timedelta(days=30)).strftime("%Y-%m-%d"))

    assert _call(served, "GET", "/api/v1/plugins", second)[0] == 200
    status, listed = _call(served, "GET", "/api/v1/tokens", served.token)
    assert status == 200 and listed["total"] == 2 and listed["per_page"] == 100
    listed = listed["items"]  # the one list shape: items, total, page, pages, per_page
    assert [t["name"] for t in listed] == ["nightly export", "deploy script"]
    assert all(t["username"] == "admin" and not t["expired"] for t in listed)
    assert listed[0]["last_used_at"] is not None  # it was just used
    text = json.dumps(listed)
    assert second not in text and served.token not in text

    status, _ = _call(served, "DELETE", f"/api/v1/tokens/{made['id']}", served.token)
    assert status == 204
    status, answer = _call(served, "GET", "/api/v1/plugins", second)
    assert status == 401 and answer["error"] == "unauthorized"
    assert _call(served, "DELETE", f"/api/v1/tokens/{made['id']}", served.token)[0] == 404
    assert [t["name"] for t in _call(served, "GET", "/api/v1/tokens",
                                     served.token)[1]["items"]] == ["deploy script"]
    with served.app.app_context():
        actions = db.session.execute(select(AuditEntry.action, AuditEntry.object_label)
                                     .where(AuditEntry.object_type == "api token")).all()
    assert sorted(actions) == [("create", "nightly export"), ("delete", "nightly export")]


def test_a_token_revoking_itself_is_refused_on_its_next_call(served):
    status, listed = _call(served, "GET", "/api/v1/tokens", served.token)
    own = listed["items"][0]["id"]
    assert _call(served, "DELETE", f"/api/v1/tokens/{own}", served.token)[0] == 204
    assert _call(served, "GET", "/api/v1/tokens", served.token)[0] == 401


def test_an_expired_token_answers_401(served):
    status, made = _call(served, "POST", "/api/v1/tokens", served.token,
                         {"name": "short-lived", "expires_days": 1})
    assert _call(served, "GET", "/api/v1/plugins", made["token"])[0] == 200
    with served.app.app_context():
        row = db.session.get(ApiToken, made["id"])
        row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    status, answer = _call(served, "GET", "/api/v1/plugins", made["token"])
    assert status == 401 and answer["error"] == "unauthorized"
    listed = {t["name"]: t for t in
              _call(served, "GET", "/api/v1/tokens", served.token)[1]["items"]}
    assert listed["short-lived"]["expired"] is True


def test_a_token_needs_a_name_and_a_sane_expiry(served):
    status, answer = _call(served, "POST", "/api/v1/tokens", served.token,
                           {"name": "", "expires_days": 0})
    assert status == 422
    assert {f["field"]: f["rule"] for f in answer["fields"]} == {"name": "required",
                                                                 "expires_days": "range"}


def test_cli_creates_lists_and_revokes_tokens(app, runner):
    with app.app_context():
        create_admin("ops", PASSWORD)
    made = runner.invoke(cli, ["create-token", "--username", "ops", "--name", "backup",
                               "--expires-days", "7"])
    assert made.exit_code == 0, made.output
    token = made.output.strip()
    client = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/plugins", headers=auth).status_code == 200

    listed = runner.invoke(cli, ["tokens", "list"])
    assert listed.exit_code == 0 and "backup" in listed.output and "ops" in listed.output
    assert token not in listed.output and token[:8] in listed.output
    (item,) = json.loads(runner.invoke(cli, ["tokens", "list", "--json"]).output)
    assert item["name"] == "backup" and item["expires_at"] is not None

    revoked = runner.invoke(cli, ["tokens", "revoke", str(item["id"])])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert client.get("/api/v1/plugins", headers=auth).status_code == 401
    missing = runner.invoke(cli, ["tokens", "revoke", str(item["id"])])
    assert missing.exit_code != 0 and "No API token" in missing.output


def test_tokens_page_creates_shows_once_and_revokes(app, admin):
    page = admin.get("/tokens").get_data(as_text=True)
    assert "API tokens" in page and "No API token." in page
    made = admin.post("/tokens", {"name": "monitoring", "expires_days": "90"}, htmx=True)
    html = made.get_data(as_text=True)
    token = re.search(r'<code class="secret">(apl_[^<]+)</code>', html).group(1)
    assert "monitoring" in html and "admin" in html
    again = admin.get("/tokens").get_data(as_text=True)
    assert "monitoring" in again and token not in again and token[:8] + "…" in again
    assert admin.client.get("/api/v1/plugins",
                            headers={"Authorization": f"Bearer {token}"}).status_code == 200

    bad = admin.post("/tokens", {"name": "", "expires_days": "x"}, htmx=True)
    assert bad.status_code == 422
    assert "Name is required" in bad.get_data(as_text=True)

    with app.app_context():
        tid = db.session.scalar(select(ApiToken.id).where(ApiToken.label == "monitoring"))
    assert admin.client.post(f"/tokens/{tid}/revoke").status_code == 400  # no CSRF token
    gone = admin.post(f"/tokens/{tid}/revoke", htmx=True)
    assert gone.status_code == 200 and "API token monitoring revoked." in gone.get_data(
        as_text=True)
    assert admin.client.get("/api/v1/plugins",
                            headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert "API tokens" in admin.get("/").get_data(as_text=True)  # the tab
