"""A real appliance process (waitress) with an administrator's token, and raw HTTP to it."""

import http.client
import json
from pathlib import Path
from urllib.parse import urlsplit

from tests.peer_sites import prepare
from tests.servers import ApplianceProcess


class Live:
    """`appliance serve` with an admin and a token, for tests that need the real server."""

    def __init__(self, data_dir: Path, env: dict | None = None):
        self.token = prepare(data_dir)
        self.proc = ApplianceProcess(data_dir, env=env).start()
        parts = urlsplit(self.proc.url)
        self.host, self.port = parts.hostname, parts.port

    def request(self, method: str, path: str, body: bytes | dict | None = None,
                headers: dict | None = None, token: bool = True, timeout: float = 30):
        """(status, headers, body bytes) of one request on a fresh connection."""
        hdrs = dict(headers or {})
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        if token:
            hdrs.setdefault("Authorization", f"Bearer {self.token}")
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def rss_kib(self) -> int:
        """The server's resident memory now."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines()
                        if line.startswith("VmRSS:")))

    def stop(self) -> None:
        self.proc.stop()
