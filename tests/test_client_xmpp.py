"""The client service end to end: a real Prosody, configured by the appliance, signs the
accounts of an LDAP synchronizer in with their directory passwords (checked by the appliance
against a real slapd), gives them the directory as their roster, pushes its changes, and
ends the sessions of an account that is disabled. Real slixmpp clients."""

import json
import os
import subprocess
import time

import pytest

from appliance.api_tokens import new_token
from appliance.db import db
from appliance.models import Account, Enterprise, User
from tests.ejabberd_server import Ejabberd, ejabberd_available
from tests.ldap_server import PEOPLE_DN, Slapd, person
from tests.prosody_server import Prosody, prosody_available, serving
from tests.security.served import Served
from tests.servers import wait_until as wait
from tests.test_sync import ldap
from tests.xmpp_clients import XmppClient

DOMAIN = "acme.test"


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    with Slapd(tmp_path_factory.mktemp("slapd"), people=4) as server:
        for i in range(4):
            server.modify(f"uid=user{i},{PEOPLE_DN}", {"userPassword": f"secret-{i}"})
        yield server


@pytest.fixture(scope="module")
def world(tmp_path_factory, slapd):
    """The appliance (waitress), its enterprise synced from slapd, and its Prosody."""
    # Never skipped: `make test` installs Prosody, and a missing one must fail loudly.
    assert prosody_available(), "Prosody is not installed: run `make test`, which does"
    tmp = tmp_path_factory.mktemp("client")
    served = Served(tmp / "app", XMPP_SIGNIN_TIMEOUT=1.5)  # the directory-down test waits
    app = served.app
    app.config["XMPP_LINK_URL"] = f"http://127.0.0.1:{served.port}"
    api = served.agent()
    token = _token(app)
    with app.test_request_context():
        ent = Enterprise(eid="acme", name="Acme", im_domain=DOMAIN)
        db.session.add(ent)
        db.session.commit()
        ent_id = ent.id
    slapd.ca_into(app.config["IMPORT_DIR"])
    status, _, body = api.request("POST", f"/api/v1/sync/enterprises/{ent_id}/ldap",
                                  headers=token, json_body=ldap(slapd))
    assert status == 201, body
    syn_id = json.loads(body)["id"]
    world = {"app": app, "api": api, "token": token, "syn": syn_id, "ent": ent_id}
    sync(world)
    server, ca = serving(app, tmp / "prosody", DOMAIN)
    with server:
        world["prosody"], world["ca"], world["tmp"] = server, ca, tmp
        yield world
    served.close()


def _token(app) -> dict:
    with app.app_context():
        user = db.session.scalar(db.select(User))
        return {"Authorization": f"Bearer {new_token(user, 'test')}"}


def sync(world) -> None:
    status, _, body = world["api"].request(
        "POST", f"/api/v1/sync/synchronizers/{world['syn']}/sync", headers=world["token"])
    assert status == 202, body
    run = json.loads(body)["run_id"]
    with world["app"].app_context():
        done = world["app"].extensions["appliance"].jobs.wait(run, timeout=60)
    assert done.state == "succeeded", done.message


def _account(world, login: str) -> int:
    with world["app"].app_context():
        return db.session.scalar(db.select(Account.id).filter_by(login=login))


def _get(world, path: str) -> dict:
    status, _, body = world["api"].request("GET", path, headers=world["token"])
    assert status == 200, body
    return json.loads(body)


def client(world, user: str, password: str) -> XmppClient:
    c = XmppClient(f"{user}@{DOMAIN}", password, world["prosody"].c2s,
                   world["prosody"].ca_file)
    c.failures = []
    c.xmpp.add_event_handler(
        "failed_auth", lambda stanza: c.failures.append(stanza.get_condition()))
    return c




def test_a_synced_user_signs_in_and_finds_the_directory(world):
    alice = client(world, "user0", "secret-0").connect()
    try:
        account = _account(world, "user0")
        assert wait(lambda: _get(world, f"/api/v1/accounts/{account}")["online"] is True)
        got = alice.roster()
        # Grouped by department (departmentNumber: user<i> is in D<i>).
        assert got[f"user1@{DOMAIN}"] == ("First1 Last1", "both", ["D1"])
        assert set(got) == {f"user{i}@{DOMAIN}" for i in (1, 2, 3)}
        bob = client(world, "user1", "secret-1").connect()
        try:
            assert alice.wait_presence(f"user1@{DOMAIN}")  # the shared roster carries presence
            bob.send_message(f"user0@{DOMAIN}", "hello from the directory")
            assert alice.wait_message() == (f"user1@{DOMAIN}", "hello from the directory")
        finally:
            bob.disconnect()
    finally:
        alice.disconnect()
    assert wait(lambda: _get(world, f"/api/v1/accounts/{account}")["online"] is False)


def test_a_wrong_password_is_refused(world):
    c = client(world, "user2", "not-it")
    with pytest.raises(RuntimeError, match="authentication failed"):
        c.connect()
    assert c.failures and c.failures[0] == "not-authorized"


def test_a_second_sync_reaches_connected_users_as_roster_pushes(world, slapd):
    alice = client(world, "user0", "secret-0").connect()
    assert f"user7@{DOMAIN}" not in alice.roster()
    dn, attrs = person(7)
    slapd.add(dn, attrs)
    sync(world)
    assert wait(lambda: f"user7@{DOMAIN}" in {str(j) for j in alice.xmpp.client_roster})
    assert alice.xmpp.client_roster[f"user7@{DOMAIN}"]["name"] == "First7 Last7"


def test_disabling_an_account_ends_its_session_within_5_seconds(world):
    carol = client(world, "user3", "secret-3").connect()
    with world["app"].app_context():
        acc = db.session.scalar(db.select(Account).filter_by(login="user3"))
    status, _, _ = world["api"].request("PUT", f"/api/v1/accounts/{acc.id}",
                                        headers=world["token"], json_body={"enabled": False})
    assert status == 200
    t0 = time.monotonic()
    assert wait(lambda: not carol.connected, timeout=5)
    print(f"[client] signed out {time.monotonic() - t0:.2f} s after the API call")
    again = client(world, "user3", "secret-3")
    with pytest.raises(RuntimeError):
        again.connect()
    assert again.failures[0] == "account-disabled"


def test_an_unreachable_directory_is_a_temporary_failure(world, slapd):
    slapd.pause()
    try:
        c = client(world, "user2", "secret-2")
        with pytest.raises(RuntimeError):
            c.connect(timeout=20)
    finally:
        slapd.resume()
    assert c.failures[0] == "temporary-auth-failure"
    client(world, "user2", "secret-2").connect()  # and it works again, unchanged


def meet_and_chat(world, other: XmppClient) -> None:
    """The directory user user0 and `other`, a user of another server, subscribe to each
    other, see each other's presence and exchange a message each way; user0's roster still
    holds the directory."""
    dave = client(world, "user0", "secret-0").connect()
    try:
        other.subscribe(f"user0@{DOMAIN}")
        dave.subscribe(other.jid)
        assert other.wait_subscription(f"user0@{DOMAIN}", "both", timeout=20)
        assert dave.wait_subscription(other.jid, "both", timeout=20)
        assert other.wait_presence(f"user0@{DOMAIN}", timeout=15)
        assert dave.wait_presence(other.jid, timeout=15)
        dave.send_message(other.jid, "hello across servers")
        assert other.wait_message(15) == (f"user0@{DOMAIN}", "hello across servers")
        other.send_message(f"user0@{DOMAIN}", "and back")
        assert dave.wait_message(15) == (other.jid, "and back")
        assert f"user1@{DOMAIN}" in dave.roster()  # the directory is still there
    finally:
        dave.disconnect()


def test_a_directory_user_and_a_federated_user_see_each_other_and_chat(world):
    """With a second real Prosody on 127.0.0.2 (remote.test), routed both ways."""
    ours = world["prosody"]
    remote = Prosody(world["tmp"] / "remote", world["ca"], "remote.test", "127.0.0.2",
                     domains=[DOMAIN], routes={DOMAIN: ours.s2s}).start()
    try:
        assert ours.apply(federation_enabled=True, domains=["remote.test"],
                          routes={"remote.test": remote.s2s})
        assert ours.service.wait_applied()
        rita = XmppClient(remote.register("rita", "rita-password"), "rita-password",
                          remote.c2s, remote.ca_file).connect()
        try:
            meet_and_chat(world, rita)
        finally:
            rita.disconnect()
    finally:
        ours.apply(federation_enabled=False, domains=[], routes={})
        remote.stop()


def test_a_directory_user_and_an_ejabberd_user_see_each_other_and_chat(world):
    """With a real ejabberd 23.01 on 127.0.0.3 (ejabberd.test), routed both ways: it finds
    acme.test through an /etc/hosts of its own and dials our s2s port."""
    # Never skipped: `make test` installs ejabberd, and a missing one must fail loudly.
    assert ejabberd_available(), "ejabberd is not installed: run `make test`, which does"
    ours = world["prosody"]
    t0 = time.monotonic()
    other = Ejabberd(world["ca"], "ejabberd.test", "127.0.0.3",
                     hosts={DOMAIN: ours.s2s[0]}, s2s_port=ours.s2s[1]).start()
    try:
        erin_jid = other.register("erin", "erin-password")
        print(f"[ejabberd] started and registered a user in {time.monotonic() - t0:.2f} s")
        assert ours.apply(federation_enabled=True, domains=["ejabberd.test"],
                          routes={"ejabberd.test": other.s2s})
        assert ours.service.wait_applied()
        erin = XmppClient(erin_jid, "erin-password", other.c2s, other.ca_file).connect()
        try:
            meet_and_chat(world, erin)
        finally:
            erin.disconnect()
    finally:
        ours.apply(federation_enabled=False, domains=[], routes={})
        other.stop()


def test_the_im_domain_does_not_change_under_signed_in_users(world):
    alice = client(world, "user0", "secret-0").connect()
    try:
        account = _account(world, "user0")
        assert wait(lambda: _get(world, f"/api/v1/accounts/{account}")["online"] is True)
        status, _, body = world["api"].request(
            "PUT", f"/api/v1/enterprises/{world['ent']}", headers=world["token"],
            json_body={"im_domain": "renamed.test"})
        assert status == 409 and json.loads(body)["error"] == "signed_in", body
        assert "signed in to acme.test" in json.loads(body)["message"]
        assert _get(world, f"/api/v1/enterprises/{world['ent']}")["im_domain"] == DOMAIN
        assert alice.connected
    finally:
        alice.disconnect()


def test_a_client_of_another_make_signs_in_and_chats(world):
    """Debian's go-sendxmpp (Go, its own XMPP library), as a desktop client connects: the
    client port, StartTLS checked against the CA for the IM domain, the directory password."""
    host, port = world["prosody"].c2s
    env = {**os.environ, "SSL_CERT_FILE": world["prosody"].ca_file, "HOME": str(world["tmp"])}

    def send(password: str, trust: dict = env) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["go-sendxmpp", "-u", f"user1@{DOMAIN}", "-p", password, "-j", f"{host}:{port}",
             "--timeout", "10", f"user0@{DOMAIN}"], input="hello from go-sendxmpp",
            env=trust, capture_output=True, text=True, timeout=60)

    alice = client(world, "user0", "secret-0").connect()
    try:
        sent = send("secret-1")
        assert sent.returncode == 0, sent.stderr
        assert alice.wait_message() == (f"user1@{DOMAIN}", "hello from go-sendxmpp")
        refused = send("not-it")
        assert refused.returncode != 0 and "auth failure" in refused.stderr, refused.stderr
        # Without our CA it trusts only the system's: the certificate is refused.
        untrusted = send("secret-1", {k: v for k, v in env.items() if k != "SSL_CERT_FILE"})
        assert untrusted.returncode != 0 and "certificate" in untrusted.stderr, (
            untrusted.stderr)
        assert alice.wait_message(0) is None  # neither got through
    finally:
        alice.disconnect()
