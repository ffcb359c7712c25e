"""Start real servers for the tests as ordinary processes and stop them by PID."""

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from tests import forked, postgres_server


class ServerProcess:
    """A child process that is ready once a line of its output matches `ready`."""

    ready: re.Pattern = re.compile(r".")
    timeout = 30.0

    def __init__(self, args: list[str], env: dict | None = None, cwd: str | None = None):
        self.args, self.env, self.cwd = args, env, cwd
        self.proc: subprocess.Popen | None = None
        self.match: re.Match | None = None
        self.output: list[str] = []
        self._ready = threading.Event()

    def start(self):
        """Start the process and wait until it says it is ready; return self."""
        self.proc = self._spawn()
        self._watch()
        if not self._ready.wait(self.timeout) or self.match is None:
            self.stop()
            raise RuntimeError(f"{self.args[0]} did not start within {self.timeout}s:\n"
                               + "".join(self.output))
        return self

    def _spawn(self):
        return subprocess.Popen(self.args, env=self.env, cwd=self.cwd, text=True,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)

    def _watch(self) -> None:
        """Read the output of the process just started, in a thread of its own that keeps
        this start's event and output: after a restart, the reader of the process before
        (ending as its pipe closes) must not wake the new start up."""
        threading.Thread(target=self._drain, args=(self.proc, self._ready, self.output),
                         daemon=True).start()

    def _drain(self, proc, ready: threading.Event, output: list[str]) -> None:
        """Keep reading the output (so the pipe never fills), watching for `ready`."""
        for line in proc.stdout:
            output.append(line)
            if not ready.is_set() and (m := self.ready.search(line)):
                self.match = m
                ready.set()
        ready.set()  # the process ended: stop waiting

    def stop(self, timeout: float = 10) -> None:
        """Terminate the process, killing it if it does not exit within `timeout`."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def __enter__(self):
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()


def wait_until(predicate, timeout: float = 10, interval: float = 0.05) -> bool:
    """Poll `predicate` until it is true (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def appliance_command() -> str:
    """The `appliance` console script of the running interpreter's environment."""
    local = Path(sys.executable).parent / "appliance"
    found = str(local) if local.exists() else shutil.which("appliance")
    if not found:
        raise RuntimeError("the `appliance` command is missing: run `pip install -e .`")
    return found


class ApplianceProcess(ServerProcess):
    """`appliance serve` on a free port of `host`, with its own data dir: a process forked
    from a warm interpreter (tests/forked.py) that runs the command line."""

    ready = re.compile(r"Appliance serving on (http://\S+/)")

    def __init__(self, data_dir, env: dict | None = None, host: str = "127.0.0.1"):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        base = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
        # No XMPP service unless a test asks for one (on ports of its own).
        base.update(APPLIANCE_DATA_DIR=str(self.data_dir), APPLIANCE_SECRET_KEY="test-secret",
                    PYTHONUNBUFFERED="1", APPLIANCE_XMPP_SUPERVISE="0")
        if "APPLIANCE_DATABASE_URL" not in (env or {}):
            base.update(postgres_server.env_for(self.data_dir))  # the suite's store
        base.update(env or {})
        super().__init__([appliance_command(), "serve", "--host", host, "--port", "0"], base)

    def _spawn(self):
        return forked.Forked(self.args[1:], self.env, self.cwd)

    @property
    def url(self) -> str:
        """The base URL, ending with a slash."""
        return self.match.group(1)


def run_appliance(data_dir, env: dict | None = None, **kw) -> Iterator[ApplianceProcess]:
    """Yield a running appliance, stopped afterwards: `yield from` it in a fixture."""
    with ApplianceProcess(data_dir, env, **kw) as proc:
        yield proc


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class NginxProcess(ServerProcess):
    """nginx in the foreground on a configuration of its own in `workdir`: `http` is what its
    http block holds besides what every one has (no access log, temp paths in workdir)."""

    ready = re.compile(r"start worker process")

    def __init__(self, workdir, http: str, connections: int = 128):
        self.dir = d = Path(workdir)
        d.mkdir(parents=True, exist_ok=True)
        user = "user root;" if os.geteuid() == 0 else ""
        (d / "nginx.conf").write_text(f"""
{user}
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log stderr notice;
events {{ worker_connections {connections}; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
{http}
}}
""")
        super().__init__([shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(d / "nginx.conf"),
                          "-p", str(d)])


class Nginx(NginxProcess):
    """nginx terminating real TLS on host:port in front of an HTTP upstream (an appliance).

    It passes the caller's address and scheme as X-Forwarded-For / -Proto, which the
    appliance reads when started with APPLIANCE_TRUSTED_PROXIES=1.
    """

    def __init__(self, workdir, upstream: str, cert_pem: str, key_pem: str,
                 host: str = "127.0.0.1", port: int | None = None):
        d = Path(workdir)
        d.mkdir(parents=True, exist_ok=True)
        self.host, self.port = host, port or free_port(host)
        (d / "cert.pem").write_text(cert_pem)
        (d / "key.pem").write_text(key_pem)
        super().__init__(d, f"""  server {{
    listen {self.host}:{self.port} ssl;
    ssl_certificate {d}/cert.pem;
    ssl_certificate_key {d}/key.pem;
    location / {{
      proxy_pass http://{upstream};
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto https;
      proxy_set_header X-Forwarded-Host $http_host;
    }}
  }}""")


class Gate:
    """A TCP relay in front of an HTTP server that can hold one request on its way.

    Every connection is relayed to `upstream` (host, port) as it is, except the one whose
    request line is the `nth` to match `pattern` after `hold()`: it is not forwarded, and
    `held` is set, so a test knows exactly how far the client got. Once released (or the
    gate closed) that connection is closed without an answer.
    """

    def __init__(self, upstream: tuple[str, int], host: str = "127.0.0.1"):
        self.upstream = upstream
        self.server = socket.create_server((host, 0))
        self.host, self.port = self.server.getsockname()[:2]
        self.held = threading.Event()
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._pattern: re.Pattern | None = None
        self._left = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def hold(self, pattern: str, nth: int = 1) -> None:
        """Hold the `nth` request from now on whose request line matches `pattern`."""
        with self._lock:
            self._pattern, self._left = re.compile(pattern), nth
            self.held.clear()
            self._released.clear()

    def release(self) -> None:
        self._released.set()

    def close(self) -> None:
        self.release()
        self.server.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _holds(self, line: bytes) -> bool:
        with self._lock:
            if self._pattern is None or not self._pattern.search(line.decode("latin-1")):
                return False
            self._left -= 1
            if self._left:
                return False
            self._pattern = None
            return True

    def _relay(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                head += chunk
            if self._holds(head.split(b"\r\n", 1)[0]):
                self.held.set()
                self._released.wait(60)
                return
            try:
                up = socket.create_connection(self.upstream, timeout=30)
            except OSError:
                return
            with up:
                up.sendall(head)
                back = threading.Thread(target=_pipe, args=(up, conn), daemon=True)
                back.start()
                _pipe(conn, up)
                back.join(60)


def _pipe(src: socket.socket, dest: socket.socket) -> None:
    """Copy bytes from src to dest until src ends, then end dest's writing side."""
    try:
        while chunk := src.recv(65536):
            dest.sendall(chunk)
        dest.shutdown(socket.SHUT_WR)
    except OSError:
        pass
