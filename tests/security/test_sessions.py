"""Login sessions live on the server: logout, a password change and time end them (waitress)."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from appliance.config import SettingError, from_env
from appliance.db import db, utcnow
from tests.conftest import PASSWORD
from tests.security.served import Served

NEW_PASSWORD = "another-horse-staple"


@pytest.fixture
def served(tmp_path):
    s = Served(tmp_path, SESSION_IDLE_MINUTES=60, SESSION_MAX_HOURS=12)
    yield s
    s.close()


def _logged_in(agent) -> bool:
    status, headers, _ = agent.get("/enterprises")
    assert status in (200, 302), status
    return status == 200


def _sessions(app) -> list:
    from appliance.models import AdminSession  # imported here: each test fails on its own

    with app.app_context():
        return list(db.session.scalars(select(AdminSession).order_by(AdminSession.id)))


def _age(app, **ago) -> None:
    """Move every session's times back by the given timedelta keywords."""
    from appliance.models import AdminSession

    with app.app_context():
        for row in db.session.scalars(select(AdminSession)):
            row.created_at -= timedelta(**ago.get("created", {}))
            row.last_seen_at -= timedelta(**ago.get("seen", {}))
        db.session.commit()


def test_a_copied_cookie_stops_working_after_logout(served):
    browser = served.agent()
    assert browser.login() == 302
    thief = served.agent(cookie=browser.cookie)
    assert _logged_in(thief)
    assert thief.get("/api/v1/enterprises")[0] == 200

    status, headers, _ = browser.post("/logout")
    assert status == 302 and headers["Location"].endswith("/login")
    # The copy still carries a validly signed cookie, but its session is gone.
    status, headers, _ = thief.get("/enterprises")
    assert status == 302 and "/login" in headers["Location"]
    assert thief.get("/api/v1/enterprises")[0] == 401
    assert _sessions(served.app) == []


def test_the_cookie_holds_a_session_id_whose_digest_alone_is_stored(served):
    browser = served.agent()
    assert browser.login() == 302
    (row,) = _sessions(served.app)
    with served.app.test_request_context():
        data = served.app.session_interface.get_signing_serializer(served.app).loads(
            browser.cookie.split("=", 1)[1])
    assert "uid" not in data and len(data["sid"]) >= 40
    assert row.digest != data["sid"] and data["sid"] not in row.digest


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(served):
    here, elsewhere = served.agent(), served.agent()
    assert here.login() == 302 and elsewhere.login() == 302

    wrong = here.post("/password", {"current": "not-the-password", "password": NEW_PASSWORD,
                                    "confirm": NEW_PASSWORD}, page="/password")
    assert wrong[0] == 422 and "The current password is wrong" in wrong[2]
    short = here.post("/password", {"current": PASSWORD, "password": "short",
                                    "confirm": "short"}, page="/password")
    assert short[0] == 422 and "Password must be 10 to 256 characters" in short[2]
    assert _logged_in(elsewhere)  # nothing changed yet

    status, headers, _ = here.post("/password", {"current": PASSWORD, "password": NEW_PASSWORD,
                                                 "confirm": NEW_PASSWORD}, page="/password")
    assert status == 302
    assert _logged_in(here)
    assert not _logged_in(elsewhere)
    assert served.agent().login(password=PASSWORD) == 401
    assert served.agent().login(password=NEW_PASSWORD) == 302


def test_an_idle_session_ends(served):
    browser = served.agent()
    assert browser.login() == 302
    _age(served.app, seen={"minutes": 59})
    assert _logged_in(browser)  # 59 minutes idle: still on, and now seen again
    _age(served.app, seen={"minutes": 59})
    assert _logged_in(browser)
    _age(served.app, seen={"minutes": 61})
    assert not _logged_in(browser)
    assert _sessions(served.app) == []


def test_a_session_ends_at_its_maximum_lifetime_however_busy(served):
    browser = served.agent()
    assert browser.login() == 302
    _age(served.app, created={"hours": 11, "minutes": 58})
    assert _logged_in(browser)
    _age(served.app, created={"minutes": 3})
    assert not _logged_in(browser)


def test_last_seen_is_written_at_most_once_a_minute(served):
    browser = served.agent()
    assert browser.login() == 302
    (first,) = _sessions(served.app)
    for _ in range(3):
        assert _logged_in(browser)
    assert _sessions(served.app)[0].last_seen_at == first.last_seen_at
    _age(served.app, seen={"minutes": 2})
    assert _logged_in(browser)
    assert _sessions(served.app)[0].last_seen_at >= utcnow() - timedelta(seconds=30)


def test_set_password_cli_ends_every_session(served):
    browser = served.agent()
    assert browser.login() == 302
    from appliance.cli import cli

    result = served.app.test_cli_runner().invoke(
        cli, ["set-password", "--username", "admin", "--password-stdin"],
        input=NEW_PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert "1 session(s) ended" in result.output
    assert not _logged_in(browser)
    assert served.agent().login(password=NEW_PASSWORD) == 302


def test_session_settings_come_from_the_environment():
    cfg = from_env({"APPLIANCE_SESSION_IDLE_MINUTES": "15", "APPLIANCE_SESSION_MAX_HOURS": "2"})
    assert (cfg["SESSION_IDLE_MINUTES"], cfg["SESSION_MAX_HOURS"]) == (15, 2)
    assert (from_env({})["SESSION_IDLE_MINUTES"], from_env({})["SESSION_MAX_HOURS"]) == (60, 12)
    with pytest.raises(SettingError, match="APPLIANCE_SESSION_IDLE_MINUTES"):
        from_env({"APPLIANCE_SESSION_IDLE_MINUTES": "0"})
