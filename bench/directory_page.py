"""Corporate Directory server time at 100,000 and 1,000,000 contacts, on SQLite and on
PostgreSQL: pages, sorting, paging and search through the search index, against the plain
ILIKE scan the search used before (measured in the same run: machines are noisy, quote
ratios).

Run: .venv/bin/python bench/directory_page.py [--store sqlite|postgresql|both]
         [--sizes 100000,1000000] [--repeat 15] [--scan-repeat 5]

For each store and size: a new database migrated to head (SQLite: a file in a temporary
directory; PostgreSQL: a throwaway cluster as the tests start, tests/postgres_server.py,
with shared_buffers and work_mem raised to what a server would have), an enterprise with
the given number of contacts and one with 100, written with bulk INSERT ... SELECT through
the real schema (the search index's triggers or GIN index included), then ANALYZE
(PostgreSQL: VACUUM (ANALYZE), the state autovacuum leaves a bulk-loaded table in). Each
view is requested through the app (the Flask test client, logged in: server time, no
network) `--repeat` times after 2 warm-ups; the median is printed for the 100-contact and
the big enterprise, and for searches also with the index unused (SQLite: the ILIKE scan;
PostgreSQL: the same ILIKE with bitmap scans off, the only way its planner uses the GIN
index), with the ratio scan / index.
"""

import argparse
import re
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import or_, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance import create_app, migrate  # noqa: E402
from appliance import search as searching  # noqa: E402
from appliance.auth import create_admin  # noqa: E402
from appliance.core.directory import CONTACTS  # noqa: E402
from appliance.db import analyze, db  # noqa: E402
from appliance.models import Enterprise  # noqa: E402
from appliance.validation import MAX_INT  # noqa: E402

# (label, URL, is a search). Names: John<i % 997> Smith<i>, john.smith<i>@example.com,
# +1 555 <i, 7 digits>: 'smith1' matches 11% of the rows (an extreme), 'smith12' 1.1% (a
# common surname), 'smith12345' 1 to 11 of them.
VIEWS = [
    ("page 1, by last name", "/directory", False),
    ("page 1, HTMX partial", "/directory?sort=last_name", False),
    ("last page (deep offset)", "/directory?page=999999", False),
    ("sort by e-mail desc", "/directory?sort=email&dir=desc", False),
    ("search 'smith12345' (few)", "/directory?q=smith12345", True),
    ("search 'nobody' (none)", "/directory?q=nobody", True),
    ("search 'smith12' (1.1%)", "/directory?q=smith12", True),
    ("search 'smith12', last page", "/directory?q=smith12&page=999999", True),
    ("search 'SMITH12' by e-mail", "/directory?q=SMITH12&sort=email&dir=desc", True),
    ("search 'smith1' (11%)", "/directory?q=smith1", True),
    ("search 'smith1', last page", "/directory?q=smith1&page=999999", True),
    ("search 'SMITH1' by e-mail", "/directory?q=SMITH1&sort=email&dir=desc", True),
    ("search '99' (2 chars)", "/directory?q=99", True),
    ("search '7' (1 char)", "/directory?q=7", True),
]
CHUNK = 100_000
SQLITE_ROWS = """
INSERT INTO contact (enterprise_id, source, source_label, external_id, first_name, last_name,
                     email, phone, im_address, federated, department, updated_at)
WITH RECURSIVE s(i) AS (SELECT :lo UNION ALL SELECT i + 1 FROM s WHERE i + 1 < :hi)
SELECT :ent, 'bench:1', 'Bench', 'id' || i, 'John' || (i % 997), 'Smith' || i,
       'john.smith' || i || '@example.com', '+1 555 ' || printf('%07d', i), '', 0, '',
       '2026-12-03 00:00:00' FROM s
"""
POSTGRESQL_ROWS = """
INSERT INTO contact (enterprise_id, source, source_label, external_id, first_name, last_name,
                     email, phone, im_address, federated, department, updated_at)
SELECT :ent, 'bench:1', 'Bench', 'id' || i, 'John' || (i % 997), 'Smith' || i,
       'john.smith' || i || '@example.com', '+1 555 ' || lpad(CAST(i AS text), 7, '0'), '',
       false, '', '2026-12-03 00:00:00' FROM generate_series(:lo, :hi - 1) AS i
"""
PG_SETTINGS = {"shared_buffers": "512MB", "work_mem": "16MB", "effective_cache_size": "2GB"}


def load(ent_id: int, n: int) -> None:
    sql = SQLITE_ROWS if db.engine.dialect.name == "sqlite" else POSTGRESQL_ROWS
    for lo in range(0, n, CHUNK):
        with db.engine.begin() as conn:
            conn.execute(text(sql), {"ent": ent_id, "lo": lo, "hi": min(n, lo + CHUNK)})


def median_ms(client, url, repeat, htmx=False):
    headers = {"HX-Request": "true", "HX-Target": "people-table"} if htmx else {}
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        resp = client.get(url, headers=headers)
        times.append((time.perf_counter() - t) * 1000)
        assert resp.status_code == 200, resp.status_code
    return statistics.median(times)


def today(columns, q, scope=None):
    """The search before the indexes: ILIKE '%q%' over the columns."""
    return or_(*(c.ilike(searching.pattern(q), escape="\\") for c in columns))


@contextmanager
def index_unused(app, dbname):
    """Search as it was: today()'s ILIKE, its page read as any other, and on PostgreSQL no
    bitmap scans (new sessions)."""
    original = searching.condition, searching.page_ids
    searching.condition, searching.page_ids = today, lambda *_: None
    pg = db.engine.dialect.name == "postgresql"
    try:
        if pg:
            with db.engine.begin() as conn:
                conn.execute(text(f"ALTER DATABASE {dbname} SET enable_bitmapscan = off"))
            db.engine.dispose()
        yield
    finally:
        searching.condition, searching.page_ids = original
        if pg:
            with db.engine.begin() as conn:
                conn.execute(text(f"ALTER DATABASE {dbname} RESET enable_bitmapscan"))
            db.engine.dispose()


def login(app):
    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    client.post("/login", data={"username": "bench", "password": "bench-password-1",
                                "csrf_token": token})
    return client


def measure(store: str, n: int, args, cluster=None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = {"DATA_DIR": tmp, "SECRET_KEY": "bench", "LOGIN_FAIL_DELAY": 0}
        dbname = None
        if cluster is not None:
            dbname = cluster.new_name("bench")
            config["DATABASE_URL"] = cluster.create_database(dbname)
        app = create_app(config)
        migrate.upgrade(app)
        with app.app_context():
            create_admin("bench", "bench-password-1")
            big, small = Enterprise(eid="big", name="Big"), Enterprise(eid="small", name="Small")
            db.session.add_all([big, small])
            db.session.commit()
            ids = {"big": big.id, "small": small.id}
            t = time.perf_counter()
            load(ids["big"], n)
            loaded = time.perf_counter() - t
            load(ids["small"], 100)
            t = time.perf_counter()
            if cluster is None:
                analyze("contact")
            else:  # and the visibility map autovacuum sets soon after a bulk load
                with db.engine.connect() as conn:
                    conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                        text("VACUUM (ANALYZE) contact"))
            analyzed = time.perf_counter() - t
            # Every match counted: a page past the first COUNTED (the pages say "1,000+").
            totals = {url: CONTACTS.page_of(db.session.get(Enterprise, ids["big"]), {
                "q": url.split("q=")[1].split("&")[0], "page": str(MAX_INT)}, 50).total
                for _, url, is_search in VIEWS if is_search}
        client = login(app)
        print(f"\n== {store}, {n:,} contacts: loaded in {loaded:.1f} s "
              f"({n / loaded:,.0f} rows/s, search index included), "
              f"{'ANALYZE' if cluster is None else 'VACUUM (ANALYZE)'} {analyzed:.1f} s")
        print(f"{'view':<31}{'matches':>8}{'100 contacts':>14}{n:>11,} c."
              f"{'plain scan':>12}{'scan/index':>12}")
        for name, url, is_search in VIEWS:
            htmx = "HTMX" in name
            result = {}
            for eid in ("small", "big"):
                with client.session_transaction() as s:
                    s["enterprise_id"] = ids[eid]
                median_ms(client, url, 2, htmx)  # warm up
                result[eid] = median_ms(client, url, args.repeat, htmx)
            line = (f"{name:<31}{totals.get(url, ''):>8}{result['small']:>11.1f} ms"
                    f"{result['big']:>10.1f} ms")
            if is_search:
                with app.app_context(), index_unused(app, dbname):
                    median_ms(client, url, 1, htmx)
                    scan = median_ms(client, url, args.scan_repeat, htmx)
                line += f"{scan:>9.1f} ms{scan / result['big']:>11.1f}x"
            print(line, flush=True)
        app.extensions["appliance"].jobs.shutdown()
        if cluster is not None:
            with app.app_context():
                db.engine.dispose()
            cluster.drop_database(dbname)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--sizes", default="100000,1000000",
                    help="contacts of the big enterprise, comma-separated")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--scan-repeat", type=int, default=5,
                    help="requests per search with the index unused (slow at 1,000,000)")
    args = ap.parse_args()
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",")]
    if args.store in ("sqlite", "both"):
        for n in sizes:
            measure("SQLite", n, args)
    if args.store in ("postgresql", "both"):
        from tests.postgres_server import Cluster

        cluster = Cluster().start()
        try:
            for k, v in PG_SETTINGS.items():
                cluster.sql(f"ALTER SYSTEM SET {k} = '{v}'")
            cluster.restart()
            for n in sizes:
                measure(f"PostgreSQL ({', '.join(f'{k} {v}' for k, v in PG_SETTINGS.items())})",
                        n, args, cluster)
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
