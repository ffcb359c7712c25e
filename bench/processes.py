"""Several `appliance serve` processes on one PostgreSQL behind one address: requests/s of
the Corporate Directory page with one process and with two, and while a job runs.

Run: .venv/bin/python bench/processes.py [--contacts 10000] [--clients 16] [--seconds 20]
         [--rounds 3] [--threads 8] [--job-users 20000] [--shared-data-dir]

The topology of docs/operations.md ("Several processes"):
- a throwaway PostgreSQL 15 cluster (tests/postgres_server.py, shared_buffers 256MB) with
  one database, migrated once, holding an enterprise of --contacts contacts;
- process A (`--role all`: pages, API and jobs) and process B (`--role web`), each with a
  data directory of its own and the same APPLIANCE_SECRET_KEY (or, --shared-data-dir,
  both on one data directory and its secret key file);
- nginx in front as the load balancer (round robin over the processes' ports, keep-alive
  upstream connections, X-Forwarded-For and -Proto, APPLIANCE_TRUSTED_PROXIES=1).
Clients are separate Python processes (4 of them, --clients connections in all, each
looping GET /directory with a session from one login through nginx), so their own
interpreter lock does not cap the rate. Printed per phase: requests/s, p50 and p99, and
the ratios:
  1. nginx -> A only;
  2. nginx -> A and B: ratio to 1;
  3. nginx -> B only, no job (the baseline of 4);
  4. nginx -> B only while a PBX node sync of --job-users users runs in A (started through
     A's API, run by A: B's role does not run jobs), started again as soon as it ends, with
     its names changed each time so that every run rewrites every account and contact:
     ratio to 3, and how long the runs took against one run with no page load.
The four phases run in turn --rounds times and the medians are compared. Machines are
noisy, and on a small one the processes, PostgreSQL, nginx and the clients share the same
cores: quote ratios, with the core count printed.
"""

import argparse
import http.client
import json
import multiprocessing
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.postgres_server import Cluster  # noqa: E402
from tests.servers import ApplianceProcess, NginxProcess, free_port  # noqa: E402

SECRET = "bench-processes-secret"
PASSWORD = "bench-password-1"
PG_SETTINGS = {"shared_buffers": "256MB", "work_mem": "16MB"}
CLIENT_PROCESSES = 4
CSV_HEAD = ("number,device_type,mac,first_name,last_name,department,group,group_kind,pilot,"
            "dynamic_extension\n")


class Balancer(NginxProcess):
    """nginx on 127.0.0.1:port, round robin over `upstreams` (host:port), plain HTTP."""

    def __init__(self, workdir: Path, upstreams: list[str], port: int):
        self.port = port
        servers = "".join(f"    server {u};\n" for u in upstreams)
        super().__init__(workdir, f"""  upstream appliance {{
{servers}    keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://appliance;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto http;
    }}
  }}""", connections=1024)


def _client(port, cookie, threads, start, seconds, out):
    """One client process: `threads` keep-alive connections looping GET /directory."""
    stop = threading.Event()
    results = []

    def loop():
        conn, times, errors = None, [], 0
        start.wait()
        while not stop.is_set():
            t = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                conn.request("GET", "/directory", headers={"Cookie": cookie})
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    errors += 1
            except (OSError, http.client.HTTPException):
                errors += 1
                conn = None
                continue
            times.append(time.perf_counter() - t)
        results.append((times, errors))

    pool = [threading.Thread(target=loop) for _ in range(threads)]
    for th in pool:
        th.start()
    start.wait()
    time.sleep(seconds)
    stop.set()
    for th in pool:
        th.join()
    out.put(([t for ts, _ in results for t in ts], sum(e for _, e in results)))


def load(port: int, cookie: str, clients: int, seconds: float) -> dict:
    """`clients` connections over CLIENT_PROCESSES processes for `seconds`: req/s, p50, p99."""
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    per = [clients // CLIENT_PROCESSES + (i < clients % CLIENT_PROCESSES)
           for i in range(CLIENT_PROCESSES)]
    procs = [ctx.Process(target=_client, args=(port, cookie, n, start, seconds, out))
             for n in per if n]
    for p in procs:
        p.start()
    time.sleep(0.5)  # every client connected and waiting
    began = time.perf_counter()
    start.set()
    got = [out.get(timeout=seconds + 120) for _ in procs]
    took = time.perf_counter() - began
    for p in procs:
        p.join()
    times = sorted(t for ts, _ in got for t in ts)
    return {"requests": len(times), "rps": len(times) / took,
            "p50": statistics.median(times) * 1000 if times else 0,
            "p99": times[int(len(times) * 0.99) - 1] * 1000 if times else 0,
            "errors": sum(e for _, e in got)}


def call(url: str, method: str, path: str, token: str, body=None) -> tuple[int, dict]:
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers={"Authorization": f"Bearer {token}",
                              "Content-Type": "application/json"})
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else {}
    finally:
        conn.close()


def login(port: int) -> str:
    """A session cookie of the administrator, through the balancer; its first page sets
    the selected enterprise (the first by name: the measured one)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/login")
    resp = conn.getresponse()
    page = resp.read().decode()
    cookie = resp.getheader("Set-Cookie").split(";")[0]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    conn.request("POST", "/login",
                 body=f"username=admin&password={PASSWORD}&csrf_token={token}",
                 headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 302, resp.status
    cookie = resp.getheader("Set-Cookie").split(";")[0]
    conn.request("GET", "/directory", headers={"Cookie": cookie})
    resp = conn.getresponse()
    body = resp.read().decode()
    assert resp.status == 200 and "Acme" in body, resp.status
    if resp.getheader("Set-Cookie"):
        cookie = resp.getheader("Set-Cookie").split(";")[0]
    return cookie


def seed(url: str, data: Path, contacts: int) -> tuple[str, int]:
    """Migrate, an administrator and an API token, the enterprise Acme with `contacts`
    contacts (the measured directory) and Zulu (the job's); (token, Zulu's id)."""
    from appliance import create_app, migrate
    from appliance.auth import create_admin, new_token
    from appliance.db import db
    from appliance.directory import replace_source
    from appliance.models import Contact, Enterprise

    app = create_app({"DATA_DIR": str(data), "SECRET_KEY": SECRET, "DATABASE_URL": url})
    migrate.upgrade(app)
    with app.app_context():
        user = create_admin("admin", PASSWORD)
        token = new_token(user, "bench")
        acme, zulu = Enterprise(eid="acme", name="Acme"), Enterprise(eid="zulu", name="Zulu")
        db.session.add_all([acme, zulu])
        db.session.commit()
        replace_source(Contact, acme, "bench:1", "Bench", [
            {"external_id": f"id{i}", "first_name": f"Jane{i % 97}", "last_name": f"Doe{i}",
             "email": f"jane.doe{i}@example.com", "phone": f"+1 555 {i:07d}"}
            for i in range(contacts)])
        zulu_id = zulu.id
        db.engine.dispose()
    app.extensions["appliance"].jobs.shutdown()
    return token, zulu_id


def write_csv(path: Path, users: int, generation: int) -> None:
    """A PBX export of `users` desk phones; each generation renames everybody."""
    path.write_text(CSV_HEAD + "".join(
        f"{100000 + i},5340 IP,00:08:5D:{i // 65536 % 256:02X}:{i // 256 % 256:02X}:"
        f"{i % 256:02X},First{generation}x{i},Last{generation}x{i},Dept{i % 20},,,,\n"
        for i in range(users)))


class JobLoop:
    """Keeps a PBX node sync running in process A: starts it, waits for it, rewrites the
    export (every name changes), starts it again, until stopped. Records each run."""

    def __init__(self, url, token, node_id, csv, users):
        self.url, self.token, self.node_id, self.csv, self.users = url, token, node_id, csv, users
        self.runs: list[tuple[float, str]] = []  # (seconds, state) of the runs under load
        self.generation = 1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def once(self) -> tuple[float, str]:
        self.generation += 1
        write_csv(self.csv, self.users, self.generation)
        status, started = call(self.url, "POST",
                               f"/api/v1/sync/synchronizers/{self.node_id}/sync?confirm=1",
                               self.token)
        assert status == 202, started
        t = time.perf_counter()
        while True:
            _, run = call(self.url, "GET", f"/api/v1/jobs/{started['run_id']}", self.token)
            if run["state"] not in ("queued", "running"):
                return time.perf_counter() - t, run["state"]
            time.sleep(0.2)

    def start(self) -> None:
        self._stop.clear()

        def loop():
            while not self._stop.is_set():
                self.runs.append(self.once())
        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop starting runs and wait for the one under way."""
        self._stop.set()
        self._thread.join(600)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--rounds", type=int, default=3, help="of the four phases, in turn")
    ap.add_argument("--threads", type=int, default=8, help="waitress threads per process")
    ap.add_argument("--job-users", type=int, default=20_000)
    ap.add_argument("--shared-data-dir", action="store_true",
                    help="both processes on one data directory (its secret key file)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-processes-"))
    cluster = Cluster().start()
    procs: list = []
    balancer = None
    try:
        for k, v in PG_SETTINGS.items():
            cluster.sql(f"ALTER SYSTEM SET {k} = '{v}'")
        cluster.restart()
        url = cluster.create_database("bench")
        data_a = root / "a"
        data_b = data_a if args.shared_data_dir else root / "b"
        token, zulu = seed(url, data_a, args.contacts)
        env = {"APPLIANCE_DATABASE_URL": url, "APPLIANCE_TRUSTED_PROXIES": "1"}
        if not args.shared_data_dir:
            env["APPLIANCE_SECRET_KEY"] = SECRET
        procs = []
        for data, role in ((data_a, "all"), (data_b, "web")):
            proc = ApplianceProcess(data, env=env)
            if args.shared_data_dir:  # the data dir's key, not the harness's default
                proc.env.pop("APPLIANCE_SECRET_KEY", None)
            proc.args += ["--threads", str(args.threads), "--role", role]
            procs.append(proc.start())
        a, b = procs
        upstream = {p: p.url.removeprefix("http://").rstrip("/") for p in procs}

        # The job: a PBX node of Zulu whose export lies in A's import directory.
        csv = data_a / "import" / "node.csv"
        write_csv(csv, args.job_users, 1)
        status, _ = call(a.url, "PUT", f"/api/v1/sync/enterprises/{zulu}", token,
                         {"mode": "pbx", "feature_profile": "Standard user",
                          "dynamic_only": False})
        assert status == 200, status
        status, node = call(a.url, "POST", f"/api/v1/sync/enterprises/{zulu}/pbx-nodes", token,
                            {"name": "Bench node", "platform": "MiVoice Business",
                             "address": "10.0.0.5", "path": str(csv), "max_drop": 100,
                             "days": 1, "hour": 2, "minute": 0, "ampm": "AM"})
        assert status == 201, node
        jobs = JobLoop(a.url, token, node["id"], csv, args.job_users)
        first, state = jobs.once()  # the first run adds everybody
        assert state == "succeeded", state
        alone, state = jobs.once()  # a run that renames everybody, with no page load
        assert state == "succeeded", state

        port = free_port()
        results: dict[str, list[dict]] = {}
        phases = [("1: nginx -> A", [a]), ("2: nginx -> A, B", [a, b]),
                  ("3: nginx -> B, no job", [b]), ("4: nginx -> B, job in A", [b])]
        for _ in range(args.rounds):
            for name, members in phases:
                if balancer is not None:
                    balancer.stop()
                balancer = Balancer(root / "nginx", [upstream[p] for p in members], port).start()
                cookie = login(port)
                load(port, cookie, args.clients, 2)  # warm up
                if name.startswith("4"):
                    jobs.start()
                results.setdefault(name, []).append(
                    load(port, cookie, args.clients, args.seconds))
                if name.startswith("4"):
                    jobs.stop()
        settings = ", ".join(f"{k} {v}" for k, v in PG_SETTINGS.items())
        dirs = "one shared data directory" if args.shared_data_dir else \
            "a data directory each, one APPLIANCE_SECRET_KEY"
        print(f"{os.cpu_count()} CPUs; PostgreSQL 15 ({settings}); {args.contacts:,} contacts; "
              f"{args.clients} client connections over {CLIENT_PROCESSES} processes; waitress "
              f"with {args.threads} threads a process; {dirs}; {args.rounds} rounds of "
              f"{args.seconds:g} s a phase (medians of the rounds; req/s of each round)")
        print(f"{'phase: GET /directory':<26}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}"
              "  rounds")
        med = {}
        for name, rounds in results.items():
            med[name[0]] = {k: statistics.median(r[k] for r in rounds)
                            for k in ("rps", "p50", "p99")}
            m = med[name[0]]
            print(f"{name:<26}{m['rps']:>8.1f}{m['p50']:>8.1f}{m['p99']:>8.1f}"
                  f"{sum(r['errors'] for r in rounds):>7}  "
                  + " ".join(f"{r['rps']:.0f}" for r in rounds))
        print(f"2 processes / 1: {med['2']['rps'] / med['1']['rps']:.2f}x req/s")
        print(f"pages during the job / without: {med['4']['rps'] / med['3']['rps']:.2f}x req/s, "
              f"p50 {med['4']['p50'] / med['3']['p50']:.2f}x")
        done = [s for s, state in jobs.runs if state == "succeeded"]
        print(f"job: PBX sync of {args.job_users:,} users (every name changed) in A: "
              f"{alone:.1f} s with no page load; under load {len(jobs.runs)} run(s), median "
              f"{statistics.median(done) if done else 0:.1f} s"
              f"{'' if len(done) == len(jobs.runs) else ' (some did not succeed)'}")
        errors = sum(r["errors"] for rounds in results.values() for r in rounds)
        if errors:
            print(f"errors: {errors}")
        sys.exit(1 if errors else 0)
    finally:
        if balancer is not None:
            balancer.stop()
        for p in procs:
            p.stop()
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
