"""Load on the real server: N concurrent clients for S seconds against `appliance serve`.

Run: .venv/bin/python bench/load.py [--clients 50] [--seconds 60] [--threads 8]

Each client keeps one connection and loops over a mix of what administrators and API
callers do: the Corporate Directory page (session cookie), a directory search, the
enterprise list and the job list through the API (bearer token), and an audited write
(create, then delete, an enterprise). Every answer must be 2xx or 3xx: anything else, or a
connection error, counts as an error. Printed: requests/s, p50 and p99, and each as a ratio
to a baseline measured in the same run with the same clients against a static file (no
session, no database), since machines are noisy.
"""

import argparse
import http.client
import itertools
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.peer_sites import PASSWORD, prepare  # noqa: E402
from tests.servers import ApplianceProcess  # noqa: E402

CONTACTS = 2_000


def seed(data_dir: Path) -> int:
    """An enterprise with CONTACTS contacts, written before the server starts; its id."""
    from appliance import create_app
    from appliance.db import db
    from appliance.directory import replace_source
    from appliance.models import Contact, Enterprise

    app = create_app({"DATA_DIR": str(data_dir), "SECRET_KEY": "test-secret"})
    with app.app_context():
        ent = Enterprise(eid="load", name="Load")
        db.session.add(ent)
        db.session.commit()
        replace_source(Contact, ent, "bench:1", "Bench", [
            {"external_id": f"id{i}", "first_name": f"Jane{i % 97}", "last_name": f"Doe{i}",
             "email": f"jane.doe{i}@example.com", "phone": f"+1 555 {i:07d}"}
            for i in range(CONTACTS)])
        ent_id = ent.id
    app.extensions["appliance"].jobs.shutdown()
    return ent_id


class Client(threading.Thread):
    """One connection, looping over `paths` until `stop` is set."""

    def __init__(self, host, port, requests, stop):
        super().__init__(daemon=True)
        self.host, self.port, self.requests, self.stop = host, port, requests, stop
        self.times: list[float] = []
        self.errors: list[str] = []
        self.conn = None
        self.created = None

    def send(self, method, path, headers, body=None):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        self.conn.request(method, path, body=body, headers=headers)
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        return resp.status, resp.getheader("Set-Cookie", ""), data

    def run(self):
        for make in itertools.cycle(self.requests):
            if self.stop.is_set():
                return
            method, path, headers, body = make(self)
            start = time.perf_counter()
            try:
                status, _, data = self.send(method, path, headers, body)
            except (OSError, http.client.HTTPException) as exc:
                self.errors.append(f"{method} {path}: {exc.__class__.__name__}")
                self.conn = None
                continue
            self.times.append(time.perf_counter() - start)
            if status >= 400:
                self.errors.append(f"{method} {path}: {status} {data[:120]!r}")
            self.after(method, path, data)

    def after(self, method, path, data):
        """Remember what a write created, so the next request deletes it."""
        if method == "POST" and path == "/api/v1/enterprises":
            m = re.search(rb'"id":\s*(\d+)', data)
            self.created = int(m.group(1)) if m else None


def login(host, port) -> str:
    """A session cookie for the administrator."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("GET", "/login")
    resp = conn.getresponse()
    page = resp.read().decode()
    cookie = resp.getheader("Set-Cookie").split(";")[0]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    body = f"username=admin&password={PASSWORD}&csrf_token={token}"
    conn.request("POST", "/login", body=body, headers={
        "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 302, resp.status
    return resp.getheader("Set-Cookie").split(";")[0]


def run(host, port, clients, seconds, requests) -> dict:
    stop = threading.Event()
    pool = [Client(host, port, requests, stop) for _ in range(clients)]
    start = time.perf_counter()
    for c in pool:
        c.start()
    time.sleep(seconds)
    stop.set()
    for c in pool:
        c.join(120)
    took = time.perf_counter() - start
    times = sorted(t for c in pool for t in c.times)
    errors = [e for c in pool for e in c.errors]
    return {"requests": len(times), "rps": len(times) / took,
            "p50": statistics.median(times) * 1000,
            "p99": times[int(len(times) * 0.99) - 1] * 1000, "errors": errors}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--baseline-seconds", type=float, default=15)
    ap.add_argument("--threads", type=int, default=8, help="waitress threads")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        token = prepare(data)
        ent_id = seed(data)
        proc = ApplianceProcess(data)
        proc.args += ["--threads", str(args.threads)]
        with proc:
            parts = urlsplit(proc.url)
            host, port = parts.hostname, parts.port
            cookie = login(host, port)
            api = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            page = {"Cookie": cookie}
            counter = itertools.count()

            def create(c):
                return ("POST", "/api/v1/enterprises", api,
                        f'{{"eid": "load-{os.getpid()}-{next(counter)}", "name": "L"}}')

            def delete(c):
                return ("DELETE", f"/api/v1/enterprises/{c.created or 0}", api, None)

            mix = [
                lambda c: ("GET", "/directory", page, None),
                lambda c: ("GET", f"/api/v1/enterprises/{ent_id}/contacts?q=doe1", api, None),
                lambda c: ("GET", "/api/v1/enterprises", api, None),
                lambda c: ("GET", "/api/v1/jobs", api, None),
                create, delete,
            ]
            static = [lambda c: ("GET", "/static/app.css", {}, None)]
            base = run(host, port, args.clients, args.baseline_seconds, static)
            load = run(host, port, args.clients, args.seconds, mix)
    print(f"{args.clients} clients, waitress with {args.threads} threads, "
          f"{CONTACTS} contacts; mix of 6 requests (1 page, 3 API reads, 2 audited writes)")
    print(f"{'':<22}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, r in (("baseline (static)", base), (f"mix, {args.seconds:g} s", load)):
        print(f"{name:<22}{r['requests']:>9}{r['rps']:>9.0f}{r['p50']:>9.1f}{r['p99']:>9.1f}"
              f"{len(r['errors']):>8}")
    print(f"ratio to baseline: req/s {load['rps'] / base['rps']:.2f}, "
          f"p50 {load['p50'] / base['p50']:.1f}x, p99 {load['p99'] / base['p99']:.1f}x")
    for e in (base["errors"] + load["errors"])[:10]:
        print("error:", e)
    sys.exit(1 if load["errors"] or base["errors"] else 0)


if __name__ == "__main__":
    main()
