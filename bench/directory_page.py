"""Corporate Directory render time with 100,000 contacts, against a 100-contact baseline.

Run: .venv/bin/python bench/directory_page.py [--contacts N] [--repeat R]
Prints the median of R requests for each view, and its ratio to the same view of an
enterprise with 100 contacts measured in the same run (machines are noisy: quote ratios).
"""

import argparse
import re
import statistics
import tempfile
import time

from sqlalchemy import select

from appliance import create_app, migrate
from appliance.auth import create_admin
from appliance.db import db
from appliance.directory import replace_source
from appliance.models import Contact, Enterprise

VIEWS = {
    "page 1, by last name": "/directory",
    "page 1, HTMX partial": "/directory?sort=last_name",
    "last page (deep offset)": "/directory?page=999999",
    "sort by e-mail desc": "/directory?sort=email&dir=desc",
    "search 'smith1'": "/directory?q=smith1",
}


def rows(n):
    return [{"external_id": f"id{i}", "first_name": f"John{i % 997}", "last_name": f"Smith{i}",
             "email": f"john.smith{i}@example.com", "phone": f"+1 555 {i:07d}"}
            for i in range(n)]


def median_ms(client, url, repeat, htmx):
    headers = {"HX-Request": "true", "HX-Target": "people-table"} if htmx else {}
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        resp = client.get(url, headers=headers)
        times.append((time.perf_counter() - t) * 1000)
        assert resp.status_code == 200, resp.status_code
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"DATA_DIR": tmp, "SECRET_KEY": "bench", "LOGIN_FAIL_DELAY": 0})
        migrate.upgrade(app)
        with app.app_context():
            create_admin("bench", "bench-password-1")
            big, small = Enterprise(eid="big", name="Big"), Enterprise(eid="small", name="Small")
            db.session.add_all([big, small])
            db.session.commit()
            t = time.perf_counter()
            replace_source(Contact, big, "bench:1", "Bench", rows(args.contacts))
            load = time.perf_counter() - t
            replace_source(Contact, small, "bench:1", "Bench", rows(100))
            ids = {e.eid: e.id for e in db.session.scalars(select(Enterprise))}
        client = app.test_client()
        html = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
        client.post("/login", data={"username": "bench", "password": "bench-password-1",
                                    "csrf_token": token})
        print(f"import of {args.contacts:,} contacts (replace_source): {load:.2f} s")
        print(f"{'view':<28}{'100 contacts':>14}{args.contacts:>12,} contacts{'ratio':>8}")
        for name, url in VIEWS.items():
            htmx = "HTMX" in name
            result = {}
            for eid in ("small", "big"):
                with client.session_transaction() as s:
                    s["enterprise_id"] = ids[eid]
                median_ms(client, url, 2, htmx)  # warm up
                result[eid] = median_ms(client, url, args.repeat, htmx)
            print(f"{name:<28}{result['small']:>11.1f} ms{result['big']:>12.1f} ms"
                  f"{result['big'] / result['small']:>11.1f}x")
        app.extensions["appliance"].jobs.shutdown()


if __name__ == "__main__":
    main()
