"""Importing a peer's contacts: Sync Now against the bare transfer of the same pages.

Run: .venv/bin/python bench/peer_import.py [--contacts N] [--repeat R]
Starts two real appliances behind nginx TLS (as the tests do), gives B's enterprise N
contacts, and measures, R times each:
  - baseline: fetching every page of B's contacts over the peer link, storing nothing;
  - first import: Sync Now into an empty source (N added);
  - unchanged re-sync: Sync Now again with nothing changed on B.
Sync times are the job's own start-to-end time on A. Prints medians and the ratio of each
sync to the baseline measured in the same run.
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

from appliance import create_app  # noqa: E402
from appliance.peers import PeerClient  # noqa: E402
from tests import peer_sites  # noqa: E402
from tests.peer_sites import ent_id, peer_body, seed, trust  # noqa: E402


def job_seconds(run: dict) -> float:
    start, end = (datetime.fromisoformat(run[k].removesuffix("Z"))
                  for k in ("started_at", "finished_at"))
    return (end - start).total_seconds()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ca = trustme.CA()
        seed(root / "b.test", "bravo", args.contacts)
        a = peer_sites.start(root, "a.test", ca)
        b = peer_sites.start(root, "b.test", ca)
        try:
            key = trust(b, "bravo", "a.test")
            alpha = ent_id(a, "alpha")
            client_app = create_app({
                "DATA_DIR": str(root / "client"), "SECRET_KEY": "x",
                "PEER_CA_FILE": str(root / "ca.pem"),
                "PEER_HOSTS": ",".join(f"{n}={ip}" for n, ip in peer_sites.NAMES.items())})

            base, first, again = [], [], []
            for _ in range(args.repeat):
                with client_app.app_context():
                    t0 = time.perf_counter()
                    client, after, n = PeerClient("b.test", b.port, key), "", 0
                    while True:
                        page = client.get("/enterprises/bravo/contacts", after=after, limit=500)
                        n += len(page["items"])
                        if not (after := page["next"]):
                            break
                    base.append(time.perf_counter() - t0)
                    assert n == args.contacts, n
                status, peer = a.api("POST", f"/api/v1/peering/enterprises/{alpha}/peers",
                                     peer_body(b, key))
                assert status == 201, peer
                for bucket, added in ((first, args.contacts), (again, 0)):
                    _, run = a.api("POST", f"/api/v1/peering/peers/{peer['id']}/sync")
                    run = a.wait_job(run["run_id"], timeout=600)
                    assert run["state"] == "succeeded" and run["counts"]["added"] == added, run
                    bucket.append(job_seconds(run))
                a.api("DELETE", f"/api/v1/peering/peers/{peer['id']}")
            client_app.extensions["appliance"].jobs.shutdown()
        finally:
            b.stop()
            a.stop()

    mb = statistics.median(base)
    print(f"{args.contacts:,} contacts from a peer over HTTPS, median of {args.repeat} runs")
    print(f"{'':<34}{'median':>10}{'contacts/s':>14}{'vs baseline':>13}")
    for label, times in (("baseline: fetch pages, no storing", base),
                         ("first import (Sync Now)", first),
                         ("unchanged re-sync", again)):
        m = statistics.median(times)
        print(f"{label:<34}{m:>9.2f}s{args.contacts / m:>14,.0f}{m / mb:>12.2f}x")


if __name__ == "__main__":
    main()
