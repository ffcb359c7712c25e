"""Users and Services in a real headless Chromium: an element, a location, a department, then
a small CSV through preview and apply, and the report; a user added by hand. The appliance
runs the MiCloud Flex on GCP profile, so the peering and federation pages say they are left
out. Every state is checked by tests.e2e.audit."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.audit import LINK_COLOUR, audit
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
    yield from run_appliance(tmp_path / "data", env={"APPLIANCE_PROFILE": "micloud-flex-gcp"})


def test_element_location_department_and_a_csv_import(appliance, open_page, tmp_path):  # noqa: F811
    page = open_page(appliance.url)
    page.goto("/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("navigation", name="Tabs").get_by_role("link", name="Network Elements") \
        .click()
    expect(page.locator("#elements")).to_contain_text("No network element yet")
    audit(page, "no network element")
    page.get_by_role("link", name="Add", exact=True).click()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#element-card")).to_contain_text("Name is required")
    audit(page, "an element refused")
    page.get_by_role("textbox", name="Name", exact=True).fill("MiVB-1")
    page.get_by_label("Platform").select_option("MiVoice Business")
    page.get_by_label("FQDN or IP address").fill("mivb1.acme.test")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#flash")).to_contain_text("Network element MiVB-1 added.")
    expect(page.locator("#methods")).to_contain_text("Flow Through Provisioning — recommended")
    audit(page, "an element saved")

    # A MiVoice 5000, whose name sorts first only when case is ignored (lower case after
    # upper case in code order).
    page.get_by_role("navigation", name="Users and Services").get_by_role(
        "link", name="Network Elements").click()
    page.get_by_role("link", name="Add", exact=True).click()
    page.get_by_role("textbox", name="Name", exact=True).fill("a5000")
    page.get_by_label("Platform").select_option("MiVoice 5000")
    page.get_by_label("FQDN or IP address").fill("a5000.acme.test")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#flash")).to_contain_text("Network element a5000 added.")
    page.get_by_role("navigation", name="Users and Services").get_by_role(
        "link", name="Network Elements").click()
    expect(page.locator("#elements tbody tr td:first-child")).to_have_text(["a5000", "MiVB-1"])
    audit(page, "two elements")

    nav = page.get_by_role("navigation", name="Users and Services")
    nav.get_by_role("link", name="Locations").click()
    page.get_by_role("textbox", name="Location name", exact=True).fill("Ottawa")
    page.get_by_role("button", name="Add location").click()
    expect(page.get_by_label("Location name of Ottawa")).to_have_value("Ottawa")
    ottawa = page.locator("#site-items tr", has=page.get_by_label("Location name of Ottawa"))
    for name in ("Save", "Delete"):  # they read as links, not white on the white table
        expect(ottawa.get_by_role("button", name=name)).to_have_css("color", LINK_COLOUR)
    audit(page, "a location")
    nav.get_by_role("link", name="Departments").click()
    page.get_by_role("textbox", name="Department name", exact=True).fill("Sales")
    page.get_by_role("button", name="Add department").click()
    expect(page.get_by_label("Department name of Sales")).to_have_value("Sales")
    audit(page, "a department")
    nav.get_by_role("link", name="Licensing Information").click()
    page.get_by_label("MiCollab Client available").fill("10")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#flash")).to_contain_text("Licences saved.")
    audit(page, "licences saved")

    csv_file = tmp_path / "users.csv"
    csv_file.write_text(CSV)
    nav.get_by_role("link", name="Bulk User Provisioning").click()
    audit(page, "bulk provisioning, no file yet")
    page.get_by_label("File (.csv or .ldif)").set_input_files(str(csv_file))
    page.get_by_role("button", name="Preview").click()
    result = page.locator("#bulk-result")
    expect(result).to_have_attribute("data-state", "succeeded", timeout=15_000)
    expect(page.locator("#bulk-counts")).to_have_text(
        "2 to add · 0 to update · 0 unchanged · 1 rejected")
    expect(page.locator("#rejected")).to_contain_text("Last name is required")
    expect(page.locator("#rejected")).to_contain_text("Unknown department Marketing")
    audit(page, "a bulk preview")
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
    audit(page, "a bulk import applied")
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
    audit(page, "two users")
    add_a_user_by_hand(page)
    for link, path in (("Templates and Roles", "/templates"), ("Flow Through", "/flow")):
        nav.get_by_role("link", name=link).click()
        expect(page).to_have_url(re.compile(re.escape(path) + "$"))
        page.wait_for_load_state()
        audit(page, f"{link} after an import")

    # A department in use stays, and the page says who uses it.
    nav.get_by_role("link", name="Departments").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#site-items tr", has=page.get_by_label("Department name of Sales")) \
        .get_by_role("button", name="Delete").click()
    expect(page.locator("#flash")).to_contain_text(
        "The department Sales is in use by 2 user(s): ann, bo")
    expect(page.get_by_label("Department name of Sales")).to_have_value("Sales")
    audit(page, "a department in use")

    # The Jobs tab and one job's page, after the imports.
    page.get_by_role("navigation", name="Tabs").get_by_role("link", name="Jobs").click()
    jobs = page.locator("#jobs-table tbody tr")
    expect(jobs.first).to_contain_text("succeeded")
    audit(page, "jobs that ran")
    jobs.first.get_by_role("link").first.click()
    expect(page.locator(".job")).to_have_attribute("data-state", "succeeded")
    audit(page, "a job that succeeded")

    left_out(page)


def add_a_user_by_hand(page) -> None:
    """The manual-user form offers only the elements users are provisioned on by hand (not
    the MiVoice 5000, which sorts first), and checks the e-mail address."""
    page.get_by_role("link", name="Add user").click()
    element = page.get_by_label("Network element")
    expect(element.locator("option:checked")).to_have_text("MiVB-1")
    expect(element.locator("option")).to_have_text(["MiVB-1"])
    page.get_by_label("Login").fill("dee")
    page.get_by_label("Last name").fill("Park")
    page.get_by_label("E-mail").fill("dee at acme.test")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#user-card .error")).to_have_text(
        "E-mail must be an e-mail address such as ann@example.com")
    expect(page.get_by_label("E-mail")).to_have_attribute("aria-invalid", "true")
    audit(page, "a user refused")
    page.get_by_label("E-mail").fill("dee@acme.test")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#flash")).to_contain_text("User dee provisioned.")
    audit(page, "a user saved")


def left_out(page) -> None:
    """Pages and API calls of a plugin the profile leaves out answer 404 saying so."""
    answer = page.goto("/peering/")
    assert answer.status == 404
    expect(page.get_by_role("heading", name=re.compile("Not offered on this appliance"))) \
        .to_be_visible()
    expect(page.locator("#error")).to_contain_text("the profile MiCloud Flex on GCP")
    expect(page.get_by_role("navigation", name="Tabs")).to_be_attached()  # the site's layout
    audit(page, "a left-out feature")
    answer = page.request.get("/api/v1/federation/servers")
    assert answer.status == 404
    body = answer.json()
    assert body["error"] == "not_found" and body["profile"] == "micloud-flex-gcp"
    assert "MiCloud Flex on GCP" in body["message"]
