"""Real appliances behind real TLS (nginx, certificates from a test CA) for peering tests.

Each site is an `appliance serve` process with its own data dir on its own loopback address,
and nginx in front of it serving HTTPS with a certificate for the site's name. Names resolve
through APPLIANCE_PEER_HOSTS, as a site without DNS would configure it.
"""

import json
import os
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trustme

from appliance.cli import cli
from appliance.db import db
from appliance.directory import replace_source
from appliance.models import Contact, Enterprise
from tests.conftest import build
from tests.servers import ApplianceProcess, Gate, Nginx

PASSWORD = "correct-horse-battery"
NAMES = {"a.test": "127.0.0.1", "b.test": "127.0.0.2", "wrong.test": "127.0.0.2",
         "c.test": "127.0.0.3"}
#: An appliance whose peer link has no change feed, on either side: as the release before it.
OLD = {"APPLIANCE_PEERING_CHANGE_FEED": "0"}


class CountingGate(Gate):
    """A Gate that keeps the request line of every request it relays (`lines`): nginx opens
    one connection to the appliance per request, so these are the requests it served."""

    def __init__(self, *args, **kw):
        self.lines: list[str] = []
        super().__init__(*args, **kw)

    def _holds(self, line: bytes) -> bool:
        self.lines.append(line.decode("latin-1"))
        return super()._holds(line)


def _env(data_dir: Path, extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    env.update(APPLIANCE_DATA_DIR=str(data_dir), APPLIANCE_SECRET_KEY="test-secret")
    env.update(extra or {})
    return env


@dataclass
class Site:
    name: str
    data_dir: Path
    app: ApplianceProcess
    tls: Nginx
    token: str
    gate: CountingGate | None = None
    _db: list = field(default_factory=list)

    @property
    def port(self) -> int:
        """The HTTPS port peers use."""
        return self.tls.port

    def api(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        """Call the site's admin API (plain HTTP to the appliance itself) with its token."""
        req = urllib.request.Request(
            self.app.url.rstrip("/") + path, method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}",
                     "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else {}
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, json.loads(raw) if raw else {}

    def wait_job(self, run_id: int, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            _, run = self.api("GET", f"/api/v1/jobs/{run_id}")
            if run["state"] not in ("queued", "running") or time.monotonic() > deadline:
                return run
            time.sleep(0.1)

    @contextmanager
    def database(self):
        """An app context on the site's own database (another process writing to it while
        the site serves, as an import or an admin's edit would)."""
        if not self._db:
            app = build(self.data_dir, SECRET_KEY="test-secret")
            app.extensions["appliance"].jobs.shutdown()  # the site's process runs its jobs
            self._db.append(app)
        with self._db[0].app_context():
            yield
            db.session.remove()

    def stop(self) -> None:
        for app in self._db:
            with app.app_context():
                db.engine.dispose()
        self.tls.stop()
        self.app.stop()
        if self.gate:
            self.gate.close()


def prepare(data_dir: Path) -> str:
    """Create the site's administrator and return an API token (before it serves).

    The `appliance create-admin` and `create-token` commands run in this process, through
    Flask's CLI runner, on the site's data dir: the same commands as from a shell, without
    two more Python start-ups.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    app = build(data_dir, SECRET_KEY="test-secret")
    try:
        runner = app.test_cli_runner()
        made = runner.invoke(cli, ["create-admin", "--username", "admin", "--password-stdin"],
                             input=PASSWORD + "\n")
        assert made.exit_code == 0, made.output
        made = runner.invoke(cli, ["create-token", "--username", "admin"])
        assert made.exit_code == 0, made.output
        return made.output.strip().splitlines()[-1]
    finally:
        app.extensions["appliance"].jobs.shutdown()


def start(root: Path, name: str, ca: trustme.CA, cert_names: tuple[str, ...] = (),
          gate: bool = False, token: str | None = None, env: dict | None = None) -> Site:
    """Start the site `name` (its data kept in root/name) behind TLS; with `gate`, nginx
    reaches the appliance through a CountingGate (Site.gate) that can hold a request.
    `token` is the one prepare() gave, when the caller prepared the site already; `env`
    more settings (OLD: a site without the change feed)."""
    data_dir = root / name
    token = token or prepare(data_dir)
    ca_file = root / "ca.pem"
    if not ca_file.exists():
        ca.cert_pem.write_to_path(str(ca_file))
    env = {"APPLIANCE_HOSTNAME": name, "APPLIANCE_TRUSTED_PROXIES": "1",
           "APPLIANCE_PEER_CA_FILE": str(ca_file),
           "APPLIANCE_PEER_HOSTS": ",".join(f"{n}={a}" for n, a in NAMES.items()),
           "APPLIANCE_PEER_TIMEOUT": "5", **(env or {})}
    app = ApplianceProcess(data_dir, env=_env(data_dir, env), host=NAMES[name]).start()
    cert = ca.issue_cert(*(cert_names or (name,)))
    upstream = app.url.removeprefix("http://").rstrip("/")
    relay = None
    try:
        if gate:
            host, port = upstream.rsplit(":", 1)
            relay = CountingGate((host, int(port)), host=NAMES[name])
            upstream = relay.address
        tls = Nginx(root / f"{name}-tls", upstream,
                    b"".join(p.bytes() for p in cert.cert_chain_pems).decode(),
                    cert.private_key_pem.bytes().decode(), host=NAMES[name]).start()
    except Exception:
        app.stop()
        if relay:
            relay.close()
        raise
    return Site(name, data_dir, app, tls, token, relay)


def start_pair(root: Path, ca: trustme.CA, bravo_contacts: int,
               gate: bool = False) -> tuple[Site, Site]:
    """(A, B) started: a.test, and b.test whose enterprise bravo has `bravo_contacts`
    contacts of its own (with `gate`, B behind a Gate). The caller stops them.

    Both are prepared here, then their processes start at the same time (a start mostly
    waits for its process)."""
    seed(root / "b.test", "bravo", bravo_contacts)
    ca.cert_pem.write_to_path(str(root / "ca.pem"))
    tokens = {name: prepare(root / name) for name in ("a.test", "b.test")}
    with ThreadPoolExecutor(2) as pool:
        starting = [pool.submit(start, root, name, ca, gate=gate and name == "b.test",
                                token=token) for name, token in tokens.items()]
    failed = [f.exception() for f in starting if f.exception() is not None]
    if failed:
        for f in starting:
            if f.exception() is None:
                f.result().stop()
        raise failed[0]
    a, b = (f.result() for f in starting)
    return a, b


def run_pair(root: Path, ca: trustme.CA, bravo_contacts: int, gate: bool = False):
    """Yield (A, B) of start_pair(); both stopped afterwards. `yield from` it in a fixture."""
    a, b = start_pair(root, ca, bravo_contacts, gate)
    try:
        yield a, b
    finally:
        b.stop()
        a.stop()


def seed(data_dir, eid: str, n: int) -> None:
    """Give a site's database (before it serves) an enterprise with n contacts of its own."""
    app = build(data_dir, SECRET_KEY="test-secret")
    with app.app_context():
        ent = Enterprise(eid=eid, name=eid.title())
        db.session.add(ent)
        db.session.commit()
        rows = [{"external_id": f"u{i}", "first_name": f"First{i}", "last_name": f"Last{i:05d}",
                 "email": f"user{i}@{eid}.test", "phone": f"{2000 + i}",
                 "im_address": f"user{i}@{eid}.test"} for i in range(n)]
        replace_source(Contact, ent, "sync:1", "Directory", rows)
    app.extensions["appliance"].jobs.shutdown()


def ent_id(site, eid: str) -> int:
    items = site.api("GET", "/api/v1/enterprises?q=" + eid)[1]["items"]
    if items:
        return items[0]["id"]
    status, ent = site.api("POST", "/api/v1/enterprises", {"name": eid.title(), "eid": eid})
    assert status == 201, ent
    return ent["id"]


def trust(site, eid: str, address: str) -> str:
    """Trust `address` in the enterprise; return the peer key (a new one if it had one)."""
    ent = ent_id(site, eid)
    status, t = site.api("POST", f"/api/v1/enterprises/{ent}/trusted-servers",
                         {"address": address, "description": "peer"})
    if status == 422 or (status == 201 and not t.get("peer_key")):
        # already trusted (here, or by another enterprise: it has a key): a fresh key
        tid = next(x["id"] for x in site.api("GET", f"/api/v1/enterprises/{ent}")[1]
                   ["trusted_servers"] if x["address"] == address)
        status, t = site.api("POST", f"/api/v1/enterprises/{ent}/trusted-servers/{tid}/key")
    assert status in (200, 201) and t["peer_key"].startswith("apk_"), t
    return t["peer_key"]


def peer_body(b, key, description="Bravo peer", eid="bravo", **kw):
    return {"kind": "mcs", "description": description, "hostname": b.name, "port": b.port,
            "peer_eid": eid, "key": key, "dialing_prefix": "-9", "days": 1, "hour": 2,
            "minute": 30, "ampm": "AM", **kw}
