"""Numbers from outside: every integer has a range, ids beyond 64 bits are not found, and the
paging arguments are checked in one place (appliance/listing.py)."""

import re

import pytest

from appliance.validation import MAX_ID, Field, Invalid, int_range

HUGE = 10**30
MAX_INT = 2**31 - 1  # validation.MAX_INT: an integer field's bound when it names none
MAX_PER_PAGE = 1000  # listing.MAX_PER_PAGE


def _ent(api) -> int:
    return api("POST", "/api/v1/enterprises", json={"name": "Acme", "eid": "acme"}).get_json()["id"]


def _fields(resp) -> dict:
    assert resp.status_code == 422, (resp.status_code, resp.get_data(as_text=True))
    return {f["field"]: f["message"] for f in resp.get_json()["fields"]}


def test_an_integer_field_without_a_range_gets_the_default_one():
    count = Field("count", "Count", type="integer")
    assert count.json_schema()["maximum"] == MAX_INT and count.json_schema()["minimum"] == 0
    with pytest.raises(Invalid) as exc:
        count.clean(HUGE)
    assert exc.value.errors["count"] == ("range", f"Count must be 0 to {MAX_INT}")


@pytest.mark.parametrize("raw", [True, 1.5, float("inf"), float("nan"), "abc", "1e3", "١٢",
                                 [], {}, "9" * 5000])
def test_what_is_not_a_whole_number_is_refused(raw):
    port = Field("port", "Port", (int_range(1, 65535),), type="integer")
    with pytest.raises(Invalid) as exc:
        port.clean(raw)
    assert exc.value.errors["port"][0] in ("integer", "range")


@pytest.mark.parametrize("raw,value", [(443, 443), ("443", 443), (" 443 ", 443), (443.0, 443)])
def test_whole_numbers_are_taken(raw, value):
    assert Field("port", "Port", (int_range(1, 65535),), type="integer").clean(raw) == value


def test_every_integer_in_the_api_document_is_bounded(api):
    """What a caller sends: request bodies and parameters (answers may hold any count)."""
    spec = api("GET", "/api/v1/openapi.json").get_json()
    found = []

    def walk(node, where):
        if isinstance(node, dict):
            if "integer" in str(node.get("type")):
                found.append((where, "minimum" in node and "maximum" in node))
            for k, v in node.items():
                walk(v, f"{where}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}/{i}")
    walk({k: v for k, v in spec["components"]["schemas"].items() if k != "Error"}, "schemas")
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            walk([op.get("parameters", []), op.get("requestBody", {})], f"{method} {path}")
    assert len(found) > 40
    assert [where for where, bounded in found if not bounded] == []


def test_huge_numbers_in_bodies_answer_422_naming_the_field(api):
    ent = _ent(api)
    assert "port" in _fields(api("POST", "/api/v1/network-elements/elements", json={
        "name": "E1", "platform": "MiVoice Business", "address": "10.0.0.5", "port": HUGE}))
    # JSON's Infinity is read as a float; it is not a port either.
    resp = api("POST", "/api/v1/network-elements/elements", data='{"name": "E2", "platform": '
               '"MiVoice Business", "address": "10.0.0.5", "port": Infinity}',
               content_type="application/json")
    assert "port" in _fields(resp)
    assert "expires_days" in _fields(api("POST", "/api/v1/tokens", json={
        "name": "t", "expires_days": HUGE}))
    assert "max_drop" in _fields(api("POST", f"/api/v1/sync/enterprises/{ent}/ldap", json={
        "name": "HQ", "servers": "ldap.test", "security": "none", "base_dn": "dc=x",
        "filter": "(cn=*)", "scope": "sub", "page_size": 5, "preset": "OpenLDAP",
        "max_drop": HUGE, "days": 1, "hour": 1, "minute": 0, "ampm": "AM"}))


def test_licence_counts_are_bounded(api):
    fields = _fields(api("PUT", "/api/v1/network-elements/licences", json={
        "items": [{"type": "MiCollab Client", "available": HUGE}]}))
    assert fields == {"MiCollab Client":
                      f"MiCollab Client: available must be a whole number, 0 to {MAX_INT}"}
    ok = api("PUT", "/api/v1/network-elements/licences", json={
        "items": [{"type": "MiCollab Client", "available": MAX_INT}]})
    assert ok.status_code == 200


def _int_urls(app, prefix: str):
    """Every route of `prefix` with an <int:...> part, with that part HUGE, and its methods."""
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(prefix) and "<int:" in rule.rule:
            url = re.sub(r"<int:\w+>", str(HUGE), rule.rule)
            url = re.sub(r"<(\w+:)?\w+>", "locations", url)
            yield url, sorted(rule.methods - {"HEAD", "OPTIONS"})


def test_ids_beyond_64_bits_are_not_found_in_the_api(app, api):
    urls = list(_int_urls(app, "/api/v1/"))
    assert len(urls) > 20
    for url, methods in urls:
        for method in methods:
            resp = api(method, url, json={})
            assert resp.status_code == 404, (method, url, resp.status_code)
            assert resp.get_json()["error"] == "not_found"


def test_ids_beyond_64_bits_are_not_found_in_pages(app, admin):
    urls = list(_int_urls(app, "/"))
    assert len(urls) > 10
    for url, methods in urls:
        if url.startswith("/api/"):
            continue
        for method in methods:
            resp = admin.get(url) if method == "GET" else admin.post(url)
            assert resp.status_code == 404, (method, url, resp.status_code)


def test_the_largest_id_is_simply_not_there(api):
    resp = api("GET", f"/api/v1/enterprises/{MAX_ID}")
    assert resp.status_code == 404 and resp.get_json()["message"] == "No such enterprise"
    # One more is past what an INTEGER column holds on PostgreSQL: no route takes it.
    assert api("GET", f"/api/v1/enterprises/{MAX_ID + 1}").status_code == 404


@pytest.mark.parametrize("query,field", [
    ("per_page=-1", "per_page"), ("per_page=0", "per_page"), ("per_page=abc", "per_page"),
    (f"per_page={MAX_PER_PAGE + 1}", "per_page"), (f"per_page={HUGE}", "per_page"),
    ("page=0", "page"), ("page=abc", "page"), (f"page={HUGE}", "page"), ("page=1.5", "page"),
])
def test_paging_arguments_are_checked(api, query, field):
    ent = _ent(api)
    for url in ("/api/v1/enterprises", f"/api/v1/enterprises/{ent}/contacts",
                f"/api/v1/enterprises/{ent}/accounts", "/api/v1/audit", "/api/v1/jobs",
                "/api/v1/network-elements/users", f"/api/v1/peering/enterprises/{ent}/peers"):
        resp = api("GET", f"{url}?{query}")
        assert field in _fields(resp), url


def test_per_page_is_honoured_within_its_bounds(api):
    for n in range(3):
        api("POST", "/api/v1/enterprises", json={"name": f"E{n}", "eid": f"ent{n}"})
    one = api("GET", "/api/v1/enterprises?per_page=1&page=2").get_json()
    assert (len(one["items"]), one["page"], one["pages"], one["total"]) == (1, 2, 3, 3)
    last = api("GET", f"/api/v1/enterprises?per_page={MAX_PER_PAGE}&page=99").get_json()
    assert (len(last["items"]), last["page"]) == (3, 1)


def test_a_page_with_a_bad_page_number_says_so(admin):
    resp = admin.get("/enterprises?page=abc")
    assert resp.status_code == 422 and "page must be a whole number" in resp.get_data(as_text=True)
    assert admin.get(f"/audit?page={HUGE}").status_code == 422
    assert admin.get("/audit?until=9999-12-31").status_code == 200
    assert admin.get("/network-elements/users?element=" + str(HUGE)).status_code == 200


def test_audit_dates_at_the_end_of_the_calendar(api):
    resp = api("GET", "/api/v1/audit?since=9999-12-31&until=9999-12-31")
    assert resp.status_code == 200 and resp.get_json()["total"] == 0


def test_the_peer_link_refuses_a_huge_cursor(app, api, client):
    ent = _ent(api)
    key = api("POST", f"/api/v1/enterprises/{ent}/trusted-servers",
              json={"address": "127.0.0.1"}).get_json()["peer_key"]
    peer = {"Authorization": f"Peer {key}"}
    ok = client.get("/peer/v1/enterprises/acme/contacts?after=0", headers=peer)
    assert ok.status_code == 200, ok.get_json()
    for query in (f"after={HUGE}", "after=-1", "after=abc", f"limit={HUGE}"):
        resp = client.get(f"/peer/v1/enterprises/acme/contacts?{query}", headers=peer)
        assert resp.status_code == 400, (query, resp.get_json())
        assert resp.get_json()["error"] == "invalid"
    big = client.get("/peer/v1/enterprises/acme/contacts?limit=5000", headers=peer)
    assert big.status_code == 200  # a page larger than the link gives is cut to its size


def test_select_enterprise_page_refuses_a_huge_port(app, admin, api):
    _ent(api)
    resp = admin.post("/peering/enterprises", data={"hostname": "peer.test", "port": str(HUGE),
                                                    "key": "apk_x"}, htmx=True)
    assert resp.status_code == 422
    assert "HTTPS port must be 1 to 65535" in resp.get_data(as_text=True)


def test_the_bounds_are_the_ones_documented():
    from appliance.listing import MAX_PER_PAGE as per_page
    from appliance.validation import MAX_INT as max_int
    assert (max_int, per_page) == (MAX_INT, MAX_PER_PAGE)
