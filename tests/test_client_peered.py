"""Two peered appliances end to end: their users see each other's presence and chat.

A (a.test, enterprise acme, IM domain acme.test) and B (b.test, enterprise beta, IM domain
beta.test) are real `appliance serve` processes behind nginx (tests.peer_sites), peered both
ways over the peer link. Each has its own real Prosody, configured by that appliance, signing
its accounts in with the XMPP password set through the API; the two Prosodys federate with
each other (A's on 127.0.0.1, B's on 127.0.0.2, one test CA). A user of each finds the other
in the roster the peer link imported, sees the other's presence, and they chat both ways.
"""

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import trustme

from appliance.db import db
from appliance.directory import replace_source
from appliance.models import Account, Contact, Enterprise
from appliance.xmpp import service as xmpp
from tests import peer_sites
from tests.conftest import build
from tests.peer_sites import peer_body, trust
from tests.prosody_server import Prosody, prosody_available
from tests.xmpp_clients import XmppClient

#: site -> (eid, enterprise name, IM domain, Prosody's own domain and address, the user)
SITES = {
    "a.test": ("acme", "Acme", "acme.test", "svc-a.test", "127.0.0.1",
               ("alice", "Alice", "Anders", "alice-password")),
    "b.test": ("beta", "Beta", "beta.test", "svc-b.test", "127.0.0.2",
               ("bob", "Bob", "Bauer", "bob-password")),
}


def seed(data_dir, site: str):
    """Before the site serves: its enterprise with one local account (and the contact for
    it, of the same source and external id, which is what the peer link serves); return
    the account's id and the XMPP service configuration the appliance gives its Prosody
    (its hosts and link secret; the link URL is known once it serves)."""
    eid, name, domain, *_, (login, first, last, _pw) = SITES[site]
    app = build(data_dir, SECRET_KEY="test-secret")
    try:
        with app.app_context():
            ent = Enterprise(eid=eid, name=name, im_domain=domain)
            db.session.add(ent)
            db.session.commit()
            row = {"external_id": login, "first_name": first, "last_name": last,
                   "email": f"{login}@{eid}.example"}
            replace_source(Account, ent, "manual", "Manual", [{**row, "login": login}])
            replace_source(Contact, ent, "manual", "Manual", [row])
            account = db.session.scalar(db.select(Account.id).filter_by(login=login))
            app.config["XMPP_LINK_URL"] = "http://127.0.0.1:1"  # for link_secret only
            cfg = xmpp.config()
            db.session.rollback()
            return account, cfg
    finally:
        app.extensions["appliance"].jobs.shutdown()


def sync(site, peer_id: int) -> dict:
    status, run = site.api("POST", f"/api/v1/peering/peers/{peer_id}/sync")
    assert status == 202, run
    return site.wait_job(run["run_id"])




def test_users_of_two_peered_appliances_see_each_other_and_chat(tmp_path):
    # Never skipped: `make test` installs Prosody, and a missing one must fail loudly.
    assert prosody_available(), "Prosody is not installed: run `make test`, which does"
    t0 = time.monotonic()
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    seeded = {name: seed(tmp_path / name, name) for name in SITES}
    tokens = {name: peer_sites.prepare(tmp_path / name) for name in SITES}
    stop = []  # everything started, stopped in reverse order whatever happens
    try:
        with ThreadPoolExecutor(2) as pool:
            starting = {name: pool.submit(peer_sites.start, tmp_path, name, ca, token=token)
                        for name, token in tokens.items()}
        for f in starting.values():
            if f.exception() is None:
                stop.append(f.result().stop)
        a, b = (f.result() for f in starting.values())
        print(f"[peered] two appliances behind TLS in {time.monotonic() - t0:.2f} s")

        # Passwords, through the API.
        for site in (a, b):
            account, _ = seeded[site.name]
            password = SITES[site.name][5][3]
            status, body = site.api("PUT", f"/api/v1/accounts/{account}/xmpp-password",
                                    {"password": password})
            assert status == 204, body

        # Peering both ways. A dials B from 127.0.0.1 (a.test): B trusts a.test. B dials A
        # on loopback from 127.0.0.1 as well (not from its own 127.0.0.2), so A trusts
        # that address.
        acme = a.api("GET", "/api/v1/enterprises?q=acme")[1]["items"][0]["id"]
        beta = b.api("GET", "/api/v1/enterprises?q=beta")[1]["items"][0]["id"]
        status, a_peer = a.api("POST", f"/api/v1/peering/enterprises/{acme}/peers",
                               peer_body(b, trust(b, "beta", "a.test"), "Beta peer",
                                         eid="beta"))
        assert status == 201, a_peer
        status, b_peer = b.api("POST", f"/api/v1/peering/enterprises/{beta}/peers",
                               peer_body(a, trust(a, "acme", "127.0.0.1"), "Acme peer",
                                         eid="acme"))
        assert status == 201, b_peer
        for site, peer in ((a, a_peer), (b, b_peer)):
            run = sync(site, peer["id"])
            assert run["state"] == "succeeded", (site.name, run.get("message"), run)
            assert run["counts"]["added"] == 1, run
        got = a.api("GET", f"/api/v1/enterprises/{acme}/contacts?q=bob")[1]["items"]
        assert [(c["im_address"], c["source_label"]) for c in got] == \
            [("bob@beta.test", "Beta peer")]
        got = b.api("GET", f"/api/v1/enterprises/{beta}/contacts?q=alice")[1]["items"]
        assert [(c["im_address"], c["source_label"]) for c in got] == \
            [("alice@acme.test", "Acme peer")]
        print(f"[peered] peered and synced both ways at {time.monotonic() - t0:.2f} s")

        # Each appliance's Prosody, federating with the other's IM domain.
        servers = {}
        for site in (a, b):
            _, cfg = seeded[site.name]
            _, _, domain, svc, host, _ = SITES[site.name]
            server = Prosody(tmp_path / f"{site.name}-xmpp", ca, svc, host)
            ca.issue_cert(svc, domain).private_key_and_cert_chain_pem.write_to_path(
                server.config.cert_file)
            assert cfg.hosts == [domain], cfg.hosts
            server.config = replace(server.config, hosts=cfg.hosts,
                                    link_url=site.app.url.rstrip("/"),
                                    link_secret=cfg.link_secret)
            servers[site.name] = server
        pa, pb = servers["a.test"], servers["b.test"]
        for server, other, other_domain in ((pa, pb, "beta.test"), (pb, pa, "acme.test")):
            server.config = replace(server.config, federation_enabled=True,
                                    domains=[other_domain], routes={other_domain: other.s2s})
            server.service.write(server.config)
        for server in (pa, pb):
            server.start()
            stop.append(server.stop)
        print(f"[peered] both Prosodys up at {time.monotonic() - t0:.2f} s")

        alice = XmppClient("alice@acme.test", "alice-password", pa.c2s, pa.ca_file).connect()
        stop.append(alice.disconnect)
        bob = XmppClient("bob@beta.test", "bob-password", pb.c2s, pb.ca_file).connect()
        stop.append(bob.disconnect)

        # Each finds the other in the roster, named by the peer, grouped under the peer.
        assert alice.roster() == {"bob@beta.test": ("Bob Bauer", "both", ["Beta peer"])}
        assert bob.roster() == {"alice@acme.test": ("Alice Anders", "both", ["Acme peer"])}

        # Presence both ways, over server-to-server.
        assert alice.wait_presence("bob@beta.test", timeout=20), \
            (alice.presences, pa.log()[-3000:], pb.log()[-3000:])
        assert bob.wait_presence("alice@acme.test", timeout=20), \
            (bob.presences, pa.log()[-3000:], pb.log()[-3000:])

        # Messages both ways.
        alice.send_message("bob@beta.test", "hello from acme")
        assert bob.wait_message(15) == ("alice@acme.test", "hello from acme")
        bob.send_message("alice@acme.test", "hello from beta")
        assert alice.wait_message(15) == ("bob@beta.test", "hello from beta")
        assert not alice.errors and not bob.errors, (alice.errors, bob.errors)
        print(f"[peered] presence and messages both ways at {time.monotonic() - t0:.2f} s")
    finally:
        for halt in reversed(stop):
            try:
                halt()
            except Exception as exc:  # stop the rest all the same
                print(f"[peered] stopping: {exc!r}")
