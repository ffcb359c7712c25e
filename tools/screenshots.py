"""Screenshots of every tab at a desktop's and a phone's width, for docs/screenshots/.

Run: make screenshots   (or .venv/bin/python tools/screenshots.py [--out docs/screenshots])

It builds a throwaway appliance (a temporary data directory on SQLite) holding a little of
everything (two enterprises with contacts, a trusted server, network elements, a location,
a department, licences, a user), serves it with `appliance serve` on a free port, and drives
Debian's headless Chromium through each tab, saving <tab>-1280.png and <tab>-390.png. The
README shows home-1280.png. The test suite never writes these files; this script does.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct-horse-battery"
WIDTHS = ({"width": 1280, "height": 800}, {"width": 390, "height": 844})
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PEOPLE = [("Ada", "Lovelace"), ("Alan", "Turing"), ("Grace", "Hopper"), ("Edsger", "Dijkstra"),
          ("Barbara", "Liskov"), ("Donald", "Knuth"), ("Margaret", "Hamilton"),
          ("Ken", "Thompson"), ("Frances", "Allen"), ("John", "Backus")]


def seed(data_dir: Path) -> None:
    """Give the appliance an administrator and something on every tab."""
    from sqlalchemy import select

    from appliance import create_app, migrate
    from appliance.auth import create_admin
    from appliance.db import db
    from appliance.directory import replace_source
    from appliance.models import Contact, Enterprise

    app = create_app({"DATA_DIR": str(data_dir), "SECRET_KEY": "screenshots"})
    try:
        migrate.upgrade(app)
        with app.app_context():
            create_admin("admin", PASSWORD)
            for name, eid in (("Acme Corp", "acme-01"), ("Globex", "globex-02")):
                db.session.add(Enterprise(name=name, eid=eid))
            db.session.commit()
            acme = db.session.scalars(select(Enterprise).where(Enterprise.eid == "acme-01")).one()
            rows = [{"external_id": f"p{i}", "first_name": first, "last_name": last,
                     "email": f"{first.lower()}.{last.lower()}@acme.example",
                     "phone": f"+1 555 01{i:02d}"} for i, (first, last) in enumerate(PEOPLE)]
            replace_source(Contact, acme, "screenshots:1", "HR directory", rows)
            seed_home(acme)
    finally:
        app.extensions["appliance"].jobs.shutdown()


def seed_home(acme) -> None:
    """What the home page shows at a glance: an AD synchronizer's last runs (the last one
    failed), two MiCollab peers, licences held and in use."""
    import json
    from datetime import timedelta

    from appliance.db import db, utcnow
    from appliance.models import JobRun
    from appliance.plugins.network_elements.models import Element, Licence, User
    from appliance.plugins.peering.models import Peer
    from appliance.plugins.sync.models import Synchronizer

    syn = Synchronizer(enterprise_id=acme.id, kind="ldap", name="Head office AD")
    db.session.add(syn)
    db.session.add_all([
        Peer(enterprise_id=acme.id, kind="mcs", description="Toronto", hostname="to.example",
             status="connected", checked_at=utcnow()),
        Peer(enterprise_id=acme.id, kind="mcs", description="Berlin", hostname="be.example",
             status="unreachable", checked_at=utcnow())])
    db.session.flush()
    start = utcnow() - timedelta(days=8)
    for k, (added, updated, removed) in enumerate(
            [(120, 0, 0), (4, 12, 1), (2, 8, 0), (6, 15, 3), (1, 5, 0), (3, 9, 2), (0, 4, 1),
             (0, 0, 0)]):
        at = start + timedelta(days=k)
        db.session.add(JobRun(
            kind="sync.run", target=syn.source, label=f"Synchronize {syn.name}",
            state="failed" if k == 7 else "succeeded", created_at=at, started_at=at,
            finished_at=at + timedelta(minutes=2), triggered_by="schedule",
            message="The LDAP server could not be reached" if k == 7 else "",
            counts=json.dumps({"added": added, "updated": updated, "removed": removed})))
    element = Element(name="MiVB-HQ", platform="MiVoice Business", address="mivb0.acme.example")
    db.session.add(element)
    db.session.add_all([Licence(type=t, available=n) for t, n in (
        ("MiCollab Client", 50), ("NuPoint Voice Mail", 20), ("Audio Web Video", 10),
        ("Teleworker", 5))])
    db.session.flush()
    db.session.add_all([User(login=f"user{i}", element_id=element.id, services=json.dumps(
        ["MiCollab Client"] + (["NuPoint Voice Mail"] if i % 2 else []) +
        (["Teleworker"] if i < 5 else []))) for i in range(32)])
    db.session.commit()


def serve(data_dir: Path) -> tuple[subprocess.Popen, str]:
    """`appliance serve` on a free port; its process and base URL once it listens."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    env.update(APPLIANCE_DATA_DIR=str(data_dir), APPLIANCE_SECRET_KEY="screenshots",
               APPLIANCE_XMPP_SUPERVISE="0", PYTHONUNBUFFERED="1")
    command = Path(sys.executable).parent / "appliance"
    proc = subprocess.Popen([str(command), "serve", "--host", "127.0.0.1", "--port", "0"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if m := re.search(r"Appliance serving on (http://\S+/)", line):
            return proc, m.group(1)
    raise SystemExit("the appliance did not start:\n" + proc.stdout.read())


def fill_in(page) -> None:
    """What an administrator would have set up, through the pages themselves."""
    page.goto("/enterprises/1")
    page.locator("#trusted").get_by_label("IP address/hostname").fill("peer.acme.example")
    page.locator("#trusted").get_by_label("Description").fill("Head office appliance")
    page.get_by_role("button", name="Add trusted server").click()
    page.locator("#trusted").get_by_text("Head office appliance").wait_for()
    for name, platform, address in (("MiVB-Ottawa", "MiVoice Business", "mivb1.acme.example"),
                                    ("MiVO-Branch", "MiVoice Office 400", "10.0.4.20")):
        page.goto("/network-elements/elements/new")
        page.get_by_role("textbox", name="Name", exact=True).fill(name)
        page.get_by_label("Platform").select_option(platform)
        page.get_by_label("FQDN or IP address").fill(address)
        page.get_by_role("button", name="Save").click()
        page.locator("#methods").wait_for()
    for kind, label, value in (("locations", "Location name", "Ottawa"),
                               ("departments", "Department name", "Sales")):
        page.goto(f"/network-elements/{kind}")
        page.get_by_role("textbox", name=label, exact=True).fill(value)
        page.get_by_role("button", name=re.compile("^Add ")).click()
        page.get_by_label(f"{label} of {value}").wait_for()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="screenshots-"))
    proc = None
    try:
        seed(work / "data")
        proc, url = serve(work / "data")
        chromium = next(p for p in ("/usr/lib/chromium/chromium", shutil.which("chromium")) if p)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=ARGS)
            context = browser.new_context(base_url=url, viewport=WIDTHS[0])
            page = context.new_page()
            page.goto("/login")
            page.get_by_label("Username").fill("admin")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.get_by_role("heading", name="Home").wait_for()
            fill_in(page)
            page.goto("/")
            tabs = [(a.inner_text(), a.get_attribute("href"))
                    for a in page.get_by_role("navigation", name="Tabs").get_by_role("link").all()]
            for label, href in tabs:
                name = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
                for size in WIDTHS:
                    page.set_viewport_size(size)
                    page.goto(href)
                    page.wait_for_load_state("networkidle")
                    path = args.out / f"{name}-{size['width']}.png"
                    page.screenshot(path=str(path))
                    print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
            browser.close()
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
