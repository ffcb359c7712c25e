"""Throwaway Prosody instances for tests, configured by the appliance's own `render()`."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import trustme

from appliance.xmpp import service as xmpp
from appliance.xmpp.config import XmppConfig, render
from appliance.xmpp.prosody import XmppService
from tests.servers import ServerProcess


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def closed_port(host: str = "127.0.0.1") -> int:
    """A port on `host` that nothing listens on (connections are refused)."""
    return free_port(host)


def accepts(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def prosody_available() -> bool:
    """Whether Prosody and prosodyctl are installed."""
    return bool(shutil.which("prosody") and shutil.which("prosodyctl"))


class Prosody(ServerProcess):
    """`prosody -F` for a config written by `render()`; certificates from a shared CA.

    Ready once its c2s and s2s ports accept connections (log lines are not reliable).
    `cert_name` issues the server certificate for another name than the domain.
    """

    timeout = 20.0

    def __init__(self, workdir, ca: trustme.CA, domain: str, host: str = "127.0.0.1", *,
                 cert_name: str | None = None, federation_enabled: bool = True,
                 c2s_port: int | None = None, s2s_port: int | None = None,
                 domains: list[str] | None = None,
                 routes: dict[str, tuple[str, int]] | None = None):
        self.dir = Path(workdir)
        if self.dir.exists():
            shutil.rmtree(self.dir)  # a fresh data_path: leftover rosters hang tests
        self.dir.mkdir(parents=True)
        self.domain, self.host, self.ca = domain, host, ca
        cert = ca.issue_cert(cert_name or domain)
        cert.private_key_and_cert_chain_pem.write_to_path(str(self.dir / "server.pem"))
        ca.cert_pem.write_to_path(str(self.dir / "ca.pem"))
        self.config = XmppConfig(
            domain, c2s_port=c2s_port or free_port(host), s2s_port=s2s_port or free_port(host),
            interfaces=[host],
            cert_file=str(self.dir / "server.pem"), key_file=str(self.dir / "server.pem"),
            ca_file=str(self.dir / "ca.pem"), data_dir=str(self.dir / "data"),
            federation_enabled=federation_enabled, domains=list(domains or []),
            routes=dict(routes or {}))
        self.config_path = self.dir / "prosody.cfg.lua"
        self.service = XmppService(self.config_path)
        self.service.write(self.config)
        super().__init__(["prosody", "-F", "--config", str(self.config_path)],
                         env={**os.environ, "HOME": str(self.dir)})

    @property
    def c2s(self) -> tuple[str, int]:
        return (self.host, self.config.c2s_port)

    @property
    def s2s(self) -> tuple[str, int]:
        return (self.host, self.config.s2s_port)

    @property
    def ca_file(self) -> str:
        return self.config.ca_file

    def start(self):
        """Start Prosody and wait until c2s and s2s accept connections; return self."""
        # Prosody may print nothing (it logs to a file): do not wait for a line of output.
        self.proc = subprocess.Popen(self.args, env=self.env, cwd=self.cwd, text=True,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self._watch()
        deadline = time.monotonic() + self.timeout
        while not (accepts(*self.c2s) and accepts(*self.s2s) and self.service.applied()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"prosody for {self.domain} did not start:\n"
                                   + "".join(self.output) + self.log())
            time.sleep(0.02)
        return self

    def reconfigure(self, **changes) -> XmppConfig:
        """A copy of the current config with `changes` (not applied)."""
        return replace(self.config, **changes)

    def apply(self, **changes) -> bool:
        """Apply config changes to the running server by a reload; True if it reloaded."""
        self.config = self.reconfigure(**changes)
        return self.service.apply(self.config)

    def register(self, user: str, password: str) -> str:
        """Create user@domain; return the JID."""
        self.service.register(user, self.domain, password)
        return f"{user}@{self.domain}"

    def log(self) -> str:
        """The Prosody log file so far."""
        try:
            return (Path(self.config.data_dir) / "prosody.log").read_text()
        except FileNotFoundError:
            return ""

    def render(self) -> str:
        return render(self.config)


def prosodyctl(config_path: Path, *args: str) -> str:
    """Run prosodyctl on a config; its output."""
    return subprocess.run(["prosodyctl", "--config", str(config_path), *args],
                          capture_output=True, text=True, timeout=30, check=True).stdout


def serving(app, directory: Path, domain: str) -> tuple[Prosody, trustme.CA]:
    """A Prosody (not started) for `app`'s client service: its IM domains as virtual hosts,
    signing users in through the app's link (XMPP_LINK_URL), with a certificate for
    `domain` from a new CA; the app sees it as its XMPP service."""
    ca = trustme.CA()
    server = Prosody(directory, ca, "svc.test")
    ca.issue_cert("svc.test", domain).private_key_and_cert_chain_pem.write_to_path(
        server.config.cert_file)
    with app.test_request_context():
        own = xmpp.config()
    server.config = server.reconfigure(hosts=own.hosts, link_url=own.link_url,
                                       link_secret=own.link_secret)
    server.service.write(server.config)
    app.config["XMPP_CONFIG"] = str(server.config_path)  # the appliance sees it running
    return server, ca
