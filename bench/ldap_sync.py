"""AD/LDAP synchronization of a large directory against a bare ldap3 paged search.

Run: .venv/bin/python bench/ldap_sync.py [--entries N] [--page-size P] [--cycles C]
Loads N inetOrgPerson entries into a real slapd (with syncprov, as the tests start it) and
measures in one run, each as seconds and as a ratio to the first line:
  - bare ldap3 fetch: the plain paged search (RFC 2696) with the sync's attributes, storing
    nothing, connected as the appliance connects (no schema read);
  - bare python-ldap fetch: the same search through python-ldap (when installed);
  - the identifier listing an incremental resync reads (entryUUID only), with each reader;
  - full sync: the synchronizer's job into an empty enterprise (N accounts added);
  - full resync with the python-ldap reader (APPLIANCE_LDAP_READER), nothing changed;
  - unchanged incremental resync;
  - incremental resync after 1% of the entries changed and 0.5% were deleted.
Peak resident memory of each phase (sampled from /proc every 10 ms) and the resident memory
after it. With --cycles C, then C full syncs in a row and the resident memory after each.
"""

import argparse
import gc
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import ldap3
from sqlalchemy import update

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance import create_app, ldapdir, migrate  # noqa: E402
from appliance.db import db  # noqa: E402
from appliance.ldapdir import MAPPING_PRESETS  # noqa: E402
from appliance.models import Enterprise  # noqa: E402
from tests.ldap_server import PEOPLE_DN, READER_DN, READER_PASSWORD, Slapd  # noqa: E402

FILTER = "(objectClass=inetOrgPerson)"
PAGED = "1.2.840.113556.1.4.319"


def rss() -> int:
    """This process's resident memory in MiB."""
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return 0


class PeakRss:
    """Sample this process's resident memory while a phase runs."""

    def __enter__(self):
        self.peak, self._stop = rss(), threading.Event()
        self._t = threading.Thread(target=self._sample, daemon=True)
        self._t.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss())
            time.sleep(0.01)

    def __exit__(self, *_):
        self._stop.set()
        self._t.join()
        gc.collect()
        self.after = rss()


def bare_ldap3(slapd: Slapd, attributes: list[str], page_size: int) -> int:
    """The plain paged search, as ldapdir connects; every entry parsed, nothing kept."""
    server = ldap3.Server("127.0.0.1", port=slapd.ldap_port, get_info=ldap3.NONE)
    conn = ldap3.Connection(server, READER_DN, READER_PASSWORD, auto_bind=True,
                            read_only=True, check_names=False, return_empty_attributes=False)
    n, cookie = 0, None
    while True:
        conn.search(PEOPLE_DN, FILTER, attributes=attributes, paged_size=page_size,
                    paged_cookie=cookie)
        n += sum(1 for item in conn.response if item["type"] == "searchResEntry")
        cookie = conn.result["controls"][PAGED]["value"]["cookie"]
        if not cookie:
            break
    conn.unbind()
    return n


def bare_python_ldap(slapd: Slapd, attributes: list[str], page_size: int) -> int:
    import ldap
    from ldap.controls import SimplePagedResultsControl

    conn = ldap.initialize(f"ldap://127.0.0.1:{slapd.ldap_port}")
    conn.simple_bind_s(READER_DN, READER_PASSWORD)
    ctrl, n = SimplePagedResultsControl(True, size=page_size, cookie=b""), 0
    while True:
        msgid = conn.search_ext(PEOPLE_DN, ldap.SCOPE_SUBTREE, FILTER, attributes,
                                serverctrls=[ctrl])
        _, data, _, ctrls = conn.result3(msgid)
        n += len(data)
        ctrl.cookie = next(c.cookie for c in ctrls
                           if c.controlType == SimplePagedResultsControl.controlType)
        if not ctrl.cookie:
            break
    conn.unbind_s()
    return n


def change(slapd: Slapd, entries: int) -> tuple[int, int]:
    """Modify 1% of the entries and delete 0.5% (spread over the directory)."""
    changed = deleted = 0
    for i in range(0, entries, 100):
        slapd.modify(f"uid=user{i},{PEOPLE_DN}", {"sn": f"Changed{i}"})
        changed += 1
        if i % 200 == 100:
            slapd.delete(f"uid=user{i + 1},{PEOPLE_DN}")
            deleted += 1
    return changed, deleted


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--page-size", type=int, default=1000)
    ap.add_argument("--cycles", type=int, default=0,
                    help="then this many full syncs in a row, with the memory after each")
    args = ap.parse_args()
    mapping = MAPPING_PRESETS["OpenLDAP"]
    attributes = sorted(set(mapping.values()))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        print(f"loading {args.entries:,} entries into slapd...", flush=True)
        with Slapd(Path(tmp) / "slapd", people=args.entries, syncprov=True) as slapd:
            app = create_app({"DATA_DIR": str(Path(tmp) / "app"), "SECRET_KEY": "bench"})
            migrate.upgrade(app)
            from appliance.plugins.sync import service
            from appliance.plugins.sync.models import Synchronizer

            with app.test_request_context():
                ent = Enterprise(eid="acme", name="Acme")
                db.session.add(ent)
                db.session.commit()
                syn = service.save(ent, "ldap", {
                    "name": "Bench", "servers": "127.0.0.1", "port": slapd.ldap_port,
                    "security": "none", "bind_dn": READER_DN, "password": READER_PASSWORD,
                    "base_dn": PEOPLE_DN, "filter": FILTER, "scope": "sub",
                    "page_size": args.page_size, "preset": "OpenLDAP",
                    "max_drop": 20, "days": 0, "hour": 1, "minute": 0, "ampm": "AM"})
                jobs = app.extensions["appliance"].jobs

                def sync(full: bool = False) -> dict:
                    if full:  # forget the marker: the next run reads everything
                        db.session.execute(update(Synchronizer).where(
                            Synchronizer.id == syn.id).values(cursor="{}"))
                        db.session.commit()
                    run, _ = jobs.submit(service.KIND, syn.source)
                    done = jobs.wait(run.id, timeout=3600)
                    assert done.state == "succeeded", done.message
                    db.session.expire_all()
                    return json.loads(db.session.get(Synchronizer, syn.id).last_report)

                def phase(label, fn, expect=None):
                    with PeakRss() as m:
                        t0 = time.perf_counter()
                        out = fn()
                        took = time.perf_counter() - t0
                    if expect is not None:
                        assert expect(out), (label, out)
                    rows.append((label, took, m.peak, m.after))
                    return out

                phase("bare ldap3 fetch", lambda: bare_ldap3(slapd, attributes, args.page_size),
                      lambda n: n == args.entries)
                phase("bare python-ldap fetch",
                      lambda: bare_python_ldap(slapd, attributes, args.page_size),
                      lambda n: n == args.entries)
                pinned = service.ldap_settings(db.session.get(Synchronizer, syn.id))
                for reader in ("ldap3", "python-ldap"):
                    phase(f"identifier listing, {reader}", lambda r=reader: sum(
                        len(page) for page in ldapdir.identifiers(pinned, "entryUUID", r)),
                          lambda n: n == args.entries)
                phase("full sync (all added, ldap3)", sync,
                      lambda r: r["mode"] == "full" and r["added"] == args.entries)
                os.environ["APPLIANCE_LDAP_READER"] = "python-ldap"
                phase("full resync, python-ldap reader", lambda: sync(full=True),
                      lambda r: r["mode"] == "full" and r["read"] == args.entries)
                del os.environ["APPLIANCE_LDAP_READER"]
                phase("unchanged incremental resync", sync,
                      lambda r: r["mode"] == "incremental" and r["read"] == 0)
                t0 = time.perf_counter()
                changed, deleted = change(slapd, args.entries)
                print(f"(changed {changed:,} and deleted {deleted:,} entries in "
                      f"{time.perf_counter() - t0:.1f} s)", flush=True)
                last = phase("resync, 1% changed, 0.5% deleted", sync,
                             lambda r: (r["mode"], r["updated"], r["removed"])
                             == ("incremental", changed, deleted))
                cycles = []
                for _ in range(args.cycles):
                    sync(full=True)
                    gc.collect()
                    cycles.append(rss())
            jobs.shutdown()
    base = rows[0][1]
    print(f"{args.entries:,} entries, page size {args.page_size}, attributes: "
          f"{', '.join(attributes)}")
    print(f"{'':<36}{'seconds':>9}{'vs ldap3':>10}{'peak RSS':>10}{'after':>8}")
    for label, took, peak, after in rows:
        print(f"{label:<36}{took:>9.2f}{took / base:>9.2f}x{peak:>6} MiB{after:>4} MiB")
    print(f"last report: {last}")
    if cycles:
        print(f"RSS after each of {len(cycles)} full syncs (MiB): {cycles}; last/first "
              f"{cycles[-1] / cycles[0]:.2f}")


if __name__ == "__main__":
    main()
