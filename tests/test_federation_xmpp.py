"""The Federation tab driving a real embedded Prosody, federating with real Prosody servers.

appliance.test (127.0.0.1) runs on the configuration the plugin writes; ocs.test, a
NextPlane-like hub serving partner.test, and bad.test (whose certificate is for another
name) run on 127.0.0.2. Every change goes through the appliance's API and reaches the
running Prosody by a reload: its PID never changes.
"""

import shutil
import subprocess
import time

import pytest
import trustme

from tests.conftest import build
from tests.prosody_server import Prosody, accepts, closed_port, free_port
from tests.servers import ServerProcess, wait_until
from tests.xmpp_clients import XmppClient

PW = "user-Secret-42"


class ApplianceProsody(ServerProcess):
    """Prosody on the configuration file the appliance wrote; ready when its ports accept."""

    timeout = 20.0

    def __init__(self, config_path, c2s, s2s):
        self.c2s, self.s2s = c2s, s2s
        super().__init__(["prosody", "-F", "--config", str(config_path)])

    def start(self):
        self.proc = subprocess.Popen(self.args, text=True, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._watch()
        deadline = time.monotonic() + self.timeout
        while not (accepts(*self.c2s) and accepts(*self.s2s)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the appliance's Prosody did not start:\n"
                                   + "".join(self.output))
            time.sleep(0.05)
        return self


class Net:
    pass


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    root = tmp_path_factory.mktemp("fed")
    ca = trustme.CA()
    n = Net()
    started: list = []  # stopped at the end even when the set-up fails half-way
    try:
        yield from _net(n, root, ca, started)
    finally:
        for c in (getattr(n, "alice", None), getattr(n, "bob", None),
                  getattr(n, "carol", None)):
            if c is not None:
                c.disconnect()
        for p in started:
            p.stop()
        if hasattr(n, "app"):
            n.app.extensions["appliance"].jobs.shutdown()


def _net(n, root, ca, started):
    n.c2s, n.s2s = free_port("127.0.0.1"), free_port("127.0.0.1")
    back = {"appliance.test": ("127.0.0.1", n.s2s)}
    n.ocs = Prosody(root / "ocs", ca, "ocs.test", "127.0.0.2", domains=["appliance.test"],
                    routes=back).start()
    started.append(n.ocs)
    n.hub = Prosody(root / "hub", ca, "partner.test", "127.0.0.2", domains=["appliance.test"],
                    routes=back).start()
    started.append(n.hub)
    n.bad = Prosody(root / "bad", ca, "bad.test", "127.0.0.2", cert_name="other.test",
                    domains=["appliance.test"], routes=back).start()
    started.append(n.bad)
    cert = ca.issue_cert("appliance.test")
    pem = root / "appliance.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
    ca.cert_pem.write_to_path(str(root / "ca.pem"))
    n.ca_file = str(root / "ca.pem")
    n.config_path = root / "app" / "xmpp" / "prosody.cfg.lua"
    n.app = build(root / "app", HOSTNAME="appliance.test", XMPP_CONFIG=str(n.config_path),
                  XMPP_HOSTS=f"ocs.test={n.ocs.s2s[0]}:{n.ocs.s2s[1]}", XMPP_TEST_TIMEOUT=6)
    for name in ("appliance.pem", "ca.pem"):  # as an administrator would: into the import dir
        shutil.copy(root / name, n.app.config["IMPORT_DIR"])
    with n.app.app_context():
        from appliance.auth import create_admin, new_token
        n.token = new_token(create_admin("admin", "correct-horse-battery"))
    client = n.app.test_client()

    def api(method, url, json=None):
        resp = client.open(url, method=method, json=json,
                           headers={"Authorization": f"Bearer {n.token}"})
        return resp.status_code, resp.get_json()
    n.api = api
    status, body = api("PUT", "/api/v1/federation/settings", {
        "domain": "appliance.test", "c2s_port": n.c2s, "s2s_port": n.s2s,
        "interfaces": "127.0.0.1", "cert_file": "appliance.pem", "key_file": "appliance.pem",
        "ca_file": "ca.pem"})
    assert status == 200, body
    api("POST", "/api/v1/federation/enable")
    n.set_servers = lambda rows: api("PUT", "/api/v1/federation/servers", {"servers": rows})
    assert n.set_servers([{"domain": "ocs.test"}])[0] == 200
    n.prosody = ApplianceProsody(n.config_path, ("127.0.0.1", n.c2s),
                                 ("127.0.0.1", n.s2s)).start()
    started.append(n.prosody)
    subprocess.run(["prosodyctl", "--config", str(n.config_path), "register", "alice",
                    "appliance.test", PW], check=True, capture_output=True)
    n.bob = XmppClient(n.ocs.register("bob", PW), PW, n.ocs.c2s, n.ca_file).connect()
    n.carol = XmppClient(n.hub.register("carol", PW), PW, n.hub.c2s, n.ca_file).connect()
    n.alice = XmppClient("alice@appliance.test", PW, ("127.0.0.1", n.c2s), n.ca_file).connect()
    yield n


def _links(n, remote: str) -> list[dict]:
    return [c for c in n.api("GET", "/api/v1/federation")[1]["service"]["connections"]
            if c["remote"] == remote]


def delivered(n, to_client, to_jid, body, timeout=10) -> bool:
    n.alice.send_message(to_jid, body)
    got = to_client.wait_message(timeout)
    return got is not None and got[1] == body


def test_chat_and_presence_reach_the_federated_server(net):
    pid = net.prosody.pid
    assert delivered(net, net.bob, "bob@ocs.test", "hello from appliance.test")
    net.alice.subscribe("bob@ocs.test")
    net.bob.subscribe("alice@appliance.test")
    assert net.alice.wait_subscription("bob@ocs.test", "both", timeout=15)
    assert net.bob.wait_subscription("alice@appliance.test", "both", timeout=15)
    state = net.api("GET", "/api/v1/federation")[1]["service"]
    assert state["running"] and state["version"].startswith("0.12")
    assert state["s2s_port"] == net.s2s
    assert any(c["remote"] == "ocs.test" for c in state["connections"]), state
    assert net.prosody.pid == pid


def test_the_admin_sees_each_link_and_can_disconnect_it(net):
    assert delivered(net, net.bob, "bob@ocs.test", "open the link")
    links = net.api("GET", "/api/v1/federation")[1]["service"]["connections"]
    ours = [c for c in links if c["remote"] == "ocs.test" and c["direction"] == "out"]
    assert ours and ours[0]["local"] == "appliance.test" and ours[0]["by"] == "certificate"
    status, body = net.api("POST", "/api/v1/federation/links/disconnect",
                           {"local": "appliance.test", "remote": "ocs.test"})
    assert status == 200 and "Disconnected ocs.test" in body["message"], body
    assert not [c for c in net.api("GET", "/api/v1/federation")[1]["service"]["connections"]
                if c["remote"] == "ocs.test"]
    missing = net.api("POST", "/api/v1/federation/links/disconnect",
                      {"local": "appliance.test", "remote": "ocs.test"})
    assert missing[0] == 404
    assert delivered(net, net.bob, "bob@ocs.test", "and it opens again on the next message")


def test_removing_the_domain_or_disabling_stops_delivery_without_a_restart(net):
    pid = net.prosody.pid
    t0 = time.monotonic()
    assert net.set_servers([])[0] == 200
    errors = len(net.alice.errors)
    net.alice.send_message("bob@ocs.test", "should not arrive")
    error = net.alice.wait_error(10, since=errors)
    elapsed = time.monotonic() - t0
    print(f"Apply -> refused delivery: {elapsed * 1000:.0f} ms")
    assert error is not None and error["condition"] == "not-allowed", net.alice.errors
    assert net.bob.wait_message(0) is None  # bounced, not routed: no need to wait

    assert not _links(net, "ocs.test")  # removal closed them
    status, body = net.set_servers([{"domain": "ocs.test"}])
    assert status == 200 and "Opening our links to ocs.test now" in body["message"], body
    assert "may take a few minutes to connect back" in body["message"]
    # Re-added, our side connects at once, before anyone sends anything.
    assert wait_until(lambda: [c for c in _links(net, "ocs.test")
                               if c["direction"] == "out" and c["authenticated"]], timeout=15)
    assert delivered(net, net.bob, "bob@ocs.test", "back again")

    net.api("POST", "/api/v1/federation/disable")
    errors = len(net.alice.errors)
    net.alice.send_message("bob@ocs.test", "federation is off")
    assert net.alice.wait_error(10, since=errors) is not None
    assert net.bob.wait_message(0) is None  # bounced, not routed: no need to wait
    net.api("POST", "/api/v1/federation/enable")
    assert delivered(net, net.bob, "bob@ocs.test", "on again")
    assert net.prosody.pid == pid and net.alice.connected and net.alice.disconnects == 0


def test_a_nextplane_row_routes_its_domain_to_the_given_server(net):
    hub_host, hub_port = net.hub.s2s
    assert net.set_servers([{"domain": "ocs.test"}, {
        "domain": "partner.test", "nextplane": True, "server": hub_host,
        "port": hub_port}])[0] == 200
    assert delivered(net, net.carol, "carol@partner.test", "via the hub")


def test_the_test_action_reports_ok_or_why_not(net):
    bad_host, bad_port = net.bad.s2s
    status, body = net.set_servers([
        {"domain": "ocs.test"},
        {"domain": "bad.test", "nextplane": True, "server": bad_host, "port": bad_port},
        {"domain": "down.test", "nextplane": True, "server": "127.0.0.2",
         "port": closed_port("127.0.0.2")}])
    assert status == 200, body
    ids = {s["domain"]: s["id"] for s in body["items"]}

    def test(domain):
        return net.api("POST", f"/api/v1/federation/servers/{ids[domain]}/test")[1]

    ok = test("ocs.test")
    assert ok["ok"] is True, ok
    out = [link for link in ok["links"] if link["direction"] == "out"]
    assert out and out[0]["authenticated"] and out[0]["by"] == "certificate", ok
    assert out[0]["tls"] and out[0]["tls"].startswith("TLS"), ok
    assert "our stream to it: authenticated by certificate" in ok["directions"], ok
    bad = test("bad.test")
    assert bad["ok"] is False and bad["reason"] == "certificate", bad
    down = test("down.test")
    assert down["ok"] is False and down["reason"] in ("not_found", "timeout"), down
    assert down["message"]
    assert "our stream to it: not established" in down["directions"], down
