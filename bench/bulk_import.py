"""Bulk User Provisioning: a full CSV import against the bare insert of the same rows.

Run: .venv/bin/python bench/bulk_import.py [--rows N] [--repeat R] [--platform mivb|mivo250]
                                           [--tracemalloc]
Builds an appliance on a fresh SQLite file, generates an N-row valid CSV (the export format)
and measures, in one run:
  - baseline: the same rows, already resolved to ids (and timestamped) and held in memory,
    inserted into the users table with SQLAlchemy Core executemany, 1,000 rows per
    transaction, no validation; on MiVoice Business, also the same with the import's
    flow-through Change rows (prebuilt) inserted alongside, to show the writes' own share;
  - the floor: the same writes (users, and changes on MiVoice Business) through
    appliance.db.execute_many, the driver executemany the import itself writes with;
  - import: bulk.run(apply=True) into the emptied table: reading, validating, classifying,
    storing, queueing flow-through changes (every user, on a MiVoice Business element), and
    writing the report;
  - for reference, the preview of the same file and a re-import (all unchanged).
R times in turn (the machine's noise is large); prints medians, and the ratio of each to the
baseline's median.
Memory is the process's resident set (VmRSS in /proc/self/status) sampled every 20 ms during
the import, above what it was just before. --tracemalloc repeats the import once more under
tracemalloc (much slower) and prints its Python-heap peak.
"""

import argparse
import csv
import gc
import json
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import delete, insert  # noqa: E402

from appliance import create_app, migrate  # noqa: E402
from appliance.db import db, execute_many, utcnow  # noqa: E402
from appliance.plugins.network_elements import bulk, service  # noqa: E402
from appliance.plugins.network_elements.models import (  # noqa: E402
    MIVB,
    MIVO250,
    Change,
    Department,
    Element,
    Licence,
    Location,
    Template,
    User,
)

TABLES = [m.__table__ for m in (Element, Location, Department, Licence, Template, User, Change)]
STAMPS = ("updated_at", "created_at")
LOCATIONS, DEPARTMENTS = ("Ottawa", "Kanata", "Toronto"), ("Sales", "Support", "R&D", "Finance")


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class RssPeak:
    """Sample VmRSS in a thread while the block runs; `peak_mb` is the most above the start."""

    def __enter__(self):
        self.start = self.peak = rss_kb()
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, rss_kb())
            time.sleep(0.02)

    def __exit__(self, *_):
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, rss_kb())
        self.peak_mb = (self.peak - self.start) / 1024


def seed() -> None:
    db.metadata.create_all(db.engine, tables=TABLES, checkfirst=True)
    db.session.add_all([Element(name="MiVB-1", platform=MIVB, address="mivb1.example.com"),
                        Element(name="MiVO-250", platform=MIVO250, address="10.0.0.2"),
                        *(Location(name=n) for n in LOCATIONS),
                        *(Department(name=n) for n in DEPARTMENTS)])
    db.session.flush()
    db.session.add_all([
        Template(name="Standard", services=json.dumps(["MiCollab Client", "NuPoint Voice Mail"]),
                 location_id=1, department_id=1),
        Template(name="Agent", kind="role", services=json.dumps(["MiCollab Client"])),
        *(Licence(type=t, available=10_000_000) for t in service.SERVICES)])
    db.session.commit()


def generate(path: Path, n: int, element: str) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(bulk.COLUMNS)
        for i in range(n):
            w.writerow((f"user{i:06d}", f"First{i}", f"Lästname{i}", f"user{i}@example.com",
                        str(200000 + i), element, LOCATIONS[i % 3], DEPARTMENTS[i % 4],
                        "Agent" if i % 5 else "Standard",
                        "MiCollab Client;Teleworker" if i % 7 else ""))


def resolved_rows(path: Path) -> list[dict]:
    """The file's users as the baseline inserts them: names already turned into ids."""
    tables = service.SiteTables()
    ids = {kind: {n: r.id for n, r in rows.items()} for kind, rows in tables.named.items()}
    elements = {n: r.id for n, r in tables.elements.items()}
    rows, now = [], utcnow()  # given, so no per-row Python default runs either
    with open(path, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            services = r["services"].split(";") if r["services"] else \
                json.loads(tables.named["template"][r["template"].lower()].services)
            rows.append({"login": r["login"], "first_name": r["first_name"],
                         "last_name": r["last_name"], "email": r["email"],
                         "number": r["number"], "element_id": elements[r["element"].lower()],
                         "location_id": ids["location"][r["location"].lower()],
                         "department_id": ids["department"][r["department"].lower()],
                         "template_id": ids["template"][r["template"].lower()],
                         "services": json.dumps(services), "origin": "bulk",
                         "updated_at": now})
    return rows


def change_rows(rows: list[dict]) -> list[dict]:
    """The flow-through changes of the users, as the import queues them."""
    tables = service.SiteTables()
    by_id = tables.by_id
    out = []
    for i, r in enumerate(rows, 1):
        tpl = by_id["template"][r["template_id"]]
        payload = {"id": i, **{k: r[k] for k in ("login", "first_name", "last_name", "email",
                                                 "number")},
                   "element": by_id["element"][r["element_id"]].name,
                   "location": by_id["location"][r["location_id"]].name,
                   "department": by_id["department"][r["department_id"]].name,
                   "template": tpl.name, "template_kind": tpl.kind,
                   "services": json.loads(r["services"]), "origin": "bulk"}
        out.append({"element_id": r["element_id"], "action": "add", "login": r["login"],
                    "payload": json.dumps(payload), "state": "pending", "attempts": 0,
                    "error": "", "created_at": r["updated_at"]})
    return out


def empty() -> None:
    db.session.execute(delete(Change))
    db.session.execute(delete(User))
    db.session.commit()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--platform", choices=("mivb", "mivo250"), default="mivb")
    ap.add_argument("--tracemalloc", action="store_true")
    args = ap.parse_args()
    element = "MiVB-1" if args.platform == "mivb" else "MiVO-250"
    flows = element == "MiVB-1"  # its users' changes are queued (Flow Through Provisioning)
    n = args.rows
    times: dict[str, list[float]] = {k: [] for k in ("base", "base+changes", "floor",
                                                      "import", "preview", "again")}
    peaks = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        app = create_app({"DATA_DIR": tmp, "SECRET_KEY": "bench"})
        migrate.upgrade(app)
        with app.app_context():
            seed()
            path = root / "users.csv"
            generate(path, n, element)
            size = path.stat().st_size / 2**20
            for _ in range(args.repeat):
                rows = resolved_rows(path)
                t0 = time.perf_counter()
                for i in range(0, n, bulk.CHUNK):
                    db.session.execute(insert(User.__table__), rows[i:i + bulk.CHUNK])
                    db.session.commit()
                times["base"].append(time.perf_counter() - t0)
                changes = []
                if flows:
                    empty()
                    changes = change_rows(rows)
                    t0 = time.perf_counter()
                    for i in range(0, n, bulk.CHUNK):
                        db.session.execute(insert(User.__table__), rows[i:i + bulk.CHUNK])
                        db.session.execute(insert(Change.__table__), changes[i:i + bulk.CHUNK])
                        db.session.commit()
                    times["base+changes"].append(time.perf_counter() - t0)
                empty()
                t0 = time.perf_counter()
                for i in range(0, n, bulk.CHUNK):
                    conn = db.session.connection()
                    for table, batch in ((User.__table__, rows[i:i + bulk.CHUNK]),
                                         (Change.__table__, changes[i:i + bulk.CHUNK])):
                        if batch:  # the timestamp is shared, as the import's
                            keys = tuple(k for k in batch[0] if k not in STAMPS)
                            execute_many(conn, insert(table), keys,
                                         [tuple(r[k] for k in keys) for r in batch],
                                         {k: batch[0][k] for k in STAMPS if k in batch[0]})
                    db.session.commit()
                times["floor"].append(time.perf_counter() - t0)
                del changes
                del rows  # not to slow what follows (the collector walks live objects)
                gc.collect()
                empty()

                t0 = time.perf_counter()
                preview = bulk.run(path, "csv", apply=False, report_path=root / "preview.csv")
                times["preview"].append(time.perf_counter() - t0)
                with RssPeak() as mem:
                    t0 = time.perf_counter()
                    result = bulk.run(path, "csv", apply=True, report_path=root / "report.csv",
                                      username="bench")
                    times["import"].append(time.perf_counter() - t0)
                peaks.append(mem)
                assert result.counts["add"] == n and result.error is None, result.counts
                assert [r.action for r in preview.rows] == [r.action for r in result.rows]
                t0 = time.perf_counter()
                again = bulk.run(path, "csv", apply=True, report_path=root / "again.csv")
                times["again"].append(time.perf_counter() - t0)
                assert again.counts["unchanged"] == n, again.counts
                empty()

            heap = None
            if args.tracemalloc:
                tracemalloc.start()
                bulk.run(path, "csv", apply=True, report_path=root / "traced.csv")
                heap = tracemalloc.get_traced_memory()[1] / 2**20
                tracemalloc.stop()
        app.extensions["appliance"].jobs.shutdown()

    med = {k: statistics.median(v) for k, v in times.items() if v}
    print(f"{n:,} users, CSV of {size:.1f} MB, element {element} "
          f"({result.queued:,} flow-through changes queued by the import); "
          f"median of {args.repeat} runs, each run measuring each in turn")
    print(f"{'':<44}{'median':>9}{'rows/s':>10}{'vs baseline':>13}   all runs")
    for label, key in (("baseline: Core executemany, no validation", "base"),
                       *([("  the same, and the import's changes too", "base+changes")]
                         if flows else []),
                       ("floor: the same writes through the driver", "floor"),
                       ("bulk.run(apply=True)", "import"),
                       ("bulk.run(apply=False) (preview)", "preview"),
                       ("bulk.run(apply=True) again (all unchanged)", "again")):
        t = med[key]
        runs = " ".join(f"{x:.2f}" for x in times[key])
        print(f"{label:<44}{t:>8.2f}s{n / t:>10,.0f}{t / med['base']:>12.2f}x   {runs}")
    print(f"the import is {med['import'] / med['floor']:.2f}x its own writes alone (the floor)")
    worst = max(peaks, key=lambda m: m.peak_mb)
    print(f"peak memory of the import: VmRSS sampled every 20 ms, at most {worst.peak_mb:.1f} MB "
          f"above the {worst.start / 1024:.0f} MB before it "
          f"(runs: {', '.join(f'{m.peak_mb:.1f}' for m in peaks)} MB)")
    if heap is not None:
        print(f"peak memory of the import: tracemalloc (Python heap), {heap:.1f} MB")


if __name__ == "__main__":
    main()
