"""Fixtures in the Flask tutorial's shape: app, client, runner, admin."""

import atexit
import gc
import os
import re
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from appliance import create_app, migrate
from appliance.auth import create_admin
from appliance.cli import cli
from appliance.db import db
from tests import compiled, postgres_server

compiled.install()

PASSWORD = "correct-horse-battery"
# scrypt, the appliance's default, costs about 0.1 s per hash or check by design.
CHEAP_HASH = "pbkdf2:sha256:1"
# Migrated empty databases, one per set of migration owners: see build().
_TEMPLATES: dict[tuple, Path] = {}
_TEMPLATE_DIR: list[Path] = []  # made by the first template (importing makes nothing)
_PG_TEMPLATES: dict[tuple, str] = {}  # the same on PostgreSQL: template database names


def build(tmp_path, **config):
    """An app on the suite's store, migrated like `appliance db upgrade` does: a SQLite
    file in tmp_path, or (APPLIANCE_TEST_DATABASE=postgresql) a database of tmp_path's own
    on this process's PostgreSQL cluster (tests/postgres_server.py).

    The first app of each set of migration owners (plugins) is migrated for real and its
    database kept as a template; the next ones start from a copy of it, already at head
    (so upgrading it would find nothing to do: that check is left out). A second app on
    the same tmp_path shares the first one's database, as it would the SQLite file.
    """
    cfg = {"DATA_DIR": str(tmp_path), "SECRET_KEY": "test-secret", "LOGIN_FAIL_DELAY": 0,
           "PASSWORD_HASH": CHEAP_HASH, "TESTING": True, **config}
    if postgres_server.enabled() and not cfg.get("DATABASE_URL"):
        return _build_pg(tmp_path, cfg)
    app = create_app(cfg)
    db_file = Path(tmp_path) / "appliance.db"
    key = None
    if not cfg.get("DATABASE_URL") and not db_file.exists():
        key = tuple(migrate.owners(app))
        if key in _TEMPLATES:
            shutil.copyfile(_TEMPLATES[key], db_file)
            return app
    migrate.upgrade(app)
    if key is not None and key not in _TEMPLATES:
        if not _TEMPLATE_DIR:  # removed at the session's end, or the process's (a bench)
            _TEMPLATE_DIR.append(Path(tempfile.mkdtemp(prefix="appliance-db-templates-")))
            atexit.register(shutil.rmtree, _TEMPLATE_DIR[0], ignore_errors=True)
        template = _TEMPLATE_DIR[0] / f"{len(_TEMPLATES)}.db"
        src, dest = sqlite3.connect(db_file), sqlite3.connect(template)
        try:
            src.backup(dest)
        finally:
            src.close()
            dest.close()
        _TEMPLATES[key] = template
    return app


def command(data_dir, *args: str, **env: str):
    """`appliance *args` on `data_dir` in this process (click's CliRunner), with only these
    APPLIANCE_ settings (and the suite's store); the environment, --profile's included, and
    the umask the command sets are as they were afterwards. Starting the console script
    costs about a second of CPU: tests start it where the start itself is what they test."""
    clean = {k: None for k in (*os.environ, "APPLIANCE_PROFILE") if k.startswith("APPLIANCE_")}
    clean.update(APPLIANCE_DATA_DIR=str(data_dir), **postgres_server.env_for(data_dir), **env)
    mask = os.umask(0o022)
    os.umask(mask)
    try:
        return CliRunner().invoke(cli, list(args), env=clean)
    finally:
        os.umask(mask)


def _build_pg(tmp_path, cfg):
    """build() on PostgreSQL: CREATE DATABASE ... TEMPLATE is the copy of the file."""
    cluster = postgres_server.shared()
    name = postgres_server.name_for(tmp_path)
    if name is not None:  # tmp_path has its database: like the SQLite file, it is used
        app = create_app({**cfg, "DATABASE_URL": cluster.url(name)})
        migrate.upgrade(app)
        return app
    name = cluster.new_name()
    app = create_app({**cfg, "DATABASE_URL": cluster.url(name)})
    key = tuple(migrate.owners(app))
    if key in _PG_TEMPLATES:
        cluster.create_database(name, template=_PG_TEMPLATES[key])
        postgres_server.adopt(tmp_path, name)
        return app
    cluster.create_database(name)
    postgres_server.adopt(tmp_path, name)
    migrate.upgrade(app)
    with app.app_context():  # a template has no sessions on it while it is copied
        db.engine.dispose()
    template = cluster.new_name("tpl")
    cluster.create_database(template, template=name)
    _PG_TEMPLATES[key] = template
    return app


# The order xdist hands test files to its workers (`--dist loadfile`, one whole file at a time,
# and --no-loadscope-reorder so it keeps this order): the longest first, so the short ones
# fill in at the end and both workers finish together. xdist's own order (most tests first)
# left the one-test files, the longest of all, for last. A file's length is what it took
# last time (kept in pytest's cache), else its seconds here (measured in a full run on an
# idle 2-core machine, setup included), else 0.1 s a test.
SECONDS = {
    "tests/e2e/test_browser.py": 24,
    "tests/e2e/test_network_elements_browser.py": 18,
    "tests/security/test_api_fuzz_invalid.py": 17,
    "tests/test_client_xmpp.py": 15,
    "tests/test_peer_link.py": 11,
    "tests/test_network_elements.py": 10,
    "tests/test_sync.py": 9,
    "tests/e2e/test_sync_browser.py": 8,
    "tests/e2e/test_peering_browser.py": 8,
    "tests/e2e/test_federation_browser.py": 7,
    "tests/test_element_accounts.py": 7,
    "tests/test_xmpp_service.py": 7,
    "tests/test_peering.py": 6,
    "tests/security/test_api_fuzz_valid.py": 6,
    "tests/test_search.py": 6,
    "tests/test_sync_incremental.py": 6,
    "tests/test_ldapdir.py": 6,
    "tests/test_bulk_import.py": 5,
    "tests/test_client_signin_ldap.py": 5,
    "tests/test_jobs_processes.py": 4,
    "tests/test_client_service.py": 4,
    "tests/test_partner_plugin.py": 4,
    "tests/test_federation_xmpp.py": 4,
    "tests/test_pbx_rules.py": 3,
    "tests/test_client_peered.py": 3,
    "tests/security/test_login_lock.py": 3,
    "tests/security/test_import_dir.py": 2,
    "tests/security/test_database_faults.py": 2,
    "tests/test_job_owners.py": 2,
    "tests/test_hooks.py": 2,
    "tests/test_structure.py": 2,
    "tests/test_xmpp_supervision.py": 2,
    "tests/test_federation.py": 2,
    "tests/test_peering_external.py": 2,
    "tests/test_jobs.py": 2,
    "tests/security/test_startup.py": 2,
    "tests/test_assets.py": 2,
    "tests/test_numbers.py": 2,
    "tests/test_auth.py": 2,
    "tests/test_enterprises.py": 2,
}
_CACHE_KEY = "appliance/file-seconds"
_took: dict[str, float] = {}


def _file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one worker more than the CPUs. The tests wait on the servers, browsers
    and processes they start for about a third of their time; on 2 cores a third worker
    took the suite from about 118 s to about 106 s (and a fourth made it slower)."""
    return (os.cpu_count() or 1) + 1


def pytest_collection_modifyitems(config, items):
    """Order the files longest first (see SECONDS); a file's own tests keep their order."""
    cache = getattr(config, "cache", None)
    took = cache.get(_CACHE_KEY, {}) if cache is not None else {}
    counts: dict[str, int] = {}
    for item in items:
        counts[_file(item.nodeid)] = counts.get(_file(item.nodeid), 0) + 1
    first = {f: i for i, f in enumerate(counts)}

    def seconds(f: str) -> float:
        return took.get(f) or SECONDS.get(f) or 0.1 * counts[f]
    items.sort(key=lambda item: (-seconds(_file(item.nodeid)), first[_file(item.nodeid)]))


def pytest_collection_finish(session):
    """The cyclic garbage collector's full collections took 11 to 15 s of each worker (a
    fifth of the suite's CPU): some 25 of them, each going through every object the process
    holds (half a million). What is loaded by now (the modules of the appliance, its
    libraries and the tests: never garbage) is left out of them, and a full collection
    waits for 100 younger ones instead of 10. About 4 s a worker now, for about 150 MB more
    memory at its peak (some 430 MB)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(700, 10, 100)


def pytest_runtest_logreport(report):
    """Add up what each file takes (on the xdist controller, every worker's reports)."""
    _took[_file(report.nodeid)] = _took.get(_file(report.nodeid), 0.0) + report.duration


def pytest_sessionfinish(session):
    """Remove the template databases (and this process's PostgreSQL cluster, if it
    started one); remember what each file took, for the next run."""
    for folder in _TEMPLATE_DIR:
        shutil.rmtree(folder, ignore_errors=True)
    postgres_server.stop_shared()
    cache = getattr(session.config, "cache", None)
    if cache is not None and _took and not hasattr(session.config, "workerinput"):
        cache.set(_CACHE_KEY, {**cache.get(_CACHE_KEY, {}),
                               **{f: round(s, 1) for f, s in _took.items()}})


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Escape lone surrogates in captured output (logs of jobs fed bytes that are not UTF-8):
    pytest-xdist sends each report to the controller as UTF-8."""
    report = yield
    report.sections = [(title, text.encode("utf-8", "backslashreplace").decode("utf-8"))
                       for title, text in report.sections]
    return report


@pytest.fixture
def make_app(tmp_path):
    """Build apps sharing one data dir (to switch profiles over the same data)."""
    apps = []

    def make(**config):
        app = build(tmp_path, **config)
        apps.append(app)
        return app
    yield make
    for app in apps:
        app.extensions["appliance"].jobs.shutdown()
    if apps and postgres_server.enabled():
        for app in apps:
            with app.app_context():
                db.engine.dispose()
        postgres_server.forget(tmp_path)


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class Browser:
    """A test client that logs in and sends the CSRF token like the pages do."""

    def __init__(self, client):
        self.client = client
        self.token = None

    def csrf(self) -> str:
        if self.token is None:
            html = self.client.get("/").get_data(as_text=True)
            self.token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
        return self.token

    def login(self, username="admin", password=PASSWORD):
        html = self.client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
        resp = self.client.post("/login", data={"username": username, "password": password,
                                                "csrf_token": token})
        self.token = None
        return resp

    def get(self, url, htmx=False, **kw):
        headers = {"HX-Request": "true"} if htmx else {}
        headers.update(kw.pop("headers", {}))
        return self.client.get(url, headers=headers, **kw)

    def post(self, url, data=None, htmx=False, **kw):
        headers = {"X-CSRFToken": self.csrf()}
        if htmx:
            headers["HX-Request"] = "true"
        headers.update(kw.pop("headers", {}))
        return self.client.post(url, data=data or {}, headers=headers, **kw)


@pytest.fixture
def admin(app, client):
    """A logged-in administrator's browser."""
    with app.app_context():
        create_admin("admin", PASSWORD)
    b = Browser(client)
    assert b.login().status_code == 302
    return b


@pytest.fixture
def token(app, admin):
    """An API token of the administrator."""
    from sqlalchemy import select

    from appliance.auth import new_token
    from appliance.db import db
    from appliance.models import User

    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "admin"))
        return new_token(user, "tests")


@pytest.fixture
def api(client, token):
    """Call the JSON API with the bearer token: api("GET", "/api/v1/...", json=...)."""
    def call(method, url, **kw):
        headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
        return client.open(url, method=method, headers=headers, **kw)
    return call


@pytest.fixture(scope="module")
def own_cluster():
    """A PostgreSQL server of the module's own, which its tests may stop or restart."""
    c = postgres_server.Cluster().start()
    yield c
    c.stop()


@pytest.fixture
def ent(api):
    """An enterprise made through the API: its id."""
    return api("POST", "/api/v1/enterprises", json={"name": "Acme", "eid": "acme"}).get_json()["id"]


@pytest.fixture
def ca(app, slapd):
    """The module's slapd's CA certificate, copied into the import directory as an
    administrator would."""
    return slapd.ca_into(app.config["IMPORT_DIR"])
