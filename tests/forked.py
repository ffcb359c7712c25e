"""`appliance` command lines run as processes forked from a warm interpreter.

Starting the console script costs about a second of CPU, most of it importing, and the
suite starts some thirty appliance processes. multiprocessing's forkserver imports the
appliance and its plugins once per test process; each command line then runs in a process
forked from it: a process of its own (its own PID, environment, working directory and
output, stopped by PID), running the same `cli` the console script runs. Tests of the
console script itself (tests/security/test_startup.py) still exec it.
"""

import io
import multiprocessing
import os
import sys
import threading
import time
from multiprocessing import reduction
from multiprocessing.connection import wait
from subprocess import TimeoutExpired

_CONTEXT: list = []


def _context():
    if not _CONTEXT:
        ctx = multiprocessing.get_context("forkserver")
        from appliance.plugins import BUILTIN_PLUGINS, CORE_PLUGINS

        ctx.set_forkserver_preload(["appliance.cli", *CORE_PLUGINS, *BUILTIN_PLUGINS,
                                    "waitress"])
        _CONTEXT.append(ctx)
    return _CONTEXT[0]


class _Fd:
    """A file descriptor handed to the forked process (multiprocessing sends a duplicate)."""

    def __init__(self, fd: int):
        self.fd = fd

    def __reduce__(self):
        return _detach, (reduction.DupFd(self.fd),)


def _detach(dup) -> int:
    return dup.detach()


def _run(args: list[str], env: dict, cwd: str | None, out: int) -> None:
    """In the forked process: the command's environment, directory and output, then the
    command line (its SystemExit is the process's exit code)."""
    for fd in (1, 2):
        os.dup2(out, fd)
    os.close(out)
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8",
                                  line_buffering=True, write_through=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                  errors="backslashreplace", line_buffering=True,
                                  write_through=True)
    # What the interpreter reads from the environment as it starts, it reads here.
    own = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    sys.path[1:1] = [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                     if p and p not in own]
    os.environ.clear()
    os.environ.update(env)
    time.tzset()
    if cwd:
        os.chdir(cwd)
    from appliance.cli import cli

    cli.main(args=args, prog_name="appliance")


class Forked:
    """The part of subprocess.Popen that ServerProcess uses, for a forked command line:
    pid, stdout (text), poll(), wait(), terminate(), kill()."""

    def __init__(self, args: list[str], env: dict | None, cwd: str | None):
        read, write = os.pipe()
        self._proc = _context().Process(
            target=_run, args=(args, dict(os.environ if env is None else env), cwd,
                               _Fd(write)), daemon=True, name="appliance")
        try:
            self._proc.start()
        finally:
            os.close(write)
        self.pid = self._proc.pid
        self.stdout = open(read, encoding="utf-8", errors="backslashreplace")
        self._lock = threading.Lock()  # the exit code is read once, by one thread

    def poll(self) -> int | None:
        with self._lock:
            return self._proc.exitcode

    def wait(self, timeout: float | None = None) -> int:
        wait([self._proc.sentinel], timeout)
        if (code := self.poll()) is None:
            raise TimeoutExpired("appliance", timeout)
        return code

    def terminate(self) -> None:
        self._proc.terminate()

    def kill(self) -> None:
        self._proc.kill()
