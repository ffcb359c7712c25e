"""An administrator's first session, driven through a real headless Chromium."""

import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from appliance import create_app
from appliance.db import db
from appliance.directory import replace_source
from appliance.models import Contact, Enterprise, JobRun
from appliance.plugins.network_elements.models import Element, Licence, User
from appliance.plugins.sync.models import Synchronizer
from tests import postgres_server
from tests.e2e.audit import LINK_COLOUR, PHONE, audit, unringed
from tests.servers import run_appliance

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "correct-horse-battery"

ACME = [("Ada", "Lovelace", "+1 555 0101"), ("Alan", "Turing", "+1 555 0102"),
        ("Grace", "Hopper", "+1 555 0103"), ("Edsger", "Dijkstra", "+1 555 0104"),
        ("Barbara", "Liskov", "+1 555 0105"), ("Donald", "Knuth", "+1 555 0106"),
        ("Margaret", "Hamilton", "+1 555 0107"), ("Ken", "Thompson", "+1 555 0108")]
GLOBEX = [("Hank", "Scorpio", "+44 20 7946 0001"), ("Homer", "Simpson", "+44 20 7946 0002"),
          ("Frank", "Grimes", "+44 20 7946 0003")]


def partner_plugin(site: Path) -> str:
    """The example partner plugin (examples/partner-plugin) where the appliance finds it: its
    source on the path, and the entry point a pip install would record, in `site`. Returns
    the PYTHONPATH. (tests/test_partner_plugin.py installs it with pip for real.)"""
    info = site / "appliance_hello-1.0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: appliance-hello\n"
                                   "Version: 1.0.0\n")
    (info / "entry_points.txt").write_text("[appliance.plugins]\nhello = appliance_hello\n")
    return f"{site}:{ROOT / 'examples' / 'partner-plugin'}"


@pytest.fixture
def appliance(tmp_path):
    yield from run_appliance(tmp_path / "data",
                             env={"PYTHONPATH": partner_plugin(tmp_path / "site")})


@pytest.fixture
def open_page(chromium):
    """Open a page on a base URL in a fresh context of the headless Chromium, closed after
    the test."""
    contexts = []

    def open_(base_url: str) -> Page:
        # Called from the test, so a missing Chromium fails the test itself.
        context = chromium.new_context(viewport={"width": 1280, "height": 800},
                                       base_url=base_url)
        contexts.append(context)
        context.set_default_timeout(10_000)
        page = context.new_page()
        # A log of the conversation, shown by pytest when the test fails.
        page.on("response", lambda r: print("HTTP", r.request.method, r.url, r.status,
                                            r.headers.get("hx-trigger", "")))
        page.on("console", lambda m: print("CONSOLE", m.type, m.text))
        return page

    try:
        yield open_
    finally:
        for context in contexts:
            context.close()


def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path


def people(names, domain):
    return [{"external_id": f"{domain}-{i}", "first_name": first, "last_name": last,
             "email": f"{first.lower()}.{last.lower()}@{domain}", "phone": phone}
            for i, (first, last, phone) in enumerate(names)]


def load_contacts(data_dir: Path) -> None:
    """Bring contacts in the way a source does, through the running appliance's database;
    and what the home page and the Jobs tab show: an AD synchronizer of Acme with five runs
    (the last failed), licences in use, and the flow-through job's 143 folded no-op runs."""
    app = create_app({"DATA_DIR": str(data_dir), "SECRET_KEY": "test-secret",
                      **postgres_server.config_for(data_dir)})
    try:
        with app.app_context():
            ids = {}
            for eid, rows in (("acme-01", people(ACME, "acme.example")),
                              ("globex-02", people(GLOBEX, "globex.example"))):
                ent = db.session.scalars(select(Enterprise).where(Enterprise.eid == eid)).one()
                result = replace_source(Contact, ent, "test:1", "Test source", rows)
                assert result.added == len(rows)
                ids[eid] = ent.id
            seed_jobs_and_licences(ids["acme-01"])
    finally:
        app.extensions["appliance"].jobs.shutdown()


def seed_jobs_and_licences(acme_id: int) -> None:
    syn = Synchronizer(enterprise_id=acme_id, kind="ldap", name="Head office AD")
    db.session.add(syn)
    db.session.flush()
    start = datetime(2026, 12, 1, 3)
    db.session.add_all([JobRun(
        kind="sync.run", target=syn.source, label="Synchronize Head office AD",
        state="failed" if k == 4 else "succeeded", message="LDAP server down" if k == 4 else "",
        counts=json.dumps({"added": 40 if k == 0 else k, "updated": 2 * k, "removed": k % 2}),
        created_at=start + timedelta(hours=k), started_at=start + timedelta(hours=k),
        finished_at=start + timedelta(hours=k, minutes=1)) for k in range(5)])
    db.session.add(JobRun(kind="network_elements.flow", target="host", state="succeeded",
                          label="Flow Through Provisioning", triggered_by="schedule",
                          counts=json.dumps({"noop": 143}), message="No change to deliver",
                          created_at=start + timedelta(hours=9), started_at=start,
                          finished_at=start + timedelta(hours=9)))
    db.session.add_all([Licence(type="MiCollab Client", available=50),
                        Licence(type="Teleworker", available=10)])
    element = Element(name="MiVB Head office", platform="MiVoice Business", address="10.0.0.1")
    db.session.add(element)
    db.session.flush()
    db.session.add_all([User(login=f"user{i}", element=element, services=json.dumps(
        ["MiCollab Client", "Teleworker"] if i < 10 else ["MiCollab Client"]))
        for i in range(30)])
    db.session.commit()


def mark_page(page: Page) -> None:
    """Set a window variable that only survives if the page is not reloaded."""
    page.evaluate("window.__e2eMarker = 'same page'")


def assert_same_page(page: Page) -> None:
    assert page.evaluate("window.__e2eMarker") == "same page", "the page was reloaded"


def add_enterprise(page: Page, name: str, eid: str) -> None:
    form = page.locator("#add-enterprise")
    form.get_by_label("Name").fill(name)
    form.get_by_label("Enterprise ID").fill(eid)
    form.get_by_role("button", name="Add enterprise").click()


def open_tab(page: Page, label: str, path: str) -> None:
    """Follow a tab link (a full page load) and wait until htmx is ready on the new page."""
    page.get_by_role("navigation", name="Tabs").get_by_role("link", name=label).click()
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))
    page.wait_for_load_state()


def test_admin_first_session(appliance, open_page):
    page = open_page(appliance.url)
    server_errors = []
    page.on("response", lambda r: r.status >= 500 and server_errors.append(r.url))

    # First visit: no administrator yet, so every page leads to the setup page.
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/setup$"))
    expect(page.get_by_role("heading", name="Welcome: create the administrator")).to_be_visible()
    page.get_by_label("Username").fill("admin")
    page.locator("#f-password").fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    audit(page, "setup, filled in")
    shot(page, "setup.png")
    page.get_by_role("button", name="Create administrator").click()
    expect(page.locator("#flash")).to_contain_text("Administrator created. Welcome.")
    expect(page.get_by_role("heading", name="Home")).to_be_visible()
    expect(page.locator(".who")).to_contain_text("admin")

    # Log out, then back in through the login page (a wrong password first).
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    expect(page.get_by_label("Username")).to_have_value("admin")
    audit(page, "login, wrong password")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Home")).to_be_visible()
    expect(page.locator("#enterprise-select")).to_be_disabled()
    expect(page.locator(".tabs [aria-current=page]")).to_have_text(["Home"])
    audit(page, "home, no enterprise")

    # Add an enterprise through the HTMX form: the table and header update in place.
    open_tab(page, "Enterprises", "/enterprises")
    table = page.locator("#enterprise-table")
    expect(table).to_contain_text("No enterprise yet")
    audit(page, "no enterprise")
    mark_page(page)
    add_enterprise(page, "Acme Corp", "acme-01")
    acme_row = table.get_by_role("row", name=re.compile("Acme Corp"))
    expect(acme_row).to_contain_text("acme-01")
    expect(acme_row).to_contain_text("current")
    expect(table.locator("tbody tr")).to_have_count(1)
    flash = page.locator("#flash")
    expect(flash).to_have_text("Enterprise Acme Corp (acme-01) added and selected.")
    expect(page.locator("#enterprise-select")).to_be_enabled()
    expect(page.locator("#enterprise-select option:checked")).to_have_text("Acme Corp (acme-01)")
    expect(page.locator("#add-enterprise").get_by_label("Name")).to_have_value("")
    assert_same_page(page)
    audit(page, "one enterprise")
    shot(page, "enterprises.png")

    # A bad Enterprise ID comes back with the message next to the field, typed values kept.
    form = page.locator("#add-enterprise")
    add_enterprise(page, "Bad Corp", "ab|cd")
    expect(form.locator("#e-eid")).to_have_text(re.compile(r"^Enterprise ID cannot contain .*\|"))
    expect(form.get_by_label("Name")).to_have_value("Bad Corp")
    expect(form.get_by_label("Enterprise ID")).to_have_value("ab|cd")
    expect(form.get_by_label("Enterprise ID")).to_have_attribute("aria-invalid", "true")
    add_enterprise(page, "Bad Corp", "abc")
    expect(form.locator("#e-eid")).to_have_text("Enterprise ID must be 4 to 32 characters")
    expect(form.get_by_label("Name")).to_have_value("Bad Corp")
    expect(form.get_by_label("Enterprise ID")).to_have_value("abc")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table).not_to_contain_text("Bad Corp")
    assert_same_page(page)
    audit(page, "a rejected Enterprise ID")
    shot(page, "validation.png")

    # A second enterprise; it becomes the selected one.
    add_enterprise(page, "Globex", "globex-02")
    expect(table.get_by_role("row", name=re.compile("Globex"))).to_contain_text("current")
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(form.locator(".error")).to_have_count(0)
    expect(page.locator("#enterprise-select option")).to_have_count(2)
    expect(page.locator("#enterprise-select option:checked")).to_have_text("Globex (globex-02)")
    assert_same_page(page)

    # Contacts arrive from a source; each enterprise gets its own.
    load_contacts(appliance.data_dir)

    # The Corporate Directory follows the enterprise chosen in the header list box.
    open_tab(page, "Corporate Directory", "/directory")
    people_table = page.locator("#people-table")
    rows = people_table.locator("tbody tr")
    expect(page.locator("h1")).to_contain_text("Globex (globex-02)")
    expect(rows).to_have_count(len(GLOBEX))
    expect(rows.first.locator("td").first).to_have_text("Grimes")
    mark_page(page)
    page.locator("#enterprise-select").select_option(label="Acme Corp (acme-01)")
    expect(page.locator("h1")).to_contain_text("Acme Corp (acme-01)")
    expect(people_table.locator(".table-caption")).to_have_text("Corporate Directory of Acme Corp")
    expect(rows).to_have_count(len(ACME))
    expect(people_table).not_to_contain_text("Simpson")
    expect(rows.first.locator("td").first).to_have_text("Dijkstra")
    expect(rows.first).to_contain_text("edsger.dijkstra@acme.example")
    expect(rows.first).to_contain_text("Test source")
    expect(page).to_have_url(re.compile(r"/directory$"))
    assert_same_page(page)
    audit(page, "contacts")
    shot(page, "directory.png")

    # Sort by a column header: last name, descending.
    people_table.get_by_role("link", name="Last name").click()
    last_name = people_table.get_by_role("columnheader", name="Last name")
    expect(last_name).to_have_attribute("aria-sort", "descending")
    expect(rows.first.locator("td").first).to_have_text("Turing")
    expect(rows.last.locator("td").first).to_have_text("Dijkstra")
    expect(page).to_have_url(re.compile(r"sort=last_name&dir=desc"))

    # Search as you type from 3 characters, on Enter at any length; the results keep the sort.
    box = page.get_by_role("searchbox")
    queried = box.evaluate("""box => {
        const sent = [];
        box.addEventListener("query", () => sent.push(box.value));
        for (const text of ["a", "ar", "tur", ""]) {
            box.value = text;
            box.dispatchEvent(new Event("input", {bubbles: true}));
        }
        return sent;
    }""")
    assert queried == ["tur", ""]
    box.fill("tur")
    expect(people_table.locator(".pager")).to_contain_text("1 result for “tur”")
    box.fill("ar")
    box.press("Enter")
    expect(people_table.locator(".pager")).to_contain_text("2 results for “ar”")
    expect(rows).to_have_count(2)
    expect(rows.first.locator("td").first).to_have_text("Liskov")
    expect(rows.last.locator("td").first).to_have_text("Hamilton")
    expect(last_name).to_have_attribute("aria-sort", "descending")
    expect(page).to_have_url(re.compile(r"q=ar"))
    assert_same_page(page)
    audit(page, "a search")
    shot(page, "search.png")

    trusted_servers(page)
    every_other_tab(page)
    assert server_errors == []


def trusted_servers(page: Page) -> None:
    """The trusted-server editor of an enterprise: its buttons readable, its ids unique (the
    audit), a focus ring on everything the keyboard reaches."""
    page.get_by_role("navigation", name="Tabs").get_by_role("link", name="Enterprises").click()
    page.get_by_role("link", name="Acme Corp").click()
    expect(page.get_by_role("heading", name="Trusted Servers")).to_be_visible()
    trusted = page.locator("#trusted")
    expect(trusted).to_contain_text("No trusted server.")
    audit(page, "enterprise, no trusted server")
    trusted.get_by_label("IP address/hostname").fill("not a host")
    trusted.get_by_role("button", name="Add trusted server").click()
    expect(trusted.locator(".error")).to_contain_text("must be an IP address or a hostname")
    audit(page, "enterprise, a rejected trusted server")
    trusted.get_by_label("IP address/hostname").fill("b.example")
    trusted.get_by_role("button", name="Add trusted server").click()
    row = trusted.get_by_role("row", name=re.compile("b.example"))
    expect(row).to_be_visible()
    # The buttons that read as links are link-coloured, not white on the white table.
    for name in ("New key", "Delete"):
        expect(row.get_by_role("button", name=name)).to_have_css("color", LINK_COLOUR)
    audit(page, "enterprise, a trusted server")
    assert unringed(page) == []
    page.once("dialog", lambda d: d.accept())
    row.get_by_role("button", name="New key").click()
    expect(page.locator("#new-peer-key")).to_contain_text("Peer key for b.example")
    audit(page, "enterprise, a new peer key")
    row.get_by_role("link", name="Edit").click()
    expect(trusted.locator("tr.editing")).to_be_visible()
    audit(page, "enterprise, a trusted server being edited")


def partner_tab(page: Page) -> None:
    """The example partner plugin's tab, which only uses the host's styles: refused, then
    filled."""
    form = page.locator("#add-greeting")
    form.get_by_role("button", name="Add greeting").click()
    expect(form.locator(".error")).to_have_text("Greeting is required")
    audit(page, "a greeting refused")
    form.get_by_label("Greeting").fill("Good morning")
    form.get_by_role("button", name="Add greeting").click()
    expect(page.locator("#greetings tbody tr").first).to_contain_text("Good morning")
    audit(page, "a greeting")


def home_page(page: Page) -> None:
    """The home page at a glance: the synchronization chart and the licence bars drawn by
    uPlot over their numbers, within the page's Content-Security-Policy; then the same page
    without uPlot, its numbers open."""
    refused = []
    page.on("console", lambda m: "Content Security Policy" in m.text and refused.append(m.text))
    open_tab(page, "Home", "/")
    sync = page.get_by_role("region", name="Synchronization")
    expect(sync.locator("tr", has_text="Acme Corp")).to_contain_text(
        "4 added, 8 updated, 0 removed")
    expect(sync.locator("tr", has_text="Acme Corp").locator(".badge")).to_have_text("failed")
    licences = page.get_by_role("region", name="Licences")
    expect(licences.locator("dl.figures")).to_contain_text("In use40")
    expect(licences.locator("table").first.locator("tr", has_text="Teleworker")).to_contain_text(
        "100%")
    attention = page.get_by_role("region", name="Jobs needing attention")
    expect(attention).to_contain_text("LDAP server down")
    drawn = page.locator(".chart.drawn")
    expect(drawn).to_have_count(2)
    for chart in (sync.locator(".chart"), licences.locator(".chart")):
        expect(chart.locator("canvas")).to_be_visible()
        expect(chart.locator("details.chart-data table")).to_be_hidden()
    audit(page, "home, charts drawn")
    assert refused == []
    for width in (390, 1280):  # each chart fits its card after a resize
        page.set_viewport_size({"width": width, "height": 844})
        sizes = page.evaluate("""() => new Promise(done => requestAnimationFrame(() =>
            requestAnimationFrame(() => done([...document.querySelectorAll('.chart-plot')]
              .map(p => [p.querySelector('canvas').getBoundingClientRect().width,
                         p.clientWidth])))))""")
        assert all(canvas <= box + 1 for canvas, box in sizes), (width, sizes)
    shot(page, "home.png")

    page.route("**/vendor/uPlot.iife.min.js?*", lambda route: route.abort())
    page.reload()
    expect(page.locator(".chart-plot").first).to_be_attached()
    page.wait_for_load_state()
    expect(page.locator(".chart.drawn")).to_have_count(0)
    expect(page.locator(".chart canvas")).to_have_count(0)
    numbers = licences.locator("details.chart-data table")
    expect(numbers).to_be_visible()
    expect(numbers.locator("tr", has_text="MiCollab Client")).to_contain_text("60%")
    expect(sync.locator("details.chart-data tbody tr")).to_have_count(5)
    expect(sync.locator("details.chart-data tbody tr").first).to_contain_text("40")
    audit(page, "home, without uPlot")
    page.unroute("**/vendor/uPlot.iife.min.js?*")


def jobs_tab(page: Page) -> None:
    """The flow-through job's quiet runs fold into one line; the filters narrow the table."""
    table = page.locator("#jobs-table")
    expect(table.locator("tr.noop")).to_have_count(1)
    expect(table.locator("tr.noop")).to_contain_text(
        "no-op, 143 times since 2026-12-01 03:00:00, last 2026-12-01 12:00:00")
    mark_page(page)
    filters = page.locator("#job-filters")
    filters.get_by_label("State").select_option(label="Needs attention (failed or interrupted)")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table.locator("tbody tr")).to_contain_text("LDAP server down")
    expect(page).to_have_url(re.compile(r"state=attention"))
    filters.get_by_label("State").select_option(label="Any")
    filters.get_by_label("Enterprise").select_option(label="Globex (globex-02)")
    expect(table).to_contain_text("No job run matches.")
    filters.get_by_label("Enterprise").select_option(label="Acme Corp (acme-01)")
    expect(table.locator("tbody tr")).to_have_count(5)
    assert_same_page(page)
    audit(page, "the Jobs tab, filtered by enterprise")


def every_other_tab(page: Page) -> None:
    """Each tab this session has not looked at yet, as a new administrator finds it; then the
    menu at a phone's width, a page that is not there, and the favicon."""
    home_page(page)
    for label, path in (("Accounts", "/accounts"), ("Peering", "/peering/"),
                        ("Federation", "/federation/"), ("Synchronization", "/sync/"),
                        ("Network Elements", "/network-elements/"), ("Jobs", "/jobs"),
                        ("Audit log", "/audit"), ("API tokens", "/tokens"),
                        ("Greetings", "/hello/"), ("Plugins", "/plugins")):
        open_tab(page, label, path)
        expect(page.locator(".tabs [aria-current=page]")).to_have_text([label])
        audit(page, f"the {label} tab")
        if label == "Greetings":
            partner_tab(page)
        if label == "Jobs":
            jobs_tab(page)
    page.get_by_role("link", name="Change password").click()
    expect(page.get_by_role("heading", name="Change password")).to_be_visible()
    audit(page, "change password")

    # At a phone's width the menu folds behind a button that says whether it is open.
    page.set_viewport_size(PHONE)
    page.goto("/jobs")
    menu = page.get_by_role("button", name="Menu")
    tabs = page.get_by_role("navigation", name="Tabs")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(tabs).to_be_hidden()
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(tabs.get_by_role("link", name="Enterprises")).to_be_visible()
    audit(page, "the menu open on a phone", widths=(PHONE,))
    menu.click()
    expect(tabs).to_be_hidden()

    missing = page.goto("/no-such-page")
    assert missing.status == 404
    expect(page.get_by_role("link", name="Back to the start page")).to_be_visible()
    audit(page, "a page that is not there")
    icon = page.locator("link[rel=icon]").get_attribute("href")
    answer = page.request.get(icon)
    assert answer.ok and answer.headers["content-type"].startswith("image/svg+xml")
    assert "<svg" in answer.text()
