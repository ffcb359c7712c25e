"""The Federation tab in a real headless Chromium: cells edited by double-click and from the
keyboard, Apply, Reset, Delete Server; every state checked by tests.e2e.audit."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.audit import LINK_COLOUR, audit, unringed
from tests.e2e.test_browser import open_page, shot  # noqa: F401 (fixture)
from tests.peer_sites import PASSWORD, prepare
from tests.servers import run_appliance

pytestmark = pytest.mark.browser


@pytest.fixture
def appliance(tmp_path):
    prepare(tmp_path / "data")
    yield from run_appliance(tmp_path / "data", env={
        "APPLIANCE_XMPP_PROSODYCTL": str(tmp_path / "none"), "APPLIANCE_HOSTNAME": "a.test"})


def settled(page) -> None:
    expect(page.locator(".htmx-request, .htmx-swapping, .htmx-settling, .htmx-added")) \
        .to_have_count(0)


def test_add_by_double_click_apply_reset_delete(appliance, open_page):  # noqa: F811
    page = open_page(appliance.url)
    page.on("dialog", lambda d: d.accept())
    page.goto("/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("navigation", name="Tabs").get_by_role("link", name="Federation").click()
    expect(page.get_by_role("heading", name="IM and presence federation is disabled")) \
        .to_be_visible()
    expect(page.locator("#xmpp-status")).to_contain_text("not installed")
    audit(page, "federation disabled")
    page.get_by_role("button", name="Enable Federation").click()
    expect(page.locator("#flash")).to_contain_text("Federation enabled.")
    expect(page.get_by_role("heading", name="IM and presence federation is enabled")) \
        .to_be_visible()
    settled(page)
    audit(page, "federation enabled, no server")

    form = page.locator("#fed-form")
    form.get_by_role("button", name="Add Server").click()
    box = form.get_by_placeholder("Enter domain")
    expect(box).to_be_focused()
    box.fill("ocs.example")
    form.get_by_role("button", name="Add Server").click()  # a second row, NextPlane
    settled(page)
    expect(form.locator("tbody tr")).to_have_count(2)
    expect(form.locator("tbody tr").nth(0)).to_contain_text("ocs.example")
    second = form.locator("tbody tr").nth(1)
    second.get_by_placeholder("Enter domain").fill("partner.example")
    second.get_by_label("NextPlane").check()
    settled(page)
    second = form.locator("tbody tr").nth(1)
    expect(second.get_by_placeholder("Enter server")).to_be_visible()
    second.get_by_placeholder("Enter server").fill("hub.nextplane.example")
    second.get_by_text("Port", exact=True).dblclick()
    settled(page)
    second = form.locator("tbody tr").nth(1)
    second.get_by_placeholder("Port").fill("99999")
    expect(form).to_contain_text("2 pending changes")
    form.get_by_role("button", name="Apply").click()
    expect(form).to_contain_text("Nothing was saved")
    expect(form.locator("tr.invalid")).to_contain_text("Port must be 1 to 65535")
    audit(page, "a rejected port")
    shot(page, "federation-invalid.png")

    # Double-click the bad port, fix it, Apply.
    form.locator("tr.invalid").get_by_text("99999").dblclick()
    settled(page)
    form.locator("tbody tr").nth(1).get_by_placeholder("Port").fill("5269")
    form.get_by_role("button", name="Apply").click()
    expect(page.locator("#flash")).to_contain_text("Federated Servers saved.")
    expect(form.locator("tbody tr")).to_have_count(2)
    expect(form).not_to_contain_text("pending")
    # Delete Server and Test read as links, not white on the white table.
    saved = form.locator("tbody tr").nth(0)
    for name in ("Delete Server", "Test"):
        expect(saved.get_by_role("button", name=name, exact=True)).to_have_css("color", LINK_COLOUR)
    audit(page, "two saved servers")
    assert unringed(page) == []  # cells, tick boxes and buttons: a focus ring each

    # Reset discards a pending edit.
    form.get_by_text("ocs.example").dblclick()
    settled(page)
    form.get_by_placeholder("Enter domain").fill("changed.example")
    form.get_by_role("button", name="Add Server").click()
    settled(page)
    expect(form).to_contain_text("changed.example")
    form.get_by_role("button", name="Reset").click()
    expect(form).not_to_contain_text("changed.example")
    expect(form.locator("tbody tr")).to_have_count(2)
    shot(page, "federation.png")

    # Delete Server, then Apply.
    form.locator("tbody tr", has_text="ocs.example").get_by_role(
        "button", name="Delete Server").click()
    settled(page)
    expect(form.locator("tbody tr")).to_have_count(1)
    form.get_by_role("button", name="Apply").click()
    expect(page.locator("#flash")).to_contain_text("Federated Servers saved.")
    page.reload()
    expect(page.locator("#fed-form tbody tr")).to_have_count(1)
    expect(page.locator("#fed-form")).to_contain_text(re.compile("partner.example"))
    keyboard(page, page.locator("#fed-form"))


def keyboard(page, form) -> None:
    """What double-click does, the keyboard does: Enter or F2 on a focused cell opens it;
    Escape puts back what was there, Enter keeps what was typed; focus goes back to the cell."""
    cell = form.get_by_role("button", name=re.compile(r"^Domain: partner\.example"))
    cell.focus()
    page.keyboard.press("Enter")
    settled(page)
    box = form.get_by_role("textbox", name="Domain")
    expect(box).to_be_focused()
    expect(box).to_have_value("partner.example")
    audit(page, "a cell open for editing")
    box.press_sequentially("-typo")
    page.keyboard.press("Escape")
    settled(page)
    expect(form.get_by_role("textbox", name="Domain")).to_have_count(0)
    cell = form.get_by_role("button", name=re.compile(r"^Domain: partner\.example\."))
    expect(cell).to_be_focused()
    expect(form).not_to_contain_text("pending")

    page.keyboard.press("F2")
    settled(page)
    box = form.get_by_role("textbox", name="Domain")
    expect(box).to_be_focused()
    box.fill("partner2.example")
    page.keyboard.press("Enter")
    settled(page)
    expect(form.get_by_role("textbox", name="Domain")).to_have_count(0)
    expect(form.get_by_role("button", name=re.compile(r"^Domain: partner2\.example"))) \
        .to_be_focused()
    expect(form).to_contain_text("1 pending change")
    form.get_by_role("button", name="Apply").click()
    expect(page.locator("#flash")).to_contain_text("Federated Servers saved.")
    expect(form).to_contain_text("partner2.example")
