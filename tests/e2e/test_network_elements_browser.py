"""Users and Services in a real headless Chromium: an element, a location, a department, then
a small CSV through preview and apply, and the report."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.test_browser import open_page, shot  # noqa: F401 (fixture)
from tests.peer_sites import PASSWORD, prepare
from tests.servers import run_appliance

pytestmark = pytest.mark.browser

CSV = ("login,first_name,last_name,email,number,element,location,department,template,services\n"
       "ann,Ann,Lee,ann@acme.test,2001,MiVB-1,Ottawa,Sales,,MiCollab Client\n"
       "bo,Bo,Kim,bo@acme.test,2002,MiVB-1,Ottawa,Sales,,MiCollab Client\n"
       "cy,Cy,,cy@acme.test,2003,MiVB-1,Ottawa,Marketing,,MiCollab Client\n")


@pytest.fixture
def appliance(tmp_path):
    prepare(tmp_path / "data")
    yield from run_appliance(tmp_path / "data")


def test_element_location_department_and_a_csv_import(appliance, open_page, tmp_path):  # noqa: F811
    page = open_page(appliance.url)
    page.goto("/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("navigation", name="Tabs").get_by_role("link", name="Network Elements") \
        .click()
    page.get_by_role("link", name="Add", exact=True).click()
    page.get_by_role("textbox", name="Name", exact=True).fill("MiVB-1")
    page.get_by_label("Platform").select_option("MiVoice Business")
    page.get_by_label("FQDN or IP address").fill("mivb1.acme.test")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#flash")).to_contain_text("Network element MiVB-1 added.")
    expect(page.locator("#methods")).to_contain_text("Flow Through Provisioning — recommended")

    nav = page.get_by_role("navigation", name="Users and Services")
    nav.get_by_role("link", name="Locations").click()
    page.get_by_role("textbox", name="Location name", exact=True).fill("Ottawa")
    page.get_by_role("button", name="Add location").click()
    expect(page.get_by_label("Location name of Ottawa")).to_have_value("Ottawa")
    nav.get_by_role("link", name="Departments").click()
    page.get_by_role("textbox", name="Department name", exact=True).fill("Sales")
    page.get_by_role("button", name="Add department").click()
    expect(page.get_by_label("Department name of Sales")).to_have_value("Sales")
    nav.get_by_role("link", name="Licensing Information").click()
    page.get_by_label("MiCollab Client available").fill("10")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#flash")).to_contain_text("Licences saved.")

    csv_file = tmp_path / "users.csv"
    csv_file.write_text(CSV)
    nav.get_by_role("link", name="Bulk User Provisioning").click()
    page.get_by_label("File (.csv or .ldif)").set_input_files(str(csv_file))
    page.get_by_role("button", name="Preview").click()
    result = page.locator("#bulk-result")
    expect(result).to_have_attribute("data-state", "succeeded", timeout=15_000)
    expect(page.locator("#bulk-counts")).to_have_text(
        "2 to add · 0 to update · 0 unchanged · 1 rejected")
    expect(page.locator("#rejected")).to_contain_text("Last name is required")
    expect(page.locator("#rejected")).to_contain_text("Unknown department Marketing")
    shot(page, "bulk-preview.png")

    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("heading", name=re.compile("^Import"))).to_be_visible()
    expect(page.locator("#bulk-result")).to_have_attribute("data-state", "succeeded",
                                                            timeout=15_000)
    expect(page.locator("#bulk-counts")).to_contain_text("2 added")
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("Download the result report")).click()
    report = download.value.path().read_text()
    assert "line,login,action,reasons" in report and "ann" in report and "rejected" in report
    shot(page, "bulk-applied.png")

    # The same file again changes nothing, and says so before anything is applied.
    nav.get_by_role("link", name="Bulk User Provisioning").click()
    page.get_by_label("File (.csv or .ldif)").set_input_files(str(csv_file))
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#bulk-result")).to_have_attribute("data-state", "succeeded",
                                                            timeout=15_000)
    expect(page.locator("#bulk-counts")).to_have_text(
        "0 to add · 0 to update · 2 unchanged · 1 rejected")
    expect(page.get_by_role("button", name="Apply")).to_be_disabled()

    nav.get_by_role("link", name="Users").click()
    expect(page.locator("#user-table tbody tr")).to_have_count(2)

    # A department in use stays, and the page says who uses it.
    nav.get_by_role("link", name="Departments").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#site-items tr", has=page.get_by_label("Department name of Sales")) \
        .get_by_role("button", name="Delete").click()
    expect(page.locator("#flash")).to_contain_text(
        "The department Sales is in use by 2 user(s): ann, bo")
    expect(page.get_by_label("Department name of Sales")).to_have_value("Sales")
