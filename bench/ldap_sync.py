"""AD/LDAP synchronization of a large directory against a bare ldap3 paged search.

Run: .venv/bin/python bench/ldap_sync.py [--entries N] [--page-size P]
Loads N entries into a real slapd (as the tests start it), then measures in one run:
  - baseline: a bare ldap3 paged search of the same entries and attributes, storing nothing;
  - first sync: the synchronizer's job into an empty enterprise (N accounts added);
  - unchanged re-sync: the same job again with nothing changed in the directory.
Prints entries per second, each sync's time as a ratio to the baseline, and the process's
peak resident memory during each phase (sampled from /proc every 10 ms).
"""

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import ldap3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance import create_app, migrate  # noqa: E402
from appliance.db import db  # noqa: E402
from appliance.ldapdir import MAPPING_PRESETS  # noqa: E402
from appliance.models import Enterprise  # noqa: E402
from tests.ldap_server import PEOPLE_DN, READER_DN, READER_PASSWORD, Slapd  # noqa: E402


class PeakRss:
    """Sample this process's resident memory while a phase runs."""

    def __enter__(self):
        self.peak, self._stop = 0, threading.Event()
        self._t = threading.Thread(target=self._sample, daemon=True)
        self._t.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            for line in open("/proc/self/status"):
                if line.startswith("VmRSS:"):
                    self.peak = max(self.peak, int(line.split()[1]) // 1024)
            time.sleep(0.01)

    def __exit__(self, *_):
        self._stop.set()
        self._t.join()


def baseline(slapd: Slapd, attributes: list[str], page_size: int) -> tuple[float, int]:
    server = ldap3.Server("127.0.0.1", port=slapd.ldap_port)
    conn = ldap3.Connection(server, READER_DN, READER_PASSWORD, auto_bind=True)
    t0, n = time.perf_counter(), 0
    for _entry in conn.extend.standard.paged_search(
            PEOPLE_DN, "(objectClass=inetOrgPerson)", attributes=attributes,
            paged_size=page_size, generator=True):
        n += 1
    elapsed = time.perf_counter() - t0
    conn.unbind()
    return elapsed, n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--page-size", type=int, default=1000)
    args = ap.parse_args()
    mapping = MAPPING_PRESETS["OpenLDAP"]
    attributes = sorted(set(mapping.values()))
    with tempfile.TemporaryDirectory() as tmp:
        print(f"loading {args.entries:,} entries into slapd...", flush=True)
        with Slapd(Path(tmp) / "slapd", people=args.entries) as slapd:
            app = create_app({"DATA_DIR": str(Path(tmp) / "app"), "SECRET_KEY": "bench"})
            migrate.upgrade(app)
            from appliance.plugins.sync import service

            with app.test_request_context():
                ent = Enterprise(eid="acme", name="Acme")
                db.session.add(ent)
                db.session.commit()
                syn = service.save(ent, "ldap", {
                    "name": "Bench", "servers": "127.0.0.1", "port": slapd.ldap_port,
                    "security": "none", "bind_dn": READER_DN, "password": READER_PASSWORD,
                    "base_dn": PEOPLE_DN, "filter": "(objectClass=inetOrgPerson)",
                    "scope": "sub", "page_size": args.page_size, "preset": "OpenLDAP",
                    "max_drop": 20, "days": 0, "hour": 1, "minute": 0, "ampm": "AM"})
                jobs = app.extensions["appliance"].jobs

                def sync() -> float:
                    run, _ = jobs.submit(service.KIND, syn.source)
                    t0 = time.perf_counter()
                    done = jobs.wait(run.id, timeout=3600)
                    assert done.state == "succeeded", done.message
                    return time.perf_counter() - t0

                with PeakRss() as m0:
                    base, n = baseline(slapd, attributes, args.page_size)
                assert n == args.entries, n
                with PeakRss() as m1:
                    first = sync()
                with PeakRss() as m2:
                    again = sync()
                report = syn.report
            jobs.shutdown()
    print(f"{args.entries:,} entries, page size {args.page_size}, attributes: "
          f"{', '.join(attributes)}")
    print(f"{'':<36}{'seconds':>9}{'entries/s':>12}{'vs baseline':>13}{'peak RSS':>10}")
    for label, t, m in (("baseline: bare ldap3 paged search", base, m0),
                        ("first sync (all added)", first, m1),
                        ("unchanged re-sync", again, m2)):
        print(f"{label:<36}{t:>9.2f}{args.entries / t:>12,.0f}{t / base:>12.2f}x"
              f"{m.peak:>7} MB")
    print(f"last report: {report}")


if __name__ == "__main__":
    main()
