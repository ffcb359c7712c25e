"""A throwaway PostgreSQL cluster for the tests, and the switch that runs the suite on one.

`APPLIANCE_TEST_DATABASE=postgresql` runs the suite on PostgreSQL: each test process (each
xdist worker) starts one cluster of its own the first time a test needs a database, with
`initdb` and `pg_ctl` from Debian's `postgresql` package into a temporary directory,
listening on 127.0.0.1 on a free port (its socket in that directory, never the system's),
and stops it when the process ends. Every app the tests build gets a database of its own.

A test may also start a `Cluster` of its own (it is ready in about a second), whatever
the switch says: that is how the tests that restart the server run in every suite.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SWITCH = "APPLIANCE_TEST_DATABASE"
USER = "appliance"
# Memory, where there is a tmpfs: creating a database writes some 9 MB of files.
_TMP = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


def store() -> str:
    """The store the suite runs on: "sqlite" (the default) or "postgresql"."""
    raw = os.environ.get(SWITCH, "").strip().lower()
    if raw in ("", "sqlite"):
        return "sqlite"
    if raw in ("postgresql", "postgres", "pg"):
        return "postgresql"
    raise RuntimeError(f"{SWITCH} must be sqlite or postgresql, not {raw!r}")


def enabled() -> bool:
    """Whether the suite runs on PostgreSQL."""
    return store() == "postgresql"


def bindir() -> Path:
    """Where initdb and pg_ctl are: Debian keeps them in /usr/lib/postgresql/<version>/bin,
    off PATH; the newest version there, else PATH's."""
    def version(p: Path) -> tuple:
        return tuple(int(x) for x in re.findall(r"\d+", p.parent.name)) or (0,)
    found = sorted((p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")),
                   key=version, reverse=True)
    if found:
        return found[0]
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise RuntimeError("PostgreSQL's initdb is missing: run `make system-deps` "
                       "(Debian's postgresql package)")


def _as_owner() -> list[str]:
    """initdb and postgres refuse to run as root: there they run as the postgres user."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError("running as root needs the postgres user (Debian's postgresql "
                           "package creates it)") from None
    return ["runuser", "-u", "postgres", "--"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """One PostgreSQL server in a temporary directory, user `appliance`, trust auth."""

    def __init__(self):
        self.bin = bindir()
        self.root: Path | None = None
        self.port = 0
        self.pid: int | None = None
        self._count = 0

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([*_as_owner(), *args], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)
        if check and done.returncode:
            raise subprocess.CalledProcessError(done.returncode, done.args, done.stdout,
                                                done.stderr)
        return done

    def start(self) -> Cluster:
        """initdb and start; return self."""
        self.root = Path(tempfile.mkdtemp(prefix="appliance-pg-", dir=_TMP))
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        # --no-sync, fsync off: a test cluster never survives a crash of the machine.
        try:
            self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U",
                      USER, "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        except subprocess.CalledProcessError as exc:
            shutil.rmtree(self.root, ignore_errors=True)
            raise RuntimeError(f"initdb failed: {exc.stderr or exc.stdout}") from None
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                       "max_connections = 300\nshared_buffers = 32MB\n")
        for attempt in range(5):  # a free port may be taken before the server binds it
            self.port = _free_port()
            try:
                self.start_server()
                break
            except subprocess.CalledProcessError:
                if attempt == 4:
                    raise
        atexit.register(self.stop)
        return self

    def start_server(self) -> None:
        """Start the server (again) on its port; wait until it takes connections."""
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                      str(self.root / "server.log"), "-w", "-t", "30", "-o",
                      f"-k {self.root} -h 127.0.0.1 -p {self.port}", "start")
        except subprocess.CalledProcessError as exc:
            raise subprocess.CalledProcessError(
                exc.returncode, exc.cmd, exc.stdout,
                f"{exc.stderr}\n{self.log()[-2000:]}") from None
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])

    def stop_server(self) -> None:
        """Stop the server (fast: sessions are ended), keeping its data."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                  "stop", check=False)
        self._kill()

    def restart(self) -> None:
        """Stop and start the server: every connection a client held is gone."""
        self.stop_server()
        self.start_server()

    def _kill(self) -> None:
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        if self.root is None:
            return
        self.stop_server()
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def log(self) -> str:
        try:
            return (self.root / "server.log").read_text(errors="replace")
        except OSError:
            return ""

    # Databases

    def url(self, name: str) -> str:
        """The SQLAlchemy URL of database `name` (no password: trust)."""
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{name}"

    def sql(self, statement: str, dbname: str = "postgres") -> list[tuple]:
        """Run one statement outside a transaction (CREATE/DROP DATABASE); its rows."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=USER, dbname=dbname,
                             autocommit=True) as conn:
            cur = conn.execute(statement)
            return cur.fetchall() if cur.description else []

    def new_name(self, prefix: str = "t") -> str:
        self._count += 1
        return f"{prefix}{os.getpid()}_{self._count}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create database `name` (a copy of `template`, if given); return its URL."""
        # On tmpfs without fsync, copying the files (0.02 s for a migrated template) beats
        # 15's default of writing every page to the WAL (0.035 s); on disk both took 0.3 s.
        extra = f" TEMPLATE {template} STRATEGY FILE_COPY" if template else ""
        self.sql(f"CREATE DATABASE {name}{extra}")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database `name`, ending any session still on it."""
        self.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


_shared: Cluster | None = None
# The database of each data directory the tests built an app on or served from.
_databases: dict[Path, str] = {}


def shared() -> Cluster:
    """This test process's cluster, started on first use (stopped when the process ends)."""
    global _shared
    if _shared is None:
        _shared = Cluster().start()
    return _shared


def database_for(data_dir) -> tuple[str, bool]:
    """(URL, new) of the database that belongs to `data_dir`, as the SQLite file in it
    would: made empty on first use (`new`), the same one afterwards."""
    key = Path(data_dir).resolve()
    if key in _databases:
        return shared().url(_databases[key]), False
    cluster = shared()
    name = cluster.new_name()
    cluster.create_database(name)
    _databases[key] = name
    return cluster.url(name), True


def adopt(data_dir, name: str) -> None:
    """Say database `name` (made by the caller) belongs to `data_dir`."""
    _databases[Path(data_dir).resolve()] = name


def name_for(data_dir) -> str | None:
    return _databases.get(Path(data_dir).resolve())


def forget(data_dir) -> None:
    """Drop the database of `data_dir`, if it has one."""
    name = _databases.pop(Path(data_dir).resolve(), None)
    if name is not None and _shared is not None:
        _shared.drop_database(name)


def config_for(data_dir) -> dict:
    """create_app's config for the suite's store on `data_dir`: nothing on SQLite (the
    file in the data dir), DATABASE_URL on PostgreSQL."""
    if not enabled():
        return {}
    return {"DATABASE_URL": database_for(data_dir)[0]}


def query(data_dir, sql: str) -> list[tuple]:
    """The rows of `sql` on the suite's store of `data_dir` (its SQLite file, or its
    PostgreSQL database), on a connection of its own."""
    from sqlalchemy import create_engine, text

    url = database_for(data_dir)[0] if enabled() else \
        f"sqlite:///{Path(data_dir).resolve()}/appliance.db"
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def env_for(data_dir) -> dict:
    """The environment an appliance process on `data_dir` needs for the suite's store:
    nothing on SQLite (the file in the data dir), APPLIANCE_DATABASE_URL on PostgreSQL."""
    if not enabled():
        return {}
    return {"APPLIANCE_DATABASE_URL": database_for(data_dir)[0]}


def stop_shared() -> None:
    global _shared
    if _shared is not None:
        _shared.stop()
        _shared = None
        _databases.clear()


def planner_rows(table: str) -> int | None:
    """How many rows the planner's statistics say `table` has (None: it has none), on the
    store of the app whose context this runs in: an ANALYZE sets it to the count of then
    (SQLite: the first number of its sqlite_stat1 rows; PostgreSQL: pg_class.reltuples)."""
    from sqlalchemy import text

    from appliance.db import db

    with db.engine.connect() as conn:  # a transaction of its own: the statistics of now
        if db.engine.url.get_backend_name() == "postgresql":
            rows = conn.execute(text("SELECT reltuples FROM pg_class WHERE relname = :t"),
                                {"t": table}).scalar()
            return None if rows is None or rows < 0 else int(rows)
        if not conn.execute(text("SELECT count(*) FROM sqlite_master "
                                 "WHERE name = 'sqlite_stat1'")).scalar():
            return None
        stat = conn.execute(text("SELECT stat FROM sqlite_stat1 WHERE tbl = :t LIMIT 1"),
                            {"t": table}).scalar()
        return int(stat.split()[0]) if stat else None
