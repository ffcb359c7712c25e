"""The appliance's side of the embedded XMPP service (Prosody 0.12).

`render()` writes the whole Prosody configuration; `XmppService` writes it, reloads the
running server (SIGHUP: connected clients stay connected), manages accounts and lists the
federated connections; `probe()` is the federation Test action (an XMPP ping through the
service to a remote domain). Federation policy (allow-list, static routes) is enforced by
the packaged Prosody module `mod_appliance_federation` (see prosody/).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

#: The directory holding mod_appliance_federation.lua (Prosody's plugin_paths).
MODULE_DIR = Path(__file__).resolve().parent / "prosody"
#: Written by the module into data_path once a (re)loaded config is in force.
STATE_FILE = "appliance_federation.applied"
PIDFILE = "prosody.pid"
CERTS_DIR = "certs"  # Prosody's certificate directory (unused: the ssl option is explicit)
LOGFILE = "prosody.log"

MODULES = ("roster", "saslauth", "tls", "dialback", "disco", "ping", "presence", "private",
           "vcard_legacy", "carbons", "blocklist", "time", "uptime", "version", "posix")


class XmppError(Exception):
    """The XMPP service could not do what was asked."""


@dataclass
class XmppConfig:
    """Everything the appliance decides about its Prosody instance."""

    domain: str
    c2s_port: int = 5222
    s2s_port: int = 5269
    interfaces: list[str] = field(default_factory=lambda: ["127.0.0.1"])
    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""  # CA bundle to verify remote servers; empty: the system's
    data_dir: str = field(kw_only=True)  # Prosody's data_path, pidfile and log (required)
    federation_enabled: bool = False
    domains: list[str] = field(default_factory=list)
    routes: dict[str, tuple[str, int]] = field(default_factory=dict)
    admin_shell: bool = True
    run_as_root: bool = field(default_factory=lambda: os.geteuid() == 0)


# --- configuration file ---------------------------------------------------------------------

def lua_string(value: str) -> str:
    """`value` as a Lua string literal: quotes, backslashes and control characters escaped."""
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\{code:03d}")  # three digits: a following digit cannot extend it
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _lua_unstring(literal: str) -> str:
    """Inverse of `lua_string` (only what it produces)."""
    return re.sub(r'\\(\d{3}|.)',
                  lambda m: chr(int(m[1])) if m[1].isdigit() else m[1], literal[1:-1])


def _lua_port(value: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ValueError(f"not a TCP port: {value!r}")
    return str(value)


def _lua_list(values: list[str]) -> str:
    return "{ " + ", ".join(lua_string(v) for v in values) + " }"


def _lua_bool(value: bool) -> str:
    return "true" if value else "false"


def render(cfg: XmppConfig) -> str:
    """The whole Prosody configuration file (Lua) for `cfg`."""
    if not cfg.domain:
        raise ValueError("the XMPP domain is required")
    if not cfg.data_dir:
        raise ValueError("data_dir is required")
    if not cfg.interfaces:
        raise ValueError("at least one interface is required")
    data = Path(cfg.data_dir)
    ssl = [f"certificate = {lua_string(cfg.cert_file)}"] if cfg.cert_file else []
    if cfg.key_file:
        ssl.append(f"key = {lua_string(cfg.key_file)}")
    if cfg.ca_file:
        ssl.append(f"cafile = {lua_string(cfg.ca_file)}")
    modules = [*MODULES, *(["admin_shell"] if cfg.admin_shell else []), "appliance_federation"]
    routes = "".join(
        f" [{lua_string(domain)}] = {{ host = {lua_string(host)}, port = {_lua_port(port)} }};"
        for domain, (host, port) in sorted(cfg.routes.items()))
    body = "\n".join([
        "-- Prosody configuration written by the appliance: changes here are overwritten.",
        "",
        "daemonize = false",
        f"pidfile = {lua_string(str(data / PIDFILE))}",
        f"data_path = {lua_string(str(data))}",
        f"log = {{ info = {lua_string(str(data / LOGFILE))} }}",
        f"plugin_paths = {{ {lua_string(str(MODULE_DIR))} }}",
        f"certificates = {lua_string(str(data / CERTS_DIR))}",
        f"run_as_root = {_lua_bool(cfg.run_as_root)}",
        "",
        f"modules_enabled = {_lua_list(modules)}",
        "",
        'authentication = "internal_hashed"',
        "allow_registration = false",
        "c2s_require_encryption = true",
        "s2s_require_encryption = true",
        "s2s_secure_auth = true",
        f"ssl = {{ {'; '.join(ssl)} }}",
        "",
        f"c2s_interfaces = {_lua_list(cfg.interfaces)}",
        f"c2s_ports = {{ {_lua_port(cfg.c2s_port)} }}",
        f"s2s_interfaces = {_lua_list(cfg.interfaces)}",
        f"s2s_ports = {{ {_lua_port(cfg.s2s_port)} }}",
        "http_ports = {}",
        "https_ports = {}",
        "",
        f"appliance_federation_enabled = {_lua_bool(cfg.federation_enabled)}",
        f"appliance_federation_domains = {_lua_list(cfg.domains)}",
        f"appliance_federation_routes = {{{routes} }}",
        "",
    ])
    digest = hashlib.sha256(body.encode()).hexdigest()
    return (f"{body}appliance_config_digest = {lua_string(digest)}\n\n"
            f"VirtualHost {lua_string(cfg.domain)}\n")


# --- the service ----------------------------------------------------------------------------

def _option(text: str, name: str) -> str | None:
    """A top-level string option of a config written by `render()`."""
    m = re.search(rf'^{name} = ("(?:[^"\\]|\\.)*")$', text, re.MULTILINE)
    return _lua_unstring(m[1]) if m else None


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
        data = _option(self._text(), "data_path")
        return Path(data) if data else None

    # -- process

    def pid(self) -> int | None:
        """The PID of the running Prosody (from the config's pidfile), or None."""
        pidfile = _option(self._text(), "pidfile")
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

    def apply(self, cfg: XmppConfig) -> bool:
        """Write `cfg` and reload a running service if it changed; True if it was reloaded.

        The reload is asynchronous: `wait_applied()` tells when the new policy is in force.
        """
        changed = self.write(cfg)
        if changed and self.running():
            self.reload()
            return True
        return False

    def applied(self) -> bool:
        """Whether the running Prosody has loaded the config file as it is now."""
        digest = _option(self._text(), "appliance_config_digest")
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
                 "{title='To';key='to_host';width=256}})")

    def s2s_sessions(self) -> list[dict]:
        """Active federated connections: dicts with direction ("in"/"out"), local and remote
        domain and whether the stream is authenticated; [] when not running.
        """
        if not self.running():
            return []
        out = self._ctl(["shell", self._S2S_SHOW], timeout=15).stdout
        sessions = []
        for line in out.splitlines():
            cells = [c.strip() for c in line.split(" | ")]
            if len(cells) != 5 or cells[0] == "Dir":
                continue
            direction, kind, local, from_host, to_host = cells
            outgoing = direction == "outgoing"
            sessions.append({
                "direction": "out" if outgoing else "in",
                "local": local,
                "remote": to_host if outgoing else from_host,
                "authenticated": kind in ("s2sin", "s2sout"),
            })
        return sessions


# --- federation Test ------------------------------------------------------------------------

_LOCAL_CONDITIONS = {"not-allowed", "remote-server-not-found", "remote-server-timeout"}


def classify_error(condition: str, text: str, by_us: bool = True) -> tuple[str, str]:
    """(kind, message) for a stanza error the service returned to a ping of a remote domain."""
    text = text or ""
    lowered = text.lower()
    if condition == "not-allowed":
        if by_us:
            return "policy", text or "Federation with this domain is refused by our policy"
        return "remote_policy", text or "The remote server refuses federation with us"
    if condition in ("remote-server-not-found", "remote-server-timeout"):
        if "certificate" in lowered:
            return "certificate", text
        if "policy-violation" in lowered or "not allowed" in lowered:
            return "remote_policy", text
        if condition == "remote-server-timeout" and not text:
            return "timeout", "The remote server did not answer in time"
        if condition == "remote-server-timeout" and "timeout" in lowered:
            return "timeout", text
        return "not_found", text or "The remote server could not be reached"
    return "other", f"{condition}: {text}" if text else condition


def probe(jid: str, password: str, server: tuple[str, int], remote_domain: str,
          ca_file: str | None, timeout: float = 10) -> dict:
    """Log in to the XMPP service as `jid` and ping `remote_domain` (XEP-0199).

    Returns {"ok": True, "ms": float} or {"ok": False, "reason": kind, "message": text},
    kind one of: policy, remote_policy, certificate, not_found, timeout, login, service,
    other. Runs slixmpp in a thread of its own; returns within about timeout + 3 seconds.
    """
    result: dict = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        try:
            asyncio.set_event_loop(loop)
            result.update(loop.run_until_complete(asyncio.wait_for(
                _probe(jid, password, server, remote_domain, ca_file, timeout), timeout + 2)))
        except TimeoutError:
            result.update(ok=False, reason="timeout", message="No answer in time")
        except Exception as exc:  # noqa: BLE001 - a Test action reports, never raises
            log.exception("XMPP probe failed")
            result.update(ok=False, reason="other", message=str(exc) or type(exc).__name__)
        finally:
            _close_loop(loop)

    thread = threading.Thread(target=run, name="xmpp-probe", daemon=True)
    thread.start()
    thread.join(timeout + 3)
    if thread.is_alive() or not result:
        return {"ok": False, "reason": "timeout", "message": "No answer in time"}
    return result


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left on `loop` and close it."""
    try:
        tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.wait(tasks, timeout=2))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


async def _probe(jid: str, password: str, server: tuple[str, int], remote_domain: str,
                 ca_file: str | None, timeout: float) -> dict:
    from slixmpp import JID, ClientXMPP
    from slixmpp.exceptions import IqError, IqTimeout

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    client = ClientXMPP(jid, password, loop=loop)
    client.register_plugin("xep_0199")
    client.enable_direct_tls = False
    client.enable_plaintext = False
    client.reconnect_max_attempts = 0
    if ca_file:
        client.ca_certs = Path(ca_file)
    login: asyncio.Future = loop.create_future()

    def done(value) -> None:
        if not login.done():
            login.set_result(value)

    client.add_event_handler("session_start", lambda _e: done(None))
    client.add_event_handler("failed_all_auth", lambda _e: done(
        ("login", f"The service account {jid} could not log in (wrong password?)")))
    client.add_event_handler("connection_failed", lambda e: done(
        ("service", f"Cannot connect to the XMPP service at {server[0]}:{server[1]}: {e}")))
    client.add_event_handler("ssl_invalid_chain", lambda e: done(
        ("service", f"The XMPP service's certificate is not trusted: {e}")))
    client.add_event_handler("disconnected", lambda e: done(
        ("service", f"The XMPP service's certificate is not trusted: {e}")
        if "CERTIFICATE_VERIFY_FAILED" in str(e) else
        ("service", f"The XMPP service closed the connection{f': {e}' if e else ''}")))
    try:
        client.connect(server[0], server[1])
        try:
            failure = await asyncio.wait_for(login, max(deadline - loop.time(), 0.1))
        except TimeoutError:
            return {"ok": False, "reason": "login",
                    "message": f"The service account {jid} could not log in in time"}
        if failure:
            return {"ok": False, "reason": failure[0], "message": failure[1]}
        start = time.monotonic()
        try:
            await client.plugin["xep_0199"].ping(
                JID(remote_domain), timeout=max(deadline - loop.time(), 0.1))
        except IqTimeout:
            return {"ok": False, "reason": "timeout",
                    "message": f"{remote_domain} did not answer within {timeout:g} s"}
        except IqError as exc:
            error = exc.iq["error"]
            condition, text = error["condition"], error["text"]
            by = error.xml.get("by")
            if condition not in _LOCAL_CONDITIONS and (not by or by == remote_domain):
                # The remote server answered (e.g. service-unavailable): it is reachable.
                return {"ok": True, "ms": round((time.monotonic() - start) * 1000, 1),
                        "note": f"{remote_domain} answered with {condition}"}
            kind, message = classify_error(condition, text, by_us=by != remote_domain)
            return {"ok": False, "reason": kind, "message": message, "condition": condition}
        return {"ok": True, "ms": round((time.monotonic() - start) * 1000, 1)}
    finally:
        client.cancel_connection_attempt()
        try:
            await asyncio.wait_for(client.disconnect(wait=1, ignore_send_queue=True), 2)
        except (TimeoutError, asyncio.CancelledError):
            pass
        client.abort()
