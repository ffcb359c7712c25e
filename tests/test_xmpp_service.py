"""The embedded XMPP service against real Prosody 0.12 instances (no mocks).

appliance.test runs on 127.0.0.1 with the appliance's config and module; ocs.test on
127.0.0.2 and hub.test on 127.0.0.3 are the "external" servers (same config generator and
module, with static routes back to appliance.test since there is no DNS).
"""

from __future__ import annotations

import socket
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest
import trustme

from appliance.plugins.federation.probe import classify_error, probe
from appliance.xmpp.config import XmppConfig, lua_string, render
from appliance.xmpp.prosody import XmppError, XmppService
from tests.prosody_server import Prosody, closed_port, free_port, prosody_available
from tests.xmpp_clients import XmppClient

PASSWORDS = {"alice": "alice-Secret-1", "bob": "bob-Secret-2", "carol": "carol-Secret-3",
             "probe": "probe-Secret-4"}


class Net:
    """The running servers and logged-in clients shared by this module's tests."""

    def __init__(self, base: Path, ca: trustme.CA):
        self.ca = ca
        self.base = base
        self.app_s2s = free_port("127.0.0.1")
        self.ocs_s2s = free_port("127.0.0.2")
        self.hub_s2s = free_port("127.0.0.3")
        back = {"appliance.test": ("127.0.0.1", self.app_s2s)}
        self.baseline = {"federation_enabled": True, "domains": ["ocs.test"],
                         "routes": {"ocs.test": ("127.0.0.2", self.ocs_s2s)}}
        self.app = Prosody(base / "appliance", ca, "appliance.test", "127.0.0.1",
                           s2s_port=self.app_s2s, **self.baseline)
        self.ocs = Prosody(base / "ocs", ca, "ocs.test", "127.0.0.2", s2s_port=self.ocs_s2s,
                           domains=["appliance.test"], routes=back)
        # NextPlane-like: only reachable through a static route, not in the domain list.
        self.hub = Prosody(base / "hub", ca, "hub.test", "127.0.0.3", s2s_port=self.hub_s2s,
                           routes=back)
        self.servers = [self.app, self.ocs, self.hub]
        self.clients: list[XmppClient] = []

    def start(self) -> Net:
        for server in self.servers:
            server.start()
        self.app.register("alice", PASSWORDS["alice"])
        self.app.register("probe", PASSWORDS["probe"])
        self.ocs.register("bob", PASSWORDS["bob"])
        self.hub.register("carol", PASSWORDS["carol"])
        self.alice = self.client(self.app, "alice")
        self.bob = self.client(self.ocs, "bob")
        self.carol = self.client(self.hub, "carol")
        return self

    def client(self, server: Prosody, user: str) -> XmppClient:
        client = XmppClient(f"{user}@{server.domain}", PASSWORDS[user], server.c2s,
                            server.ca_file).connect()
        self.clients.append(client)
        return client

    def stop(self) -> None:
        for client in self.clients:
            client.disconnect()
        for server in self.servers:
            server.stop()

    def apply(self, **changes) -> float:
        """Apply changes to appliance.test by a reload; seconds until it was in force."""
        assert self.app.apply(**changes)
        start = time.monotonic()
        assert self.app.service.wait_applied(10)
        return time.monotonic() - start

    def probe(self, domain: str, timeout: float = 5, password: str | None = None) -> dict:
        return probe("probe@appliance.test", password or PASSWORDS["probe"], self.app.c2s,
                     domain, self.app.ca_file, timeout)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    # Never skipped: `make test` installs Prosody, and a missing one must fail loudly.
    assert prosody_available(), "Prosody is not installed: run `make test`, which installs it"
    net = Net(tmp_path_factory.mktemp("xmpp"), trustme.CA())
    try:
        yield net.start()
    finally:
        net.stop()


@pytest.fixture
def baseline(net):
    """Put appliance.test's federation policy back as it was after the test."""
    yield net
    if net.app.apply(**net.baseline):
        assert net.app.service.wait_applied(10)


def drain(client: XmppClient) -> None:
    while client.wait_message(0) is not None:
        pass


def delivered(sender: XmppClient, receiver: XmppClient, to: str, body: str,
              timeout: float = 5) -> bool:
    """Send `body`; whether the receiver gets exactly it within `timeout`."""
    drain(receiver)
    sender.send_message(to, body)
    got = receiver.wait_message(timeout)
    return got is not None and got[1] == body


def refused(sender: XmppClient, receiver: XmppClient, to: str, body: str) -> dict:
    """Send `body`, which must come back as an error: the error, once it is there (no fixed
    wait). The receiver has nothing then: the stanza was bounced, not routed."""
    drain(receiver)
    seen = len(sender.errors)
    sender.send_message(to, body)
    error = sender.wait_error(since=seen)
    assert error is not None, f"{body!r} to {to} was not refused"
    assert receiver.wait_message(0) is None
    return error


# --- render() and the service without a server ----------------------------------------------

LUA_DUMP = r"""
local env, vhosts = {}, {}
env.VirtualHost = function(name) vhosts[#vhosts + 1] = name end
assert(loadfile(arg[1], "t", env))()
local function hex(s) return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end)) end
local names = {}
for k in pairs(env) do if k ~= "VirtualHost" then names[#names + 1] = k end end
table.sort(names)
print("globals " .. table.concat(names, ","))
for _, v in ipairs(vhosts) do print("vhost " .. hex(v)) end
print("data_path " .. hex(env.data_path))
print("domain0 " .. hex(env.appliance_federation_domains[1]))
for k, v in pairs(env.appliance_federation_routes) do
  print("route " .. hex(k) .. " " .. hex(v.host))
end
"""


def test_lua_string_escapes_everything_that_could_end_the_string():
    assert lua_string('a"b') == r'"a\"b"'
    assert lua_string("a\\b") == r'"a\\b"'
    assert lua_string("a\nb\r\x00") == r'"a\010b\013\000"'
    assert lua_string("x\n1") == r'"x\0101"'  # three digits: the 1 is not part of it


def test_render_cannot_be_injected(tmp_path):
    evil = 'evil.test"\nadmins = { "mallory@evil.test" }\n-- '
    cfg = XmppConfig(evil, data_dir=str(tmp_path / 'd"ata\n x = 1'), domains=[evil],
                     routes={evil: ('1.2.3.4"; y = 2 --', 5269)}, federation_enabled=True)
    text = render(cfg)
    assert not any(line.startswith(("admins", " x", "y")) for line in text.splitlines())
    path = tmp_path / "cfg.lua"
    path.write_text(text)
    script = tmp_path / "dump.lua"
    script.write_text(LUA_DUMP)
    out = subprocess.run(["lua5.4", str(script), str(path)], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    values = dict(line.split(" ", 1) for line in out if not line.startswith("route "))
    assert "admins" not in values["globals"].split(",")
    assert set(values["globals"].split(",")) >= {"data_path", "appliance_federation_enabled"}
    assert bytes.fromhex(values["vhost"]).decode() == evil
    assert bytes.fromhex(values["domain0"]).decode() == evil
    assert bytes.fromhex(values["data_path"]).decode() == cfg.data_dir
    route = next(line for line in out if line.startswith("route ")).split()
    assert bytes.fromhex(route[1]).decode() == evil
    assert bytes.fromhex(route[2]).decode() == '1.2.3.4"; y = 2 --'


def test_render_has_the_policy_and_security_options(tmp_path):
    cfg = XmppConfig("appliance.test", data_dir=str(tmp_path), federation_enabled=True,
                     domains=["ocs.test"], routes={"hub.test": ("192.0.2.7", 5270)},
                     cert_file="/c.pem", key_file="/k.pem", ca_file="/ca.pem")
    text = render(cfg)
    for line in ['s2s_secure_auth = true', 'c2s_require_encryption = true',
                 'authentication = "internal_hashed"', 'allow_registration = false',
                 'http_ports = {}', 'https_ports = {}', 'appliance_federation_enabled = true',
                 'appliance_federation_domains = { "ocs.test" }',
                 'appliance_federation_routes = { ["hub.test"] = '
                 '{ host = "192.0.2.7", port = 5270 }; }',
                 'ssl = { certificate = "/c.pem"; key = "/k.pem"; cafile = "/ca.pem" }',
                 'VirtualHost "appliance.test"']:
        assert line in text.splitlines()
    assert '"appliance_federation"' in text and '"admin_shell"' in text
    with pytest.raises(ValueError):
        render(XmppConfig("appliance.test", data_dir=str(tmp_path), c2s_port=70000))


def test_write_only_when_changed_and_not_running(tmp_path):
    service = XmppService(tmp_path / "etc" / "prosody.cfg.lua")
    cfg = XmppConfig("appliance.test", data_dir=str(tmp_path / "data"))
    assert service.write(cfg) is True
    assert stat.S_IMODE(service.config_path.stat().st_mode) == 0o640
    assert service.write(cfg) is False
    assert service.write(XmppConfig("appliance.test", data_dir=cfg.data_dir,
                                    federation_enabled=True)) is True
    assert not service.running() and service.pid() is None
    assert service.s2s_sessions() == []
    assert service.apply(cfg) is False  # written; nothing to reload
    with pytest.raises(XmppError, match="not running"):
        service.reload()
    (tmp_path / "data" / "prosody.pid").write_text("999999999\n")  # stale pidfile
    assert not service.running()


def test_classify_error_texts_of_prosody_0_12():
    assert classify_error("not-allowed", "Federation with x.test is not allowed by this "
                          "server's policy")[0] == "policy"
    assert classify_error("remote-server-timeout", "Server-to-server connection failed: "
                          "Remote server's certificate is not valid for this name")[0] \
        == "certificate"
    assert classify_error("remote-server-not-found", "Server-to-server connection failed: "
                          "connection refused")[0] == "not_found"
    assert classify_error("remote-server-timeout", "")[0] == "timeout"
    assert classify_error("remote-server-timeout", "Server-to-server connection failed: "
                          "policy-violation (Federation with a.test is not allowed by this "
                          "server's policy)")[0] == "remote_policy"


# --- real servers ---------------------------------------------------------------------------

def test_version_and_installed(net):
    assert net.app.service.installed()
    assert net.app.service.version().startswith("0.12")
    assert net.app.service.pid() == net.app.pid


def test_chat_and_presence_subscription_both_ways(net):
    assert delivered(net.alice, net.bob, "bob@ocs.test", "hello bob")
    assert delivered(net.bob, net.alice, "alice@appliance.test", "hello alice")
    net.alice.subscribe("bob@ocs.test")
    assert net.alice.wait_subscription("bob@ocs.test", "both")
    assert net.bob.wait_subscription("alice@appliance.test", "both")
    assert net.alice.wait_presence("bob@ocs.test")
    assert net.bob.wait_presence("alice@appliance.test")
    sessions = net.app.service.s2s_sessions()
    out = [s for s in sessions if (s["direction"], s["remote"]) == ("out", "ocs.test")]
    assert out and out[0]["local"] == "appliance.test" and out[0]["authenticated"]
    assert out[0]["by"] == "certificate" and out[0]["tls"].startswith("TLS")
    assert {(s["direction"], s["remote"]) for s in sessions} >= {("out", "ocs.test"),
                                                                ("in", "ocs.test")}


def test_policy_changes_apply_by_reload(net, baseline, capsys):
    pid = net.app.service.pid()
    assert delivered(net.alice, net.bob, "bob@ocs.test", "before")
    assert delivered(net.bob, net.alice, "alice@appliance.test", "before, back")

    # Remove ocs.test: no restart, the policy is enforced as soon as the reload is handled.
    assert net.app.apply(domains=[], routes={})
    returned = time.monotonic()
    while net.alice.ping("ocs.test", timeout=2) != "not-allowed":
        assert time.monotonic() - returned < 5, "the new policy was not enforced"
    enforced = time.monotonic() - returned
    assert net.app.service.wait_applied(5)
    applied = time.monotonic() - returned
    with capsys.disabled():
        print(f"\n[xmpp] apply() -> policy enforced: {enforced * 1000:.1f} ms "
              f"(wait_applied() true after {applied * 1000:.1f} ms)")

    error = refused(net.alice, net.bob, "bob@ocs.test", "removed")
    assert error["condition"] == "not-allowed" and error["type"] == "cancel"
    assert "Federation with ocs.test is not allowed" in error["text"]
    error = refused(net.bob, net.alice, "alice@appliance.test", "removed")
    assert error["condition"].startswith("remote-server-")
    assert [s for s in net.app.service.s2s_sessions() if s["remote"] == "ocs.test"] == []

    # Add it back.
    net.apply(**net.baseline)
    assert delivered(net.alice, net.bob, "bob@ocs.test", "restored")
    assert delivered(net.bob, net.alice, "alice@appliance.test", "restored, back")

    # Disable federation: everything stops, in and out.
    net.apply(federation_enabled=False)
    assert refused(net.alice, net.bob, "bob@ocs.test", "disabled")["condition"] == "not-allowed"
    error = refused(net.bob, net.alice, "alice@appliance.test", "disabled")
    assert error["condition"].startswith("remote-server-"), error
    assert net.app.service.s2s_sessions() == []

    net.apply(**net.baseline)
    assert delivered(net.alice, net.bob, "bob@ocs.test", "enabled again")
    # Never restarted, and alice's client stayed connected through every reload.
    assert net.app.service.pid() == pid
    assert net.alice.connected and net.alice.disconnects == 0


def test_a_domain_reached_only_through_a_static_route(net, baseline):
    assert net.alice.ping("hub.test") == "not-allowed"  # neither listed nor routed
    net.apply(routes={**net.baseline["routes"], "hub.test": ("127.0.0.3", net.hub_s2s)})
    assert delivered(net.alice, net.carol, "carol@hub.test", "via the hub")
    assert delivered(net.carol, net.alice, "alice@appliance.test", "back from the hub")
    assert "hub.test" in {s["remote"] for s in net.app.service.s2s_sessions()}
    # Dropping the route closes the sessions and refuses the domain again.
    net.apply(**net.baseline)
    assert "hub.test" not in {s["remote"] for s in net.app.service.s2s_sessions()}
    assert net.alice.ping("hub.test") == "not-allowed"


def test_probe_reports_each_kind_of_failure(net, baseline):
    before = set(threading.enumerate())
    ok = net.probe("ocs.test")
    assert ok["ok"] is True and ok["ms"] >= 0

    refused = net.probe("nowhere.test")
    assert refused == {"ok": False, "reason": "policy", "condition": "not-allowed",
                       "message": "Federation with nowhere.test is not allowed by this "
                                  "server's policy"}

    with socket.socket() as blackhole:  # accepts TCP connections, never speaks XMPP
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(8)
        net.apply(routes={**net.baseline["routes"],
                          "closed.test": ("127.0.0.1", closed_port()),
                          "silent.test": blackhole.getsockname()})
        not_found = net.probe("closed.test")
        assert not_found["reason"] == "not_found", not_found
        assert "connection refused" in not_found["message"]
        start = time.monotonic()
        timed_out = net.probe("silent.test", timeout=2)
        assert timed_out["reason"] == "timeout", timed_out
        assert time.monotonic() - start < 5

    login = net.probe("ocs.test", password="wrong")
    assert login["ok"] is False and login["reason"] == "login"
    # Every probe's threads end with it: give each a moment to finish exiting.
    for thread in set(threading.enumerate()) - before:
        thread.join(5)
    assert not [t for t in set(threading.enumerate()) - before if t.is_alive()]


def test_probe_reports_an_invalid_remote_certificate(net, baseline, tmp_path):
    # Something answering for ocs.test with a certificate for another name.
    impostor = Prosody(tmp_path / "impostor", net.ca, "ocs.test", "127.0.0.4",
                       cert_name="not-ocs.test", domains=["appliance.test"])
    with impostor:
        assert net.probe("ocs.test")["ok"]  # the session to the real one is up
        net.apply(routes={"ocs.test": ("127.0.0.4", impostor.config.s2s_port)})
        result = net.probe("ocs.test")
        assert result["ok"] is False and result["reason"] == "certificate", result
        assert "certificate is not valid for this name" in result["message"]
    net.apply(**net.baseline)
    assert net.probe("ocs.test")["ok"]


def test_register_and_unregister(net):
    net.app.service.register("dave", "appliance.test", "dave-Secret-5")
    assert probe("dave@appliance.test", "dave-Secret-5", net.app.c2s, "ocs.test",
                 net.app.ca_file, 5)["ok"]
    net.app.service.unregister("dave", "appliance.test")
    result = probe("dave@appliance.test", "dave-Secret-5", net.app.c2s, "ocs.test",
                   net.app.ca_file, 5)
    assert result["reason"] == "login"
