"""The OpenAPI document and the API's error shape."""

from openapi_spec_validator import validate


def test_openapi_document_is_valid_and_lists_every_api_route(app, api):
    spec = api("GET", "/api/v1/openapi.json").get_json()
    validate(spec)
    documented = {(p, m.upper()) for p, ops in spec["paths"].items() for m in ops}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = rule.rule.replace("<int:", "<").replace("<", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, f"{method} {path} is not documented"
    enterprise = spec["components"]["schemas"]["Enterprise"]["properties"]["eid"]
    assert (enterprise["minLength"], enterprise["maxLength"]) == (4, 32)


def test_unknown_routes_are_json_404(api):
    resp = api("GET", "/api/v1/does-not-exist")
    assert resp.status_code == 404 and resp.is_json and resp.get_json()["error"] == "not_found"


def test_wrong_method_is_json_405(api):
    resp = api("PATCH", "/api/v1/plugins")
    assert resp.status_code == 405 and resp.get_json()["error"] == "method_not_allowed"


def test_html_404_is_a_page(admin):
    resp = admin.get("/nowhere")
    assert resp.status_code == 404 and "<h1>404</h1>" in resp.get_data(as_text=True)


def test_health_is_public(client):
    assert client.get("/healthz").get_json()["status"] == "ok"


def test_security_headers(admin):
    resp = admin.get("/")
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["Cache-Control"] == "no-store"


def test_htmx_is_served_by_the_appliance(admin):
    page = admin.get("/").get_data(as_text=True)
    assert '<script src="/static/vendor/htmx.min.js?v=' in page
    assert "//" not in page.split('<script src="')[1].split('"')[0]  # no CDN
    js = admin.get("/static/vendor/htmx.min.js")
    assert js.status_code == 200 and b"htmx" in js.data[:2000]
