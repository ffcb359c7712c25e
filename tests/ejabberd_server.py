"""Throwaway ejabberd instances for tests: a federated server nobody here wrote.

`ejabberdctl --config-dir C --spool S --logs L foreground` in a temp dir of its own, on
127.0.0.X, in a private mount namespace whose /etc/hosts maps the remote domains it is to
reach (ejabberd resolves them with getaddrinfo only). As root, ejabberdctl switches to the
`ejabberd` user, so the temp dir is made outside pytest's (root-only) tree and given to it.
"""

from __future__ import annotations

import datetime
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import trustme

from tests.prosody_server import accepts, free_port
from tests.servers import ServerProcess

USER = "ejabberd"


def ejabberd_available() -> bool:
    """Whether ejabberd (ejabberdctl and its system user) is installed."""
    if not shutil.which("ejabberdctl"):
        return False
    try:
        pwd.getpwnam(USER)
    except KeyError:
        return False
    return True


def _live_processes() -> dict[int, tuple[int, str]]:
    """Every live (not zombie) process: PID -> (parent PID, command name)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
        if state != "Z":
            found[int(entry.name)] = (int(ppid), name)
    return found


def _tree(root: int) -> dict[int, str]:
    """`root` and its live descendants: PID -> command name."""
    procs = _live_processes()
    tree = {root: procs[root][1]} if root in procs else {}
    grew = True
    while grew:
        grew = False
        for pid, (ppid, name) in procs.items():
            if ppid in tree and pid not in tree:
                tree[pid] = name
                grew = True
    return tree


def _wait_gone(pids, timeout: float) -> bool:
    """Wait until none of `pids` is a live process; whether none is."""
    deadline = time.monotonic() + timeout
    while set(pids) & set(_live_processes()):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


class Ejabberd(ServerProcess):
    """ejabberd 23.01 serving `domain` on `host`, c2s and s2s on free ports.

    `hosts` maps remote domains to the IP that /etc/hosts gives them inside ejabberd's
    namespace; `s2s_port` is the port it dials for every remote domain
    (`outgoing_s2s_port`: no SRV records here). Certificates come from `ca`, valid for 30
    days (trustme's default year-3000 expiry crashes ejabberd's certificate manager).
    Ready once c2s and s2s accept connections and the node answers `ejabberdctl status`.
    """

    timeout = 30.0

    def __init__(self, ca: trustme.CA, domain: str, host: str = "127.0.0.3", *,
                 hosts: dict[str, str] | None = None, s2s_port: int = 5269):
        if os.geteuid() != 0:
            raise RuntimeError("the ejabberd harness runs as root (ejabberdctl switches "
                               "user, and /etc/hosts is bind-mounted in a namespace)")
        self.domain, self.host, self.ca = domain, host, ca
        self.c2s_port, self.s2s_port = free_port(host), free_port(host)
        self.dist_port = free_port(host)
        self.dir = Path(tempfile.mkdtemp(prefix=f"ejabberd-{domain}-"))
        self.config_dir, self.spool, self.logs = (self.dir / d for d in ("etc", "spool", "log"))
        for d in (self.config_dir, self.spool, self.logs):
            d.mkdir()
        now = datetime.datetime.now(datetime.UTC)
        cert = ca.issue_cert(domain, not_before=now - datetime.timedelta(days=1),
                             not_after=now + datetime.timedelta(days=30))
        cert.private_key_and_cert_chain_pem.write_to_path(str(self.config_dir / "server.pem"))
        ca.cert_pem.write_to_path(self.ca_file)
        lines = ["127.0.0.1 localhost", *(f"{ip} {name}" for name, ip in (hosts or {}).items())]
        (self.config_dir / "hosts").write_text("\n".join(lines) + "\n")
        self._write_config(s2s_port)
        user = pwd.getpwnam(USER)
        for path in (self.dir, *self.dir.rglob("*")):
            os.chown(path, user.pw_uid, user.pw_gid)
        self.ctl = ["ejabberdctl", "--config-dir", str(self.config_dir),
                    "--spool", str(self.spool), "--logs", str(self.logs)]
        script = (f"mount --bind {self.config_dir / 'hosts'} /etc/hosts && "
                  f"exec {' '.join(self.ctl)} foreground")
        super().__init__(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                         env={**os.environ}, cwd=str(self.dir))

    def _write_config(self, s2s_port: int) -> None:
        ip = "{" + ",".join(self.host.split(".")) + "}"
        cookie = secrets.token_hex(16)
        # ERL_OPTIONS rather than INET_DIST_INTERFACE: that one costs an extra Erlang VM
        # at every ejabberdctl call. A cookie of its own: nothing read from ~ejabberd.
        (self.config_dir / "ejabberdctl.cfg").write_text(
            f'ERLANG_NODE=ejabberd-{self.dist_port}@{self.host}\n'
            f'ERL_DIST_PORT={self.dist_port}\n'
            f'ERL_OPTIONS="-setcookie {cookie} -kernel inet_dist_use_interface {ip}"\n'
            'EJABBERD_BYPASS_WARNINGS=true\n')
        d = self.config_dir
        (d / "ejabberd.yml").write_text(f"""\
hosts:
  - "{self.domain}"
loglevel: info
log_rotate_count: 0
certfiles:
  - "{d / 'server.pem'}"
ca_file: "{self.ca_file}"
s2s_use_starttls: required
s2s_dns_timeout: 2
s2s_dns_retries: 1
outgoing_s2s_port: {s2s_port}
outgoing_s2s_families: [ipv4]
auth_method: internal
listen:
  -
    port: {self.c2s_port}
    ip: "{self.host}"
    module: ejabberd_c2s
    starttls_required: true
  -
    port: {self.s2s_port}
    ip: "{self.host}"
    module: ejabberd_s2s_in
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
  s2s:
    allow: all
modules:
  mod_disco: {{}}
  mod_ping: {{}}
  mod_roster: {{}}
  mod_s2s_dialback: {{}}
""")

    @property
    def c2s(self) -> tuple[str, int]:
        return (self.host, self.c2s_port)

    @property
    def s2s(self) -> tuple[str, int]:
        return (self.host, self.s2s_port)

    @property
    def ca_file(self) -> str:
        return str(self.config_dir / "ca.pem")

    def ctl_run(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """`ejabberdctl <args>` against this node (no check of the exit status)."""
        return subprocess.run([*self.ctl, *args], capture_output=True, text=True,
                              timeout=timeout, cwd=str(self.dir), stdin=subprocess.DEVNULL)

    def start(self):
        """Start ejabberd and wait until its ports accept and the node answers; return self."""
        self.proc = subprocess.Popen(self.args, env=self.env, cwd=self.cwd, text=True,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self._watch()
        deadline = time.monotonic() + self.timeout
        try:
            while not (accepts(*self.c2s) and accepts(*self.s2s)):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("did not listen")
                time.sleep(0.05)
            while self.ctl_run("status", timeout=20).returncode != 0:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("did not answer `ejabberdctl status`")
                time.sleep(0.1)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            log = self.log()
            self.stop()
            raise RuntimeError(f"ejabberd for {self.domain} did not start ({exc}):\n"
                               + "".join(self.output) + log) from None
        return self

    def register(self, user: str, password: str) -> str:
        """Create user@domain; return the JID."""
        done = self.ctl_run("register", user, self.domain, password)
        if done.returncode != 0:
            raise RuntimeError(f"ejabberdctl register failed: {done.stdout}{done.stderr}")
        return f"{user}@{self.domain}"

    def log(self) -> str:
        """ejabberd's log file so far."""
        try:
            return (self.logs / "ejabberd.log").read_text()
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 15) -> None:
        """Stop ejabberd by PID and every process it started; remove the temp dir.

        su puts the Erlang VM in a session of its own (and erl_child_setup its helpers in
        others), so neither a process group nor a session holds them all: take the tree
        under our child, send the VM SIGTERM (it shuts down cleanly), and kill whatever is
        left after `timeout`.
        """
        if self.proc is not None:
            tree = _tree(self.proc.pid)
            beams = [pid for pid, name in tree.items() if name.startswith("beam")]
            for pid in beams or tree:
                _kill(pid, signal.SIGTERM)
            if not _wait_gone(tree, timeout):
                try:
                    self.ctl_run("stop", timeout=10)
                except subprocess.TimeoutExpired:
                    pass
                if not _wait_gone(tree, 5):
                    for pid in set(tree) & set(_live_processes()):
                        _kill(pid, signal.SIGKILL)
                    _wait_gone(tree, 5)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
