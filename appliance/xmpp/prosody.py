"""The local Prosody instance: writes its config, reloads it (SIGHUP: connected clients stay
connected), manages accounts through prosodyctl and lists the federated connections.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from .config import (
    CERTS_DIR,
    STATE_FILE,
    XmppConfig,
    lua_string,
    lua_unstring,
    read_option,
    render,
)

log = logging.getLogger(__name__)


class XmppError(Exception):
    """The XMPP service could not do what was asked."""


_version_cache: dict[str, str | None] = {}


class XmppService:
    """The local Prosody instance, driven through its config file, signals and prosodyctl."""

    def __init__(self, config_path: Path, prosodyctl: str = "prosodyctl",
                 prosody: str = "prosody"):
        self.config_path = Path(config_path)
        self.prosodyctl = prosodyctl
        self.prosody = prosody

    # -- discovery

    def installed(self) -> bool:
        """Whether both prosody and prosodyctl are found."""
        return bool(shutil.which(self.prosody) and shutil.which(self.prosodyctl))

    def version(self) -> str | None:
        """Prosody's version (e.g. "0.12.3"), None when not installed; cached."""
        if self.prosodyctl not in _version_cache:
            version = None
            if shutil.which(self.prosodyctl):
                try:
                    out = subprocess.run([self.prosodyctl, "about"], capture_output=True,
                                         text=True, timeout=15, stdin=subprocess.DEVNULL).stdout
                    m = re.search(r"^Prosody (\S+)", out, re.MULTILINE)
                    version = m[1] if m else None
                except (OSError, subprocess.SubprocessError):
                    version = None
            _version_cache[self.prosodyctl] = version
        return _version_cache[self.prosodyctl]

    # -- configuration

    def _text(self) -> str:
        try:
            return self.config_path.read_text()
        except FileNotFoundError:
            return ""

    def write(self, cfg: XmppConfig) -> bool:
        """Write the config for `cfg` atomically if it changed (mode 0640); True if it did."""
        text = render(cfg)
        (Path(cfg.data_dir) / CERTS_DIR).mkdir(mode=0o750, parents=True, exist_ok=True)
        if self._text() == text:
            return False
        self.config_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.config_path.with_name(f".{self.config_path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o640)
            os.replace(tmp, self.config_path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return True

    def _data_dir(self) -> Path | None:
        data = read_option(self._text(), "data_path")
        return Path(data) if data else None

    # -- process

    def pid(self) -> int | None:
        """The PID of the running Prosody (from the config's pidfile), or None."""
        pidfile = read_option(self._text(), "pidfile")
        if not pidfile:
            return None
        try:
            pid = int(Path(pidfile).read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # exists, runs as another user
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return pid  # no /proc to check against: trust the pidfile
        return pid if b"prosody" in cmdline else None

    def running(self) -> bool:
        """Whether Prosody runs with this config."""
        return self.pid() is not None

    def reload(self) -> None:
        """Make the running Prosody re-read its config (SIGHUP); c2s clients stay connected."""
        pid = self.pid()
        if pid is None:
            raise XmppError("The XMPP service is not running, so it cannot be reloaded")
        try:
            os.kill(pid, signal.SIGHUP)
        except PermissionError:
            self._ctl(["reload"])
        except ProcessLookupError as exc:
            raise XmppError("The XMPP service stopped before it could be reloaded") from exc

    def hosts(self) -> list[str]:
        """The client service's virtual hosts in the config file as it is now."""
        m = re.search(r'^appliance_hosts = \{(.*)\}$', self._text(), re.MULTILINE)
        return [lua_unstring(v) for v in re.findall(r'"(?:[^"\\]|\\.)*"', m[1])] if m else []

    def apply(self, cfg: XmppConfig) -> bool:
        """Write `cfg` and reload a running service if it changed; True if it was reloaded.

        The reload is asynchronous: `wait_applied()` tells when the new policy is in force.
        A reload does not start or stop virtual hosts: once it is in force, the hosts added
        are activated and those gone deactivated (their users' sessions end) through the
        admin shell.
        """
        before = set(self.hosts())
        changed = self.write(cfg)
        if not (changed and self.running()):
            return False
        self.reload()
        after = set(cfg.hosts) if cfg.link_url else set()
        if before != after:
            if not self.wait_applied():
                raise XmppError("The XMPP service did not load its new configuration in time")
            for name in sorted(after - before):
                self._ctl(["shell", f"host:activate({lua_string(name)})"], timeout=15)
            for name in sorted(before - after):
                self._ctl(["shell", f"host:deactivate({lua_string(name)})"], timeout=15)
        return True

    def applied(self) -> bool:
        """Whether the running Prosody has loaded the config file as it is now."""
        digest = read_option(self._text(), "appliance_config_digest")
        data = self._data_dir()
        if not digest or not data:
            return False
        try:
            return (data / STATE_FILE).read_text().strip() == digest
        except OSError:
            return False

    def wait_applied(self, timeout: float = 10.0, interval: float = 0.02) -> bool:
        """Wait until the running service has the current config in force (sessions with
        domains no longer allowed closed); False on timeout.
        """
        deadline = time.monotonic() + timeout
        while True:
            if self.applied():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)

    # -- prosodyctl

    def _ctl(self, args: list[str], stdin: str | None = None,
             timeout: float = 30) -> subprocess.CompletedProcess:
        """Run prosodyctl on this config; raise XmppError on failure (stdin never shown)."""
        cmd = [self.prosodyctl, "--config", str(self.config_path), *args]
        try:
            proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True,
                                  timeout=timeout, stdin=None if stdin is not None
                                  else subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError) as exc:
            raise XmppError(f"prosodyctl {args[0]} failed: {exc}") from exc
        if proc.returncode != 0:
            out = (proc.stdout + proc.stderr).replace("\x1b[08m", "").replace("\x1b[00m", "")
            out = "\n".join(line for line in out.splitlines()
                            if line.strip() and "password:" not in line)  # prompts
            raise XmppError(f"prosodyctl {args[0]} failed: {out.strip()}")
        return proc

    def register(self, user: str, domain: str, password: str) -> None:
        """Create the account user@domain, or set its password (given on stdin)."""
        if not password or "\n" in password or "\r" in password:
            raise ValueError("the password must be a non-empty single line")
        self._ctl(["register", user, domain], stdin=f"{password}\n{password}\n")

    def unregister(self, user: str, domain: str) -> None:
        """Delete the account user@domain."""
        self._ctl(["unregister", user, domain])

    _S2S_SHOW = ("s2s:show(nil, {"
                 "{title='Dir';key='direction';width=10};"
                 "{title='Type';key='type';width=16};"
                 "{title='Local';key='host';width=256};"
                 "{title='From';key='from_host';width=256};"
                 "{title='To';key='to_host';width=256};"
                 "'secure';'cert';'dialback'})")

    def close_s2s(self, local: str, remote: str) -> None:
        """Close every stream between `local` and `remote`, both ways (the remote server may
        connect again if policy lets it)."""
        for a, b in ((local, remote), (remote, local)):
            self._ctl(["shell", f"s2s:close({lua_string(a)}, {lua_string(b)})"], timeout=15)

    def open_s2s(self, pairs: list[tuple[str, str]]) -> threading.Thread:
        """Open the streams from each local to each remote domain of `pairs` now (a ping
        once the new configuration is loaded), in the background: a server that refused us
        earlier may wait minutes before it connects on its own."""
        thread = threading.Thread(target=self._open, args=(pairs,), daemon=True,
                                  name="s2s-open")
        thread.start()
        return thread

    def _open(self, pairs: list[tuple[str, str]]) -> None:
        self.wait_applied()
        for local, remote in pairs:
            try:
                self._ctl(["shell", f"xmpp:ping({lua_string(local)}, {lua_string(remote)}, 10)"],
                          timeout=20)
            except XmppError as exc:
                log.info("opening the link %s -> %s: %s", local, remote, exc)

    def s2s_sessions(self) -> list[dict]:
        """Active federated connections: dicts with direction ("in"/"out"), local and remote
        domain, whether the stream is authenticated and how (certificate or dialback), and
        its TLS version; [] when not running.
        """
        if not self.running():
            return []
        out = self._ctl(["shell", self._S2S_SHOW], timeout=15).stdout
        sessions = []
        for line in out.splitlines():
            cells = [c.strip() for c in line.split(" | ")]
            if len(cells) != 8 or cells[0] == "Dir":
                continue
            direction, kind, local, from_host, to_host, tls, cert, dialback = cells
            outgoing = direction == "outgoing"
            authenticated = kind in ("s2sin", "s2sout")
            sessions.append({
                "direction": "out" if outgoing else "in",
                "local": local,
                "remote": to_host if outgoing else from_host,
                "authenticated": authenticated,
                "by": None if not authenticated else "dialback" if dialback == "Completed"
                else "certificate" if cert == "Valid" else "other",
                "tls": tls if tls not in ("", "insecure") else None,
                "certificate": cert or None,
            })
        return sessions


