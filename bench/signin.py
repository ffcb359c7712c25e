"""Sign-in rate of the client service: what the XMPP service waits for at each sign-in.

Run: .venv/bin/python bench/signin.py [--users N] [--clients C] [--rounds R]
Starts a real slapd with N people who have passwords, syncs them into an enterprise, sets a
password on N local accounts, serves the appliance with waitress (8 threads) and, with C
concurrent callers, measures sign-ins per second through POST /xmpp/v1/auth (HTTP on
loopback, as Prosody's mod_auth_appliance calls it):
  - directory-bound: the appliance binds as the user (its DN cached after the first);
    baseline: a bare ldap3 connection and simple bind as the same users, same concurrency;
  - local: the password checked against stored SCRAM-SHA-256 keys;
    baseline: PBKDF2-HMAC-SHA256 with 4096 iterations alone, same concurrency.
Prints the median of R rounds and the ratio of each rate to its baseline's.
"""

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from hashlib import pbkdf2_hmac
from pathlib import Path

import ldap3
from waitress import create_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance import create_app, migrate  # noqa: E402
from appliance.core.client import service as client  # noqa: E402
from appliance.db import db  # noqa: E402
from appliance.directory import replace_source  # noqa: E402
from appliance.models import Account, Enterprise  # noqa: E402
from appliance.xmpp import service as xmpp_service  # noqa: E402
from tests.ldap_server import PEOPLE_DN, READER_DN, READER_PASSWORD, Slapd  # noqa: E402


def rate(calls: list, clients: int) -> float:
    """Calls per second, `clients` at a time."""
    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(lambda f: f(), calls))
    elapsed = time.perf_counter() - t0
    assert all(results), "a sign-in failed"
    return len(calls) / elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    n = args.users
    with tempfile.TemporaryDirectory() as tmp:
        with Slapd(Path(tmp) / "slapd", people=n) as slapd:
            for i in range(n):
                slapd.modify(f"uid=user{i},{PEOPLE_DN}", {"userPassword": f"pw-{i}"})
            app = create_app({"DATA_DIR": str(Path(tmp) / "app"), "SECRET_KEY": "bench",
                              "SERVER_NAME": None})
            migrate.upgrade(app)
            from appliance.plugins.sync import service as sync

            with app.test_request_context():
                ent = Enterprise(eid="acme", name="Acme", im_domain="acme.test")
                db.session.add(ent)
                db.session.commit()
                syn = sync.save(ent, "ldap", {
                    "name": "Bench", "servers": "127.0.0.1", "port": slapd.ldap_port,
                    "security": "none", "bind_dn": READER_DN, "password": READER_PASSWORD,
                    "base_dn": PEOPLE_DN, "filter": "(objectClass=inetOrgPerson)",
                    "scope": "sub", "page_size": 500, "preset": "OpenLDAP", "max_drop": 20,
                    "days": 0, "hour": 1, "minute": 0, "ampm": "AM"})
                jobs = app.extensions["appliance"].jobs
                run, _ = jobs.submit(sync.KIND, syn.source)
                assert jobs.wait(run.id, timeout=600).state == "succeeded"
                replace_source(Account, ent, "manual", "Manual", [
                    {"external_id": str(i), "login": f"local{i}"} for i in range(n)])
                for acc in db.session.scalars(db.select(Account).filter_by(source="manual")):
                    client.set_password(acc, f"pw-{acc.login}")
                db.session.commit()
                secret = xmpp_service.secret()
            server = create_server(app, host="127.0.0.1", port=0, threads=8, ident="bench")
            import threading
            threading.Thread(target=server.run, daemon=True).start()
            port = server.effective_port

            def sign_in(user: str, password: str):
                def call() -> bool:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    conn.request("POST", "/xmpp/v1/auth", json.dumps(
                        {"user": user, "host": "acme.test", "password": password}),
                        {"Authorization": f"Bearer {secret}",
                         "Content-Type": "application/json"})
                    answer = json.loads(conn.getresponse().read())
                    conn.close()
                    return answer["result"] == "ok"
                return call

            def bare_bind(i: int):
                def call() -> bool:
                    c = ldap3.Connection(ldap3.Server("127.0.0.1", port=slapd.ldap_port,
                                                      get_info=ldap3.NONE),
                                         f"uid=user{i},{PEOPLE_DN}", f"pw-{i}")
                    ok = c.bind()
                    c.unbind()
                    return ok
                return call

            def bare_pbkdf2(i: int):
                def call() -> bool:
                    return bool(pbkdf2_hmac("sha256", f"pw-local{i}".encode(), b"salt" * 4,
                                            4096))
                return call

            # Warm up: each directory user's DN is looked up once, then cached.
            rate([sign_in(f"user{i}", f"pw-{i}") for i in range(n)], args.clients)
            rows = {k: [] for k in ("bind", "ldap", "pbkdf2", "local")}
            for _ in range(args.rounds):
                rows["bind"].append(rate([bare_bind(i) for i in range(n)], args.clients))
                rows["ldap"].append(rate([sign_in(f"user{i}", f"pw-{i}") for i in range(n)],
                                         args.clients))
                rows["pbkdf2"].append(rate([bare_pbkdf2(i) for i in range(n)], args.clients))
                rows["local"].append(rate([sign_in(f"local{i}", f"pw-local{i}")
                                           for i in range(n)], args.clients))
            server.close()
            jobs.shutdown()
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"{n} users, {args.clients} concurrent callers, median of {args.rounds} rounds "
          "(sign-ins per second)")
    print(f"{'':<52}{'per s':>9}{'vs baseline':>13}")
    for label, key, base in (
            ("baseline: bare ldap3 bind as the user", "bind", None),
            ("directory-bound sign-in via /xmpp/v1/auth", "ldap", "bind"),
            ("baseline: PBKDF2-SHA256 4096 rounds alone", "pbkdf2", None),
            ("local sign-in via /xmpp/v1/auth (SCRAM keys)", "local", "pbkdf2")):
        ratio = f"{med[key] / med[base]:>12.2f}x" if base else f"{'':>13}"
        print(f"{label:<52}{med[key]:>9.0f}{ratio}")


if __name__ == "__main__":
    main()
