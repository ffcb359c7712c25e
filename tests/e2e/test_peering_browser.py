"""The Peering tab in a real headless Chromium, against two real appliances peering over TLS
(the second behind a Gate, to hold a sync while it runs). Every state is checked by
tests.e2e.audit."""

import re

import pytest
import trustme
from playwright.sync_api import expect

from tests import peer_sites
from tests.e2e.audit import audit
from tests.e2e.test_browser import PASSWORD, open_page, shot  # noqa: F401 (fixture)
from tests.peer_sites import ent_id, trust

pytestmark = pytest.mark.browser


def settled(page) -> None:
    """Wait until htmx has swapped and processed the new content (its handlers are live)."""
    expect(page.locator(".htmx-request, .htmx-swapping, .htmx-settling, .htmx-added")) \
        .to_have_count(0)


@pytest.fixture
def sites(tmp_path):
    a, b = peer_sites.start_pair(tmp_path, trustme.CA(), 25, gate=True)
    try:
        yield a, b
    finally:
        b.stop()
        a.stop()


def test_add_select_enterprise_sync_sort_edit_delete(sites, open_page):  # noqa: F811
    a, b = sites
    key = trust(b, "bravo", "a.test")
    ent_id(a, "alpha")
    page = open_page(a.app.url)
    page.on("dialog", lambda d: d.accept())
    page.goto("/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("navigation", name="Tabs").get_by_role("link", name="Peering").click()
    expect(page.get_by_role("heading", name=re.compile("^Peering"))).to_be_visible()
    expect(page.locator("#peer-table")).to_contain_text("No peer server yet")
    audit(page, "no peer")

    # Add a MiCollab Client Service peer, choosing its enterprise with Select Enterprise.
    page.get_by_role("link", name="Add Server").click()
    expect(page).to_have_url(re.compile(r"/peering/new$"))
    settled(page)
    audit(page, "a blank peer form")
    form = page.locator("#peer-form")
    expect(form.locator(".error")).to_have_count(0)  # nothing is wrong before anything is typed
    expect(form.get_by_label("HTTPS port")).to_have_value("")
    form.get_by_label("Description").fill("Bravo peer")
    form.get_by_label("Hostname").fill("b.test")
    form.get_by_label("HTTPS port").fill(str(b.port))
    form.get_by_label("Peer key").fill(key)
    form.get_by_label("Peer Dialing Prefix").fill("-9")
    form.get_by_role("link", name="Select Enterprise").click()
    choice = form.locator("select#f-peer_eid")
    expect(choice.locator("option")).to_have_text(["Bravo (bravo)"])
    audit(page, "the peer's enterprises offered")
    shot(page, "peering-select-enterprise.png")
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#flash")).to_contain_text("Peer server Bravo peer added.")
    expect(page.get_by_role("heading", name=re.compile("Peer Server Details"))).to_be_visible()
    expect(page.locator("#next-sync")).to_contain_text("Next synchronization")
    audit(page, "a peer saved")

    # Sync Now, the peer held while the job runs: the progress shows; the peer then closes
    # the connection unanswered, and the job fails.
    b.gate.hold(r"^GET /peer/v1/enterprises/bravo/contacts\?")
    page.get_by_role("button", name="Sync Now").click()
    job = page.locator("#peer-sync .job")
    expect(job).to_have_attribute("data-state", "running")
    assert b.gate.held.wait(20)
    audit(page, "a sync running")
    b.gate.release()
    expect(job).to_have_attribute("data-state", "failed", timeout=20_000)
    audit(page, "a sync failed")

    # Sync Now again: the progress shows, then the counts.
    page.get_by_role("button", name="Sync Now").click()
    expect(job).to_have_attribute("data-state", "succeeded", timeout=20_000)
    expect(job).to_contain_text("added: 25")
    audit(page, "a sync succeeded")
    shot(page, "peering-synced.png")

    # A second, external peer; then sort the table by its columns.
    page.get_by_role("link", name="‹ Peering").click()
    expect(page).to_have_url(re.compile(r"/peering/$"))
    page.get_by_role("link", name="Add Server").click()
    expect(page).to_have_url(re.compile(r"/peering/new$"))
    settled(page)
    form = page.locator("#peer-form")
    form.get_by_label("Peer Type").select_option("external")
    expect(form.get_by_label("Server(s)")).to_be_visible()
    form.get_by_label("Description").fill("Alpha directory")
    form.get_by_label("Server(s)").fill("ldap.example.test")
    form.get_by_label("Base DN").fill("dc=example,dc=test")
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#flash")).to_contain_text("Peer server Alpha directory added.")
    page.get_by_role("link", name="‹ Peering").click()

    table = page.locator("#peer-table")
    rows = table.locator("tbody tr td:first-child")
    expect(rows).to_have_text(["Alpha directory", "Bravo peer"])
    expect(table.locator("tbody tr").nth(0)).to_contain_text("N/A")
    expect(table.locator("tbody tr").nth(1)).to_contain_text("MiCollab Client Service")
    table.get_by_role("link", name="Description", exact=True).click()
    expect(rows).to_have_text(["Bravo peer", "Alpha directory"])
    expect(page).to_have_url(re.compile(r"sort=description&dir=desc"))
    table.get_by_role("link", name="Server", exact=True).click()
    expect(rows).to_have_text(["Alpha directory", "Bravo peer"])  # "N/A" sorts before "b.test"
    audit(page, "two peers")
    shot(page, "peering-table.png")

    # Edit through the description link.
    table.get_by_role("link", name="Bravo peer").click()
    expect(page).to_have_url(re.compile(r"/peering/\d+$"))
    settled(page)
    form = page.locator("#peer-form")
    expect(form.get_by_label("Peer key")).to_have_value("")  # never shown back
    form.get_by_label("Description").fill("Bravo main")
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#flash")).to_contain_text("Peer server saved.")
    expect(form.get_by_label("Description")).to_have_value("Bravo main")
    audit(page, "a peer changed")

    # Delete: the confirmation names what goes; the table no longer lists it.
    expect(page.get_by_text("the 25 contact(s) imported from it")).to_be_visible()
    page.get_by_role("button", name="Delete peer server").click()
    expect(page.locator("#flash")).to_contain_text(
        "Peer server Bravo main deleted, with its synchronization schedule and 25 imported")
    expect(page.locator("#peer-table tbody tr td:first-child")).to_have_text(["Alpha directory"])
