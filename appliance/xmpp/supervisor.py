"""The embedded XMPP service as a child of `appliance serve`: started with the appliance,
started again when it dies (waiting longer after each quick death, up to a minute), stopped
when the appliance stops. Its state is shown by /healthz and the Federation tab."""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

from appliance.db import utcnow

from .prosody import XmppService

log = logging.getLogger(__name__)

#: Waits before each restart; a run that lasted STABLE seconds starts the list again.
BACKOFF = (1, 2, 4, 8, 15, 30, 60)
STABLE = 60.0


def _die_with_parent() -> None:
    """In the child: SIGTERM when the appliance dies, even by SIGKILL (Linux prctl)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class State:
    state: str = "stopped"  # starting, running, restarting, stopped
    pid: int | None = None
    started_at: object = None
    restarts: int = 0
    last_exit: str = ""
    next_try_in: float | None = None
    log: list[str] = field(default_factory=list)  # the last lines Prosody printed

    def as_dict(self) -> dict:
        return {"state": self.state, "pid": self.pid, "restarts": self.restarts,
                "started_at": self.started_at.isoformat() + "Z" if self.started_at else None,
                "last_exit": self.last_exit or None, "next_try_in": self.next_try_in}


class Supervisor:
    """Keep one Prosody running on `service`'s config file."""

    def __init__(self, service: XmppService):
        self.service = service
        self.status = State()
        self._proc: subprocess.Popen | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="xmpp-supervisor", daemon=True)
        self._thread.start()

    def _spawn(self) -> subprocess.Popen:
        self.status.state = "starting"
        proc = subprocess.Popen([self.service.prosody, "-F", "--config",
                                 str(self.service.config_path)], text=True,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        threading.Thread(target=self._drain, args=(proc,), daemon=True).start()
        self.status.pid, self.status.started_at = proc.pid, utcnow()
        self.status.state, self.status.next_try_in = "running", None
        log.info("XMPP service started (pid %s)", proc.pid)
        return proc

    def _drain(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.status.log = [*self.status.log[-19:], line.rstrip()]

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._proc = self._spawn()
            except OSError as exc:
                code, began = f"could not start: {exc}", time.monotonic()
            else:
                began = time.monotonic()
                code = self._proc.wait()
                if self._stop.is_set():
                    break
                code = f"exited with status {code}"
            ran = time.monotonic() - began
            failures = 0 if ran >= STABLE else failures + 1
            wait = BACKOFF[min(failures, len(BACKOFF)) - 1] if failures else BACKOFF[0]
            tail = "; ".join(self.status.log[-3:])
            self.status.last_exit = f"{code} after {ran:.0f} s" + (f" ({tail})" if tail else "")
            self.status.state, self.status.pid = "restarting", None
            self.status.restarts += 1
            self.status.next_try_in = wait
            log.warning("XMPP service %s; starting it again in %s s", self.status.last_exit,
                        wait)
            if self._stop.wait(wait):
                break
        self.status.state, self.status.pid, self.status.next_try_in = "stopped", None, None

    def stop(self, timeout: float = 10) -> None:
        """Stop Prosody (SIGTERM, then SIGKILL after `timeout`) and the watching thread."""
        self._stop.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if self._thread is not None:
            self._thread.join(timeout)
        self.status.state, self.status.pid = "stopped", None
