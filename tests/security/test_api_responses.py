"""The OpenAPI document declares every answer an operation gives, errors with one schema;
a 405 says which methods are allowed; HEAD and OPTIONS never fail."""

import re

ERROR_REF = {"$ref": "#/components/schemas/Error"}


def _operations(spec):
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            yield f"{method.upper()} {path}", op


def test_every_operation_declares_its_responses(api):
    spec = api("GET", "/api/v1/openapi.json").get_json()
    ops = list(_operations(spec))
    assert len(ops) > 70
    for name, op in ops:
        codes = set(op["responses"])
        success = [c for c in codes if c.startswith("2")]
        assert success, name
        for code in set(success) - {"204"}:
            assert op["responses"][code]["content"]["application/json"]["schema"], name
        assert {"400", "401", "413", "503"} <= codes, name
        if any(p["in"] == "path" for p in op.get("parameters", [])):
            assert "404" in codes, name
        if "requestBody" in op or any(p["in"] == "query" for p in op.get("parameters", [])):
            assert "422" in codes, name
        for code, answer in op["responses"].items():
            if code >= "400":
                assert answer["content"]["application/json"]["schema"] == ERROR_REF, (name, code)


def test_conflicts_and_outside_failures_are_declared_where_they_happen(api):
    spec = api("GET", "/api/v1/openapi.json").get_json()
    ops = dict(_operations(spec))
    for name in ("DELETE /api/v1/peering/peers/{peer_id}",
                 "DELETE /api/v1/sync/synchronizers/{syn_id}",
                 "POST /api/v1/network-elements/elements/{eid}/ids/run",
                 "DELETE /api/v1/network-elements/elements/{eid}"):
        assert "409" in ops[name]["responses"], name
    for name in ("POST /api/v1/sync/test-ldap", "POST /api/v1/peering/test-ldap",
                 "POST /api/v1/peering/peer-enterprises",
                 "POST /api/v1/network-elements/elements/{eid}/ids/test"):
        assert "502" in ops[name]["responses"], name
    bulk = ops["POST /api/v1/network-elements/bulk"]["requestBody"]["content"]
    assert bulk["multipart/form-data"]["schema"]["required"] == ["file"]


def test_a_declared_answer_is_the_one_given(api):
    spec = api("GET", "/api/v1/openapi.json").get_json()
    ops = dict(_operations(spec))
    created = api("POST", "/api/v1/enterprises", json={"name": "Acme", "eid": "acme"})
    schema = ops["POST /api/v1/enterprises"]["responses"]["201"]["content"]["application/json"]
    assert set(schema["schema"]["required"]) <= set(created.get_json())
    missing = api("GET", "/api/v1/enterprises/99")
    assert missing.status_code == 404 and set(missing.get_json()) >= {"error", "message"}
    conflict = api("POST", "/api/v1/network-elements/elements/99/ids/run")
    assert conflict.status_code == 404


def test_405_says_which_methods_are_allowed(api, admin):
    resp = api("PATCH", "/api/v1/plugins")
    assert resp.status_code == 405 and resp.get_json()["error"] == "method_not_allowed"
    assert set(re.split(r",\s*", resp.headers["Allow"])) == {"GET", "HEAD", "OPTIONS"}
    page = admin.client.delete("/enterprises")
    assert page.status_code == 405
    assert {"GET", "POST"} <= set(re.split(r",\s*", page.headers["Allow"]))


def test_head_and_options_never_fail(app, api):
    api("POST", "/api/v1/enterprises", json={"name": "Acme", "eid": "acme"})
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        url = re.sub(r"<int:\w+>", "1", rule.rule)
        url = re.sub(r"<(\w+:)?\w+>", "locations", url)
        for method in ("HEAD", "OPTIONS"):
            resp = api(method, url)
            assert resp.status_code < 500, (method, url, resp.status_code)
            if method == "OPTIONS" and "/platform/" not in url:  # not an admin's token there
                assert resp.status_code == 200 and "Allow" in resp.headers, url


def test_a_body_that_is_not_an_object_is_422(api):
    for method, url in (("PUT", "/api/v1/federation/servers"),
                        ("POST", "/api/v1/federation/servers"),
                        ("PUT", "/api/v1/network-elements/licences")):
        resp = api(method, url, data="1.5", content_type="application/json")
        assert resp.status_code == 422, (method, url, resp.status_code)
