"""Failed logins are counted atomically, before the password is checked, and an unknown user
name costs as much as a wrong password: real concurrent requests against waitress."""

import statistics
import threading
import time

import pytest

from appliance.config import DEFAULTS
from tests.conftest import PASSWORD
from tests.security.served import Served

ATTEMPTS = 8
LIMIT = 5


@pytest.fixture
def served(tmp_path):
    s = Served(tmp_path, threads=ATTEMPTS, LOGIN_MAX_FAILURES=LIMIT, LOGIN_LOCK_SECONDS=600,
               LOGIN_FAIL_DELAY=0)
    yield s
    s.close()


def test_of_eight_concurrent_wrong_passwords_at_most_five_are_checked(served):
    agents = [served.agent() for _ in range(ATTEMPTS)]
    tokens = [a.csrf("/login") for a in agents]
    start = threading.Barrier(ATTEMPTS)
    statuses = [None] * ATTEMPTS

    def attempt(i):
        start.wait()
        statuses[i] = agents[i].request("POST", "/login", {
            "username": "admin", "password": f"wrong-password-{i}", "csrf_token": tokens[i]})[0]

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(ATTEMPTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    # 401: the password was checked and wrong; 429: refused unchecked, the account is locked.
    assert sorted(statuses) == [401] * LIMIT + [429] * (ATTEMPTS - LIMIT), statuses
    assert served.agent().login(password=PASSWORD) == 429  # locked, even for the right one


def test_the_lock_is_per_user_name_and_a_right_password_resets_the_count(served):
    browser = served.agent()
    for _ in range(LIMIT - 1):
        assert browser.login(password="wrong-password") == 401
    assert browser.login() == 302
    for _ in range(LIMIT):
        assert served.agent().login(password="wrong-password") == 401
    assert served.agent().login() == 429
    assert served.agent().login(username="nobody", password="wrong-password") == 401


def _timed_login(served, username: str, password: str) -> float:
    agent = served.agent()
    token = agent.csrf("/login")
    started = time.perf_counter()
    status, _, _ = agent.request("POST", "/login", {"username": username, "password": password,
                                                    "csrf_token": token})
    elapsed = time.perf_counter() - started
    assert status == 401
    return elapsed


def test_an_unknown_user_name_answers_as_slowly_as_a_wrong_password(tmp_path):
    # The appliance's own hash method (tests use a cheap one), so the check dominates.
    served = Served(tmp_path, LOGIN_MAX_FAILURES=1000, LOGIN_FAIL_DELAY=0,
                    PASSWORD_HASH=DEFAULTS["PASSWORD_HASH"])
    try:
        _timed_login(served, "warm-up", "wrong-password")
        unknown, wrong = [], []
        for i in range(7):
            unknown.append(_timed_login(served, f"nobody-{i}", "wrong-password"))
            wrong.append(_timed_login(served, "admin", "wrong-password"))
    finally:
        served.close()
    # The password hash check dominates a failed login; without it an unknown name answers
    # several times faster, which tells an attacker which names exist.
    assert statistics.median(unknown) > 0.6 * statistics.median(wrong), (unknown, wrong)
