"""Two real `appliance serve` processes on one database (the suite's store: the SQLite file
of their shared data directory, or its PostgreSQL database): a job running in one survives
the other's start-up, a second start from either is refused naming it, killing its owner
gets it marked interrupted, due schedules fire once, and web / worker roles split the work.

The job is the peering plugin's status check of a MiCollab peer whose address is a socket
that accepts and never answers (with APPLIANCE_PEER_TIMEOUT at its maximum): it runs until
the test closes that socket.
"""

import http.client
import json
import os
import signal
import socket
import threading
import time
from datetime import datetime
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select, update

from appliance import vault
from appliance.db import db, utcnow
from appliance.models import Enterprise, JobRun, JobSchedule
from appliance.plugins.peering.models import MCS, Peer
from tests.conftest import build
from tests.peer_sites import prepare
from tests.servers import ApplianceProcess, wait_until

FAST = {"APPLIANCE_JOB_HEARTBEAT_SECONDS": "0.3", "APPLIANCE_JOB_STALE_BEATS": "3",
        "APPLIANCE_JOB_POLL_SECONDS": "0.1", "APPLIANCE_PEER_TIMEOUT": "600"}


class Silent:
    """A TCP server that accepts connections and says nothing until closed."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._closed = False
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with self._lock:
                if self._closed:  # came in while closing: hang up on it too
                    conn.close()
                    return
                self.accepted.append(conn)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns = list(self.accepted)
        try:
            self.server.shutdown(socket.SHUT_RDWR)  # wakes the accept() under way
        except OSError:
            pass
        self.server.close()
        for conn in conns:
            conn.close()


class Client:
    """The admin API of one appliance process."""

    def __init__(self, proc: ApplianceProcess, token: str):
        parts = urlsplit(proc.url)
        self.proc, self.host, self.port, self.token = proc, parts.hostname, parts.port, token

    def call(self, method: str, path: str, auth: bool = True) -> tuple[int, dict | str]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, path, headers={"Authorization": f"Bearer {self.token}"}
                         if auth else {})
            resp = conn.getresponse()
            raw = resp.read().decode()
            try:
                return resp.status, json.loads(raw)
            except ValueError:
                return resp.status, raw
        finally:
            conn.close()

    def run(self, run_id: int) -> dict:
        status, run = self.call("GET", f"/api/v1/jobs/{run_id}")
        assert status == 200, run
        return run

    def check(self, ent_id: int) -> tuple[int, dict]:
        return self.call("POST", f"/api/v1/peering/enterprises/{ent_id}/check")


@pytest.fixture
def site(tmp_path):
    """(data dir, admin token, enterprise id, the silent peer) of processes to come."""
    data = tmp_path / "site"
    token = prepare(data)
    silent = Silent()
    app = build(data)
    try:
        with app.app_context():
            ent = Enterprise(eid="acme", name="Acme")
            db.session.add(ent)
            db.session.flush()
            db.session.add(Peer(enterprise_id=ent.id, kind=MCS, description="Silent peer",
                                hostname="127.0.0.1", port=silent.port, peer_eid="acme",
                                key_sealed=vault.seal("peer-key")))
            db.session.commit()
            ent_id = ent.id
            db.engine.dispose()
        yield data, token, ent_id, silent, app
    finally:
        silent.close()
        app.extensions["appliance"].jobs.shutdown()


def start(data, *args: str, **env: str) -> ApplianceProcess:
    proc = ApplianceProcess(data, env={**FAST, **env})
    proc.args += list(args)
    return proc.start()


def at(iso: str) -> datetime:
    return datetime.fromisoformat(iso.removesuffix("Z"))


def pid_of(owner: str) -> int:
    return int(owner.rsplit(":", 2)[1])


def test_a_run_survives_another_start_is_refused_twice_and_is_interrupted_when_killed(site):
    data, token, ent_id, silent, _app = site
    a = start(data)
    b = None
    try:
        api_a = Client(a, token)
        status, started = api_a.check(ent_id)
        assert status == 202, started
        run_id = started["run_id"]
        assert wait_until(lambda: silent.accepted and api_a.run(run_id)["state"] == "running",
                          timeout=30)
        assert pid_of(api_a.run(run_id)["owner"]) == a.pid

        b = start(data)
        api_b = Client(b, token)
        assert "marked interrupted" not in "".join(b.output)
        survived = api_b.run(run_id)
        assert survived["state"] == "running" and pid_of(survived["owner"]) == a.pid
        # A's heartbeat goes on while B runs its periodic check.
        assert wait_until(lambda: at(api_b.run(run_id)["heartbeat_at"]) > at(
            survived["heartbeat_at"]), timeout=10)

        for api in (api_b, api_a):
            status, refused = api.check(ent_id)
            assert status == 409 and refused["error"] == "already_running", refused
            assert refused["message"].startswith(
                f"Peer status of acme is already running (job run #{run_id}, running since ")
            assert refused["message"].endswith(f", pid {a.pid})")

        os.kill(a.pid, signal.SIGKILL)
        a.proc.wait(10)
        killed = time.monotonic()
        assert wait_until(lambda: api_b.run(run_id)["state"] == "interrupted", timeout=60)
        assert time.monotonic() - killed < 60
        ended = api_b.run(run_id)
        assert ended["message"] == "The appliance stopped while this job was running"
        assert ended["finished_at"] is not None

        # The kind and target are free again: B takes the next run itself.
        status, again = api_b.check(ent_id)
        assert status == 202, again
        assert wait_until(lambda: len(silent.accepted) == 2 and api_b.run(
            again["run_id"])["state"] == "running", timeout=30)
        assert pid_of(api_b.run(again["run_id"])["owner"]) == b.pid
        silent.close()  # the peer hangs up: the check ends
        assert wait_until(lambda: api_b.run(again["run_id"])["state"] == "succeeded",
                          timeout=30)
    finally:
        silent.close()
        a.stop()
        if b is not None:
            b.stop()


def test_schedules_due_in_the_same_minute_each_run_exactly_once(site):
    data, token, _ent_id, _silent, app = site
    kinds = ("housekeeping", "network_elements.tidy", "network_elements.flow")
    procs = [start(data, APPLIANCE_SCHEDULER_INTERVAL="0.1",
                   APPLIANCE_JOB_POLL_SECONDS="0.05") for _ in range(2)]
    try:
        api = Client(procs[0], token)
        due = utcnow().replace(second=0, microsecond=0)
        with app.app_context():
            # The built-in schedules, made by the processes' start-up, all on target "host".
            assert set(db.session.scalars(select(JobSchedule.target).where(
                JobSchedule.kind.in_(kinds)))) == {"host"}
            before = db.session.scalar(select(JobRun.id).order_by(JobRun.id.desc()).limit(1))
            db.session.execute(update(JobSchedule).where(JobSchedule.kind.in_(kinds))
                               .values(next_run_at=due))
            db.session.commit()

            def fired():
                db.session.expire_all()
                return all(n > due for n in db.session.scalars(select(
                    JobSchedule.next_run_at).where(JobSchedule.kind.in_(kinds))))

            assert wait_until(fired, timeout=30)
            runs = db.session.execute(select(JobRun.id, JobRun.kind).where(
                JobRun.id > (before or 0), JobRun.kind.in_(kinds),
                JobRun.triggered_by == "schedule")).all()
            db.engine.dispose()
        assert sorted(kind for _, kind in runs) == sorted(kinds)  # each once, none skipped
        for run_id, _kind in runs:
            assert wait_until(lambda r=run_id: api.run(r)["state"] == "succeeded", timeout=30)
        owners = {pid_of(api.run(run_id)["owner"]) for run_id, _ in runs}
        assert owners <= {p.pid for p in procs}
    finally:
        for p in procs:
            p.stop()


def test_a_web_process_queues_and_a_worker_process_runs(site):
    data, token, ent_id, silent, _app = site
    web = start(data, APPLIANCE_ROLE="web")
    worker = None
    try:
        assert "Role: web" in "".join(web.output)
        api = Client(web, token)
        status, started = api.check(ent_id)
        assert (status, started["state"]) == (202, "queued"), started
        run_id = started["run_id"]
        assert api.run(run_id)["state"] == "queued"  # nobody runs it yet

        worker = start(data, "--role", "worker")
        assert "Role: worker" in "".join(worker.output)
        assert wait_until(lambda: silent.accepted and api.run(run_id)["state"] == "running",
                          timeout=30)
        assert pid_of(api.run(run_id)["owner"]) == worker.pid
        status, refused = api.check(ent_id)
        assert status == 409 and f"job run #{run_id}" in refused["message"], refused

        direct = Client(worker, token)
        assert direct.call("GET", "/healthz", auth=False)[0] == 200
        assert direct.call("GET", f"/api/v1/jobs/{run_id}")[0] == 404
        assert direct.call("GET", "/login", auth=False)[0] == 404

        silent.close()
        assert wait_until(lambda: api.run(run_id)["state"] == "succeeded", timeout=30), (
            api.run(run_id), "".join(worker.output))
    finally:
        silent.close()
        web.stop()
        if worker is not None:
            worker.stop()
