"""Roster delivery: how long a client waits for an enterprise's directory as its roster.

Run: .venv/bin/python bench/roster.py [--contacts 5000 20000] [--rounds 3]
For each size N: an enterprise with N accounts (one of them signs in, with a password set
on the appliance), the appliance served by waitress, and a real Prosody configured by it.
A slixmpp client signs in and asks for its roster; measured, median of R rounds:
  - baseline: the same sign-in and roster request in an enterprise of 1 account;
  - sign-in + roster of N contacts (what a user waits for after pressing Sign in);
  - the appliance's part: GET /xmpp/v1/hosts/<domain>/directory (Prosody fetches it once
    per change, not per sign-in).
"""

import argparse
import asyncio
import http.client
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import trustme
from waitress import create_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance import create_app, migrate  # noqa: E402
from appliance.core.client import service as client  # noqa: E402
from appliance.db import db  # noqa: E402
from appliance.directory import replace_source  # noqa: E402
from appliance.models import Account, Enterprise  # noqa: E402
from appliance.xmpp import service as xmpp  # noqa: E402
from tests.prosody_server import Prosody  # noqa: E402
from tests.xmpp_clients import XmppClient  # noqa: E402


def enterprise(app, eid: str, domain: str, n: int) -> None:
    with app.test_request_context():
        ent = Enterprise(eid=eid, name=eid, im_domain=domain)
        db.session.add(ent)
        db.session.commit()
        replace_source(Account, ent, "manual", "Manual", [
            {"external_id": str(i), "login": f"u{i}", "first_name": f"First{i}",
             "last_name": f"Last{i}"} for i in range(n)])
        client.set_password(db.session.scalar(db.select(Account).filter_by(
            enterprise_id=ent.id, login="u0")), "bench-password")
        db.session.commit()


def sign_in_and_roster(server: Prosody, domain: str, wait_for: int) -> float:
    """Seconds from connect until the roster holds `wait_for` contacts."""
    c = XmppClient(f"u0@{domain}", "bench-password", server.c2s, server.ca_file)
    t0 = time.perf_counter()
    c.connect(timeout=60)  # logs in, sends presence and gets the roster

    async def size():
        return len([j for j in c.xmpp.client_roster if str(j) != c.jid])
    while c._run(size()) < wait_for:
        time.sleep(0.005)
    took = time.perf_counter() - t0
    c.disconnect()
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, nargs="+", default=[5000])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"DATA_DIR": str(Path(tmp) / "app"), "SECRET_KEY": "bench"})
        migrate.upgrade(app)
        web = create_server(app, host="127.0.0.1", port=0, threads=8, ident="bench")
        threading.Thread(target=web.run, daemon=True).start()
        app.config["XMPP_LINK_URL"] = f"http://127.0.0.1:{web.effective_port}"
        domains = {1: "one.test", **{n: f"n{n}.test" for n in args.contacts}}
        for n, domain in domains.items():
            enterprise(app, f"e{n}", domain, n)
        ca = trustme.CA()
        server = Prosody(Path(tmp) / "prosody", ca, "svc.test")
        ca.issue_cert("svc.test", *domains.values()).private_key_and_cert_chain_pem \
            .write_to_path(server.config.cert_file)
        with app.test_request_context():
            own = xmpp.config()
        server.config = server.reconfigure(hosts=own.hosts, link_url=own.link_url,
                                           link_secret=own.link_secret)
        server.service.write(server.config)
        with server:
            time.sleep(0)  # the directories load at Prosody's first poll
            rows = {}
            for n, domain in domains.items():
                sign_in_and_roster(server, domain, n - 1)  # warm: the directory is loaded
                rows[n] = statistics.median(sign_in_and_roster(server, domain, n - 1)
                                            for _ in range(args.rounds))
            with app.app_context():
                secret = xmpp.secret()
            fetch = {}
            for n, domain in domains.items():
                times = []
                for _ in range(args.rounds):
                    conn = http.client.HTTPConnection("127.0.0.1", web.effective_port)
                    t0 = time.perf_counter()
                    conn.request("GET", f"/xmpp/v1/hosts/{domain}/directory",
                                 headers={"Authorization": f"Bearer {secret}"})
                    body = conn.getresponse().read()
                    times.append(time.perf_counter() - t0)
                    conn.close()
                fetch[n] = (statistics.median(times), len(body))
        web.close()
        app.extensions["appliance"].jobs.shutdown()
    base = rows[1]
    print(f"median of {args.rounds} rounds; a real Prosody and slixmpp client on loopback")
    print(f"{'contacts':>9}{'sign-in + roster (s)':>22}{'vs 1 contact':>14}"
          f"{'directory GET (s)':>19}{'JSON':>10}")
    for n in domains:
        t, size = fetch[n]
        print(f"{n:>9,}{rows[n]:>22.3f}{rows[n] / base:>13.1f}x{t:>19.3f}"
              f"{size / 1e6:>8.1f}MB")
    asyncio.set_event_loop(None)


if __name__ == "__main__":
    main()
