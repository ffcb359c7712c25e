"""The Synchronization tab in a real headless Chromium, against a real slapd. Every state is
checked by tests.e2e.audit."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.audit import audit
from tests.e2e.test_browser import add_enterprise, open_page, shot  # noqa: F401 (fixture)
from tests.ldap_server import PEOPLE_DN, READER_DN, READER_PASSWORD, Slapd
from tests.peer_sites import PASSWORD, prepare
from tests.servers import run_appliance

pytestmark = pytest.mark.browser


@pytest.fixture
def slapd(tmp_path):
    with Slapd(tmp_path / "slapd", people=40) as server:
        yield server


@pytest.fixture
def appliance(tmp_path):
    prepare(tmp_path / "data")
    yield from run_appliance(tmp_path / "data")


def settled(page) -> None:
    expect(page.locator(".htmx-request, .htmx-swapping, .htmx-settling, .htmx-added")) \
        .to_have_count(0)


def test_add_test_connection_sync_now_and_read_the_status(appliance, slapd, open_page):  # noqa: F811
    page = open_page(appliance.url)
    page.goto("/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("navigation", name="Tabs").get_by_role("link", name="Enterprises").click()
    add_enterprise(page, "Acme Corp", "acme-01")
    expect(page.locator("#flash")).to_contain_text("added and selected")

    page.get_by_role("navigation", name="Tabs").get_by_role("link", name="Synchronization") \
        .click()
    expect(page.locator("#synchronizers")).to_contain_text("No AD/LDAP synchronizer yet")
    audit(page, "no synchronizer")
    page.get_by_role("link", name="Add", exact=True).click()
    expect(page).to_have_url(re.compile(r"/sync/new"))
    settled(page)
    audit(page, "a blank synchronizer form")
    form = page.locator("#sync-form")
    form.get_by_role("button", name="Save").click()
    expect(form.locator(".error").first).to_be_visible()
    audit(page, "a synchronizer refused")
    form.get_by_role("textbox", name="Name", exact=True).fill("Head office")
    form.get_by_label("Server(s)").fill("localhost")
    form.get_by_label("Security").select_option("starttls")
    form.get_by_role("textbox", name="Port", exact=True).fill(str(slapd.ldap_port))
    ca = slapd.ca_into(appliance.data_dir / "import")  # as an administrator would
    form.get_by_label("CA certificates").fill(ca)
    form.get_by_label("Bind DN").fill(READER_DN)
    form.get_by_label("Bind password").fill(READER_PASSWORD)
    form.get_by_label("Base DN").fill(PEOPLE_DN)
    form.get_by_label("Filter").fill("(objectClass=inetOrgPerson)")
    form.get_by_label("Common AD Field Mappings").select_option("OpenLDAP")

    form.get_by_role("button", name="Test connection").click()
    result = page.locator("#ldap-test")
    expect(result).to_contain_text("Connected. The first 5 entries")
    expect(result.locator("tbody tr")).to_have_count(5)
    audit(page, "Test connection answered")
    shot(page, "sync-test-connection.png")

    form.get_by_role("button", name="Save").click()
    expect(page.locator("#flash")).to_contain_text("Synchronizer Head office added.")
    expect(page.locator("#next-sync")).to_contain_text("Next synchronization")
    audit(page, "a synchronizer saved")
    delete = page.locator("#sync-delete")
    expect(delete).to_contain_text("also deletes the 0 account(s)")

    page.get_by_role("button", name="Sync Now").click()
    job = page.locator("#sync-now .job")
    expect(job).to_have_attribute("data-state", "succeeded", timeout=20_000)
    status = page.locator("#sync-status")
    expect(status).to_contain_text("40 added", timeout=10_000)
    expect(status).to_contain_text("ok")
    expect(delete).to_contain_text("also deletes the 40 account(s)")  # not the count before
    expect(delete.locator("form")).to_have_attribute("hx-confirm", re.compile("the 40 account"))
    audit(page, "a sync done")
    shot(page, "sync-status.png")

    page.get_by_role("link", name="‹ Synchronization").click()
    row = page.locator("#synchronizers tbody tr", has_text="Head office")
    expect(row).to_contain_text("40")
    expect(row).to_contain_text("40 added")
    audit(page, "a synchronizer listed")
    page.get_by_role("navigation", name="Tabs").get_by_role("link", name="Accounts").click()
    page.locator("#people-table tbody tr").first.get_by_role("link").first.click()
    expect(page.get_by_role("heading", name=re.compile("^Account "))).to_be_visible()
    expect(page.get_by_text("Loading…")).to_have_count(0)  # its panels are in
    audit(page, "an account synchronized from the directory")
    page.goto("/sync/new?kind=pbx")
    expect(page.locator("#sync-form")).to_be_visible()
    audit(page, "a blank PBX node form")
