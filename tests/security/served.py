"""An app served by waitress in a thread on 127.0.0.1, and a cookie-keeping HTTP agent."""

import http.client
import json
import re
import threading
from urllib.parse import urlencode

from waitress import create_server

from appliance.auth import create_admin
from tests.conftest import PASSWORD, build


class Served:
    """`build(tmp_path, **config)` with an administrator, served by waitress on a free port."""

    def __init__(self, tmp_path, threads: int = 8, **config):
        self.app = build(tmp_path, **config)
        with self.app.app_context():
            create_admin("admin", PASSWORD)
        self.server = create_server(self.app, host="127.0.0.1", port=0, threads=threads,
                                    ident="appliance")
        self.port = self.server.effective_port
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()

    def agent(self, cookie: str | None = None) -> "Agent":
        return Agent(self.port, cookie)

    def close(self) -> None:
        # Closed from inside the serving loop (woken by waitress's trigger), so the loop sees
        # its map empty at once instead of at its next 1 s poll timeout, and no select() is
        # left waiting on a closed descriptor.
        if self.thread.is_alive():
            self.server.trigger.pull_trigger(self.server.close)
            self.thread.join(5)
            assert not self.thread.is_alive(), "waitress did not stop within 5 s"
        else:
            self.server.close()
        self.server.task_dispatcher.shutdown()
        self.app.extensions["appliance"].jobs.shutdown()


class Agent:
    """A browser reduced to what the tests need: the session cookie and the CSRF token."""

    def __init__(self, port: int, cookie: str | None = None):
        self.port = port
        self.cookie = cookie  # "appliance_session=..."

    def request(self, method: str, path: str, form: dict | None = None,
                headers: dict | None = None, json_body=None) -> tuple[int, dict, str]:
        """(status, headers, text) of one request on a fresh connection."""
        hdrs = dict(headers or {})
        body = None
        if form is not None:
            body = urlencode(form).encode()
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        elif json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs["Content-Type"] = "application/json"
        if self.cookie:
            hdrs["Cookie"] = self.cookie
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            text = resp.read().decode()
            for value in resp.msg.get_all("Set-Cookie") or ():
                pair = value.split(";", 1)[0]
                if pair.startswith("appliance_session="):
                    self.cookie = pair if pair != "appliance_session=" else None
            return resp.status, dict(resp.getheaders()), text
        finally:
            conn.close()

    def get(self, path: str, **kw) -> tuple[int, dict, str]:
        return self.request("GET", path, **kw)

    def csrf(self, path: str = "/") -> str:
        """The CSRF token of the form on `path` (it also starts the cookie)."""
        status, _, text = self.get(path)
        assert status == 200, (path, status)
        return re.search(r'name="csrf_token" value="([^"]+)"', text).group(1)

    def post(self, path: str, form: dict | None = None, page: str = "/") -> tuple[int, dict, str]:
        """POST a form with the CSRF token of `page`, like the page's own form does."""
        return self.request("POST", path, {**(form or {}), "csrf_token": self.csrf(page)})

    def login(self, username: str = "admin", password: str = PASSWORD) -> int:
        token = self.csrf("/login")
        status, _, _ = self.request("POST", "/login", {"username": username,
                                                       "password": password,
                                                       "csrf_token": token})
        return status
