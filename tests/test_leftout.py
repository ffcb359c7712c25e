"""A left-out feature says so: the 404 of a path under a blocked plugin names what left it
out (appliance/leftout.py); other 404s stay plain."""

from tests.conftest import PASSWORD, Browser


def visit(app) -> Browser:
    with app.app_context():
        from appliance.auth import create_admin
        create_admin("admin", PASSWORD)
    b = Browser(app.test_client())
    b.login()
    return b


def test_a_plugin_blocked_by_the_environment_says_so(make_app):
    b = visit(make_app(DISABLE_PLUGINS="network_elements"))
    page = b.get("/network-elements/users/new")  # its prefix has a hyphen for the underscore
    html = page.get_data(as_text=True)
    assert page.status_code == 404
    assert "Not offered on this appliance" in html and 'id="tabs"' in html  # the site's layout
    assert ("APPLIANCE_DISABLE_PLUGINS on this appliance (profile Standard) leaves the "
            "network_elements plugin out") in html
    api = b.get("/api/v1/network-elements/elements")
    assert api.status_code == 404
    assert api.get_json() | {"message": ""} == {
        "error": "not_found", "plugin": "network_elements", "message": "",
        "blocked_by": "APPLIANCE_DISABLE_PLUGINS", "profile": "standard"}


def test_other_missing_pages_stay_plain(make_app):
    b = visit(make_app(PROFILE="micloud-flex-gcp"))
    assert "the profile MiCloud Flex on GCP" in b.get("/federation/").get_data(as_text=True)
    for path in ("/nothing-here", "/api/v1/nothing-here", "/network-elements/nothing-here"):
        answer = b.get(path)
        assert answer.status_code == 404
        assert "leaves" not in answer.get_data(as_text=True), path
