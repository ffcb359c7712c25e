"""Importing a peer's contacts: Sync Now against the bare transfer of the same pages.

Run: .venv/bin/python bench/peer_import.py [--contacts N] [--repeat R]
Starts two real appliances behind nginx TLS (as the tests do), gives B's enterprise N
contacts, and measures, R times each:
  - baseline: fetching every page of B's contacts over the peer link, storing nothing;
  - first import: Sync Now into an empty source (N added; a full fetch);
  - unchanged re-sync: Sync Now again with nothing changed on B (the change feed);
  - 1% changed: Sync Now after 1% of B's contacts changed (their phone numbers, written
    to B's database as its own sync would);
  - full re-sync, unchanged: Sync Now with ?full=1 (what every re-sync cost before the feed,
    and what the weekly full re-sync costs).
Sync times are the job's own start-to-end time on A. Prints medians and the ratio of each
sync to the baseline measured in the same run, and how many requests B served for each.
"""

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import trustme

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import update  # noqa: E402

from appliance import create_app  # noqa: E402
from appliance.db import db  # noqa: E402
from appliance.models import Contact  # noqa: E402
from appliance.peers import PeerClient  # noqa: E402
from tests import peer_sites  # noqa: E402
from tests.peer_sites import ent_id, peer_body, seed, trust  # noqa: E402


def job_seconds(run: dict) -> float:
    start, end = (datetime.fromisoformat(run[k].removesuffix("Z"))
                  for k in ("started_at", "finished_at"))
    return (end - start).total_seconds()


def change(b, n: int, round_: int) -> None:
    """Change the phone number of n of B's contacts (spread over the directory)."""
    with b.database():
        ids = [f"u{i}" for i in range(0, 100 * n, 100)]
        db.session.execute(update(Contact).where(Contact.external_id.in_(ids))
                           .values(phone=f"+1 555 {round_:04d}"))
        db.session.commit()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    n, changed = args.contacts, max(args.contacts // 100, 1)
    cases = {"first import (Sync Now)": [], "unchanged re-sync": [], "1% changed re-sync": [],
             "full re-sync, unchanged (?full=1)": []}
    requests = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ca = trustme.CA()
        seed(root / "b.test", "bravo", n)
        a = peer_sites.start(root, "a.test", ca)
        b = peer_sites.start(root, "b.test", ca, gate=True)
        try:
            key = trust(b, "bravo", "a.test")
            alpha = ent_id(a, "alpha")
            client_app = create_app({
                "DATA_DIR": str(root / "client"), "SECRET_KEY": "x",
                "PEER_CA_FILE": str(root / "ca.pem"),
                "PEER_HOSTS": ",".join(f"{n}={ip}" for n, ip in peer_sites.NAMES.items())})

            base = []
            for r in range(args.repeat):
                with client_app.app_context():
                    t0 = time.perf_counter()
                    client, after, got = PeerClient("b.test", b.port, key), "", 0
                    while True:
                        page = client.get("/enterprises/bravo/contacts", after=after, limit=500)
                        got += len(page["items"])
                        if not (after := page["next"]):
                            break
                    base.append(time.perf_counter() - t0)
                    assert got == n, got
                status, peer = a.api("POST", f"/api/v1/peering/enterprises/{alpha}/peers",
                                     peer_body(b, key))
                assert status == 201, peer
                for label, query, added, updated in (
                        ("first import (Sync Now)", "", n, 0), ("unchanged re-sync", "", 0, 0),
                        ("1% changed re-sync", "", 0, changed),
                        ("full re-sync, unchanged (?full=1)", "?full=1", 0, 0)):
                    if updated:
                        change(b, changed, r)
                    b.gate.lines.clear()
                    _, run = a.api("POST", f"/api/v1/peering/peers/{peer['id']}/sync{query}")
                    run = a.wait_job(run["run_id"], timeout=600)
                    assert run["state"] == "succeeded", run
                    assert (run["counts"]["added"], run["counts"]["updated"]) == (
                        added, updated), run
                    cases[label].append(job_seconds(run))
                    requests[label] = len([x for x in b.gate.lines if "/bravo/" in x])
                a.api("DELETE", f"/api/v1/peering/peers/{peer['id']}")
            client_app.extensions["appliance"].jobs.shutdown()
        finally:
            b.stop()
            a.stop()

    mb = statistics.median(base)
    print(f"{n:,} contacts from a peer over HTTPS, median of {args.repeat} runs")
    print(f"{'':<36}{'median':>9}{'contacts/s':>12}{'vs baseline':>13}{'requests':>10}")
    print(f"{'baseline: fetch pages, no storing':<36}{mb:>8.2f}s{n / mb:>12,.0f}"
          f"{1:>12.2f}x{n // 500 + 1:>10}")
    for label, times in cases.items():
        m = statistics.median(times)
        print(f"{label:<36}{m:>8.2f}s{n / m:>12,.0f}{m / mb:>12.2f}x{requests[label]:>10}")


if __name__ == "__main__":
    main()
