"""A bulk import killed midway (kill -9 of `appliance serve`) leaves what it committed
audited and counted, and importing the same file again completes it (hardening item 10).

The import is stopped at a known point, not when a poll happens to see progress: its result
report (written after each chunk commits) is a named pipe of one page that the test does not
read, so the import blocks writing the first chunk's report rows, once that chunk committed.
"""

import csv
import fcntl
import http.client
import io
import json
import os
import signal
import time
import uuid
from urllib.parse import urlsplit

from appliance.plugins.network_elements import bulk, bulk_read
from tests.peer_sites import prepare
from tests.postgres_server import query
from tests.servers import ApplianceProcess

ROWS = 5 * bulk.CHUNK + 10  # the first chunk commits; the others wait on the report


class Api:
    def __init__(self, proc: ApplianceProcess, token: str):
        parts = urlsplit(proc.url)
        self.host, self.port, self.token = parts.hostname, parts.port, token

    def call(self, method: str, path: str, body: dict | None = None,
             files: tuple[str, bytes] | None = None) -> tuple[int, dict]:
        headers = {"Authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        if files is not None:
            boundary = uuid.uuid4().hex
            name, content = files
            data = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                    f"filename=\"{name}\"\r\nContent-Type: text/csv\r\n\r\n").encode() + \
                content + f"\r\n--{boundary}--\r\n".encode()
            headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else {}
        finally:
            conn.close()

    def job(self, run_id: int) -> dict:
        status, run = self.call("GET", f"/api/v1/jobs/{run_id}")
        assert status == 200, run
        return run

    def wait(self, run_id: int, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while (run := self.job(run_id))["state"] in ("queued", "running"):
            assert time.monotonic() < deadline, run
            time.sleep(0.1)
        return run


def users_csv(n: int) -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(bulk_read.COLUMNS)
    for i in range(n):
        w.writerow((f"user{i:06d}", f"First{i}", f"Last{i}", f"user{i}@example.com",
                    str(100000 + i), "MiVB-1", "", "", "", ""))
    return out.getvalue().encode()


class ReportGate:
    """Named pipes where the next bulk runs' reports go (their ids are the next job run ids),
    each open for reading and one page big, never read until `drain`: the import writing
    its report blocks there once its first chunk committed."""

    def __init__(self, data_dir, next_ids: range):
        folder = data_dir / "imports"
        folder.mkdir(parents=True, exist_ok=True)
        self.readers = {}
        for run_id in next_ids:
            path = folder / f"report-{run_id}.csv"
            os.mkfifo(path)
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 4096)
            self.readers[run_id] = (path, fd)

    def keep(self, run_id: int) -> None:
        """Only `run_id`'s report is held: later runs write plain files again."""
        for other, (path, fd) in list(self.readers.items()):
            if other != run_id:
                os.close(fd)
                path.unlink()
                del self.readers[other]

    def drain(self, run_id: int) -> str:
        """What the run wrote to its report (its writer is gone)."""
        path, fd = self.readers.pop(run_id)
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb") as f:
            data = f.read()
        path.unlink()
        return data.decode()


def next_run_ids(data_dir, n: int = 5) -> range:
    last = query(data_dir, "SELECT coalesce(max(id), 0) FROM job_run")[0][0]
    return range(last + 1, last + 1 + n)


def test_killed_import_is_interrupted_audited_and_completed_by_importing_again(tmp_path):
    data_dir = tmp_path / "site"
    token = prepare(data_dir)
    content = users_csv(ROWS)
    proc = ApplianceProcess(data_dir).start()
    try:
        api = Api(proc, token)
        status, element = api.call("POST", "/api/v1/network-elements/elements", {
            "name": "MiVB-1", "platform": "MiVoice Business", "address": "mivb1.example.com"})
        assert status == 201, element
        gate = ReportGate(data_dir, next_run_ids(data_dir))  # scheduled runs may come first
        status, started = api.call("POST", "/api/v1/network-elements/bulk?apply=1",
                                   files=("users.csv", content))
        assert status == 202, started
        run_id = started["run_id"]
        gate.keep(run_id)
        # The first chunk commits with its counts; the import then waits on its report.
        deadline = time.monotonic() + 60
        while api.job(run_id)["counts"].get("rows") != bulk.CHUNK:
            assert time.monotonic() < deadline, api.job(run_id)
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.proc.wait(10)
    finally:
        proc.stop()
    report = gate.drain(run_id)

    proc = ApplianceProcess(data_dir).start()
    try:
        assert "1 job run(s) of a stopped process marked interrupted" in "".join(proc.output)
        api = Api(proc, token)
        run = api.job(run_id)
        committed = run["counts"]["rows"]
        assert run["state"] == "interrupted", run
        assert committed == bulk.CHUNK, run
        assert run["counts"] | {"queued": None} == {
            "add": committed, "update": 0, "unchanged": 0, "rejected": 0, "rows": committed,
            "queued": None}
        assert run["message"] == (
            f"The appliance stopped during the import: its first {committed:,} rows were "
            f"committed ({committed} added, 0 updated, 0 unchanged, 0 rejected); import the "
            "same file again to complete it (the rows already there show as unchanged)")
        # The users written are exactly those counted and audited.
        status, users = api.call("GET", f"/api/v1/network-elements/users?element={element['id']}")
        assert users["total"] == committed
        status, log = api.call("GET", "/api/v1/audit?action=import")
        assert status == 200 and len(log["items"]) == 1, log
        after = log["items"][0]["change"]["after"]
        assert after == {"file": "users.csv", "format": "csv", "add": committed, "update": 0,
                         "unchanged": 0, "rejected": 0, "queued": committed,
                         "unfinished": f"rows up to line {committed + 1} committed; the "
                                       "import goes on"}
        # The report holds the committed rows (written once their chunk committed), as
        # many as the pipe took before the appliance stopped.
        reported = list(csv.reader(io.StringIO(report, newline="")))
        assert reported[0] == ["line", "login", "action", "reasons"]
        complete = reported[1:-1]  # the last line may be cut
        assert 0 < len(complete) < committed and {r[2] for r in complete} == {"add"}
        assert [int(r[0]) for r in complete] == list(range(2, len(complete) + 2))

        status, again = api.call("POST", "/api/v1/network-elements/bulk?apply=1",
                                 files=("users.csv", content))
        done = api.wait(again["run_id"])
        assert done["state"] == "succeeded", done
        assert done["counts"] | {"queued": None} == {
            "add": ROWS - committed, "update": 0, "unchanged": committed, "rejected": 0,
            "rows": ROWS, "queued": None}
        assert f"{committed} unchanged (already there)" in done["message"]
        status, result = api.call("GET", f"/api/v1/network-elements/bulk/{again['run_id']}")
        shown = {r["login"]: r["action"] for r in result["rows"]}
        assert shown["user000000"] == "unchanged" and len(shown) == bulk.SHOWN
        status, users = api.call("GET", f"/api/v1/network-elements/users?element={element['id']}")
        assert users["total"] == ROWS
    finally:
        proc.stop()

    logins = [r[0] for r in query(data_dir, "SELECT login FROM network_elements_user")]
    changes = query(data_dir, "SELECT count(*), count(DISTINCT login) "
                              "FROM network_elements_change")[0]
    assert len(logins) == len(set(logins)) == ROWS
    assert changes == (ROWS, ROWS)  # one flow-through add per user, none queued twice
