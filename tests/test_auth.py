"""First-run setup, login, lock-out, CSRF, session cookie and API tokens."""

import re

from appliance.auth import create_admin
from appliance.cli import cli
from appliance.config import DEFAULTS
from tests.conftest import PASSWORD, Browser


def _token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_first_visit_goes_to_setup_and_creates_the_admin(client):
    resp = client.get("/enterprises")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/setup")
    token = _token(client.get("/setup").get_data(as_text=True))
    bad = client.post("/setup", data={"username": "admin", "password": "short",
                                      "confirm": "short", "csrf_token": token})
    assert "Password must be 10 to 256 characters" in bad.get_data(as_text=True)
    assert 'value="admin"' in bad.get_data(as_text=True)  # what was typed is kept
    ok = client.post("/setup", data={"username": "admin", "password": PASSWORD,
                                     "confirm": PASSWORD, "csrf_token": token})
    assert ok.status_code == 302
    assert client.get("/enterprises").status_code == 200
    # Setup is closed once an administrator exists.
    assert client.get("/setup").headers["Location"].endswith("/login")


def test_password_is_hashed(make_app):
    app = make_app(PASSWORD_HASH=DEFAULTS["PASSWORD_HASH"])  # tests use a cheap method
    with app.app_context():
        user = create_admin("root", PASSWORD)
        assert PASSWORD not in user.password_hash
        assert user.password_hash.startswith(("scrypt:", "pbkdf2:"))
    assert DEFAULTS["PASSWORD_HASH"] == "scrypt"


def test_every_page_needs_login(app, client):
    with app.app_context():
        create_admin("admin", PASSWORD)
    for url in ("/", "/enterprises", "/directory", "/accounts", "/audit", "/jobs", "/plugins",
                "/peering/"):
        resp = client.get(url)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"], url
    htmx = client.get("/enterprises", headers={"HX-Request": "true"})
    assert htmx.status_code == 204 and "/login" in htmx.headers["HX-Redirect"]


def test_login_wrong_password_then_right(app, client):
    with app.app_context():
        create_admin("admin", PASSWORD)
    b = Browser(client)
    bad = b.login(password="wrong-password")
    assert bad.status_code == 401 and "Wrong username or password" in bad.get_data(as_text=True)
    assert b.login().status_code == 302
    assert client.get("/").status_code == 200


def test_repeated_failures_lock_the_account_for_a_while(make_app):
    app = make_app(LOGIN_MAX_FAILURES=3, LOGIN_LOCK_SECONDS=600)
    with app.app_context():
        create_admin("admin", PASSWORD)
    b = Browser(app.test_client())
    for _ in range(3):
        assert b.login(password="nope-nope-nope").status_code == 401
    locked = b.login()  # the right password does not help while locked
    assert locked.status_code == 429
    assert "Too many failed logins. Try again in 10 minutes." in locked.get_data(as_text=True)
    assert b.client.get("/").status_code == 302


def test_lock_expires(make_app):
    app = make_app(LOGIN_MAX_FAILURES=2, LOGIN_LOCK_SECONDS=0)
    with app.app_context():
        create_admin("admin", PASSWORD)
    b = Browser(app.test_client())
    b.login(password="x" * 12)
    b.login(password="x" * 12)
    assert b.login().status_code == 302


def test_state_changes_need_the_csrf_token(admin):
    resp = admin.client.post("/enterprises", data={"name": "Acme", "eid": "acme"})
    assert resp.status_code == 400
    assert "security token" in resp.get_data(as_text=True)
    assert admin.post("/enterprises", data={"name": "Acme", "eid": "acme"}).status_code == 302


def test_htmx_requests_carry_the_token_in_a_header(admin):
    html = admin.get("/").get_data(as_text=True)
    assert re.search(r"hx-headers='\{\"X-CSRFToken\": \"[^\"]+\"\}'", html)


def test_logout_needs_post_and_csrf(admin):
    assert admin.client.get("/logout").status_code == 405
    assert admin.client.post("/logout").status_code == 400
    assert admin.post("/logout").status_code == 302
    assert admin.client.get("/").status_code == 302


def test_session_cookie_flags(app, client):
    with app.app_context():
        create_admin("admin", PASSWORD)
    b = Browser(client)
    cookie = b.login().headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    # Behind TLS the cookie is Secure.
    tls = Browser(app.test_client())
    html = tls.client.get("/login", base_url="https://appliance.test").get_data(as_text=True)
    resp = tls.client.post("/login", base_url="https://appliance.test",
                           data={"username": "admin", "password": PASSWORD,
                                 "csrf_token": _token(html)},
                           headers={"Referer": "https://appliance.test/login"})
    assert "Secure" in resp.headers["Set-Cookie"]


def test_api_needs_a_token(app, api):
    anonymous = app.test_client()
    resp = anonymous.get("/api/v1/enterprises")
    assert resp.status_code == 401 and resp.get_json()["error"] == "unauthorized"
    assert anonymous.get("/api/v1/enterprises",
                         headers={"Authorization": "Bearer nope"}).status_code == 401
    assert api("GET", "/api/v1/enterprises").status_code == 200


def test_api_with_session_needs_csrf_for_changes(admin):
    assert admin.client.get("/api/v1/enterprises").status_code == 200
    resp = admin.client.post("/api/v1/enterprises", json={"name": "A", "eid": "abcd"})
    assert resp.status_code == 400 and resp.get_json()["error"] == "csrf"
    ok = admin.client.post("/api/v1/enterprises", json={"name": "A", "eid": "abcd"},
                           headers={"X-CSRFToken": admin.csrf()})
    assert ok.status_code == 201


def test_create_token_cli_prints_a_working_token(app, runner):
    with app.app_context():
        create_admin("admin", PASSWORD)
    result = runner.invoke(cli, args=["create-token", "--username", "admin"])
    token = result.output.strip()
    assert token.startswith("apl_")
    client = app.test_client()
    assert client.get("/api/v1/plugins",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 200
    missing = runner.invoke(cli, args=["create-token", "--username", "nobody"])
    assert missing.exit_code != 0 and "No administrator named" in missing.output


def test_create_admin_cli_reads_password_from_stdin(app, runner):
    result = runner.invoke(cli, args=["create-admin", "--username", "ops", "--password-stdin"],
                           input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    short = runner.invoke(cli, args=["create-admin", "--username", "ops2", "--password-stdin"],
                          input="short\n")
    assert short.exit_code != 0 and "Password must be 10 to 256 characters" in short.output
