"""Two real appliance processes peering over real HTTPS (nginx, a test CA) on loopback."""

import pytest
import trustme

from tests import peer_sites
from tests.peer_sites import ent_id, peer_body, trust


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def sites(tmp_path_factory, ca):
    """A (a.test on 127.0.0.1) and B (b.test on 127.0.0.2); B's enterprise bravo has 1,234
    contacts and trusts a.test."""
    yield from peer_sites.run_pair(tmp_path_factory.mktemp("peers"), ca, 1234)


def sync(site, peer_id) -> dict:
    status, run = site.api("POST", f"/api/v1/peering/peers/{peer_id}/sync")
    assert status == 202, run
    return site.wait_job(run["run_id"])


def contacts(site, ent) -> dict:
    return site.api("GET", f"/api/v1/enterprises/{ent}/contacts?per_page=1000&sort=email")[1]


def test_select_enterprise_sync_now_and_status(sites):
    a, b = sites
    key = trust(b, "bravo", "a.test")
    alpha = ent_id(a, "alpha")

    # "Select Enterprise": A asks B over the peer link which enterprises B offers it.
    status, offered = a.api("POST", "/api/v1/peering/peer-enterprises",
                            {"hostname": "b.test", "port": b.port, "key": key})
    assert status == 200, offered
    assert [e["eid"] for e in offered["items"]] == ["bravo"]

    status, peer = a.api("POST", f"/api/v1/peering/enterprises/{alpha}/peers",
                         peer_body(b, key))
    assert status == 201, peer
    assert peer["notes"] == [] and "key" not in peer and peer["key_set"] is True
    assert peer["dialing"] == {"prefix": "-9", "digits": "9", "append_outgoing_digit": False}
    assert peer["next_sync_at"]

    run = sync(a, peer["id"])
    assert run["state"] == "succeeded", run
    assert run["counts"]["added"] == 1234 and run["counts"]["removed"] == 0
    got = contacts(a, alpha)
    assert got["total"] == 1234
    first = got["items"][0]
    assert first["source"] == f"peering:{peer['id']}" and first["source_label"] == "Bravo peer"
    assert first["email"].endswith("@bravo.test")

    status, run = a.api("POST", f"/api/v1/peering/enterprises/{alpha}/check")
    assert a.wait_job(run["run_id"])["state"] == "succeeded"
    peer = a.api("GET", f"/api/v1/peering/peers/{peer['id']}")[1]
    assert peer["status"] == "connected", peer
    assert peer["version"] == "9.4"  # the MiCollab peering it speaks (PEERING_VERSION)
    assert peer["warning"] is None

    # A second sync with nothing changed on B changes nothing on A.
    run = sync(a, peer["id"])
    assert run["counts"] == {"added": 0, "updated": 0, "removed": 0, "unchanged": 1234,
                             "failed": 0}


def test_certificate_for_another_name_is_refused(sites):
    a, b = sites
    alpha = ent_id(a, "alpha")
    # wrong.test resolves to B, whose certificate is only for b.test.
    status, body = a.api("POST", f"/api/v1/peering/enterprises/{alpha}/peers",
                         peer_body(b, "apk_whatever", "Wrong name", hostname="wrong.test"))
    assert status == 422, body
    field = body["fields"][0]
    assert field["field"] == "hostname" and field["rule"] == "certificate_mismatch"
    assert "not valid for the hostname wrong.test" in field["message"]
    names = [p["description"] for p in a.api(
        "GET", f"/api/v1/peering/enterprises/{alpha}/peers")[1]["items"]]
    assert "Wrong name" not in names


def test_a_peer_that_is_not_trusted_is_refused(sites):
    a, b = sites
    alpha = ent_id(a, "alpha")
    status, peer = a.api("POST", f"/api/v1/peering/enterprises/{alpha}/peers",
                         peer_body(b, "apk_not-a-key-b-issued", "Untrusted"))
    assert status == 201, peer
    run = sync(a, peer["id"])
    assert run["state"] == "failed"
    assert "does not trust this appliance" in run["message"]
    assert "Nothing was changed" in run["message"]
    peer = a.api("GET", f"/api/v1/peering/peers/{peer['id']}")[1]
    assert peer["status"] == "not_trusted"

    # A real key, but for an enterprise that does not exist on B.
    key = trust(b, "bravo", "a.test")
    a.api("PUT", f"/api/v1/peering/peers/{peer['id']}", {"key": key, "peer_eid": "nope"})
    status, run = a.api("POST", f"/api/v1/peering/enterprises/{alpha}/check")
    a.wait_job(run["run_id"])
    peer = a.api("GET", f"/api/v1/peering/peers/{peer['id']}")[1]
    assert peer["status"] == "enterprise_not_found", peer
    assert "bravo" in peer["status_message"]
    a.api("DELETE", f"/api/v1/peering/peers/{peer['id']}")


def test_key_from_the_wrong_address_is_refused(sites):
    """B issued the key to a.test; the same key sent from another address is refused."""
    a, b = sites
    key = trust(b, "bravo", "203.0.113.7")
    status, body = a.api("POST", "/api/v1/peering/peer-enterprises",
                         {"hostname": "b.test", "port": b.port, "key": key})
    assert status == 502 and body["error"] == "not_trusted"
    assert "issued to 203.0.113.7" in body["message"] and "127.0.0.1" in body["message"]


def test_peering_two_enterprises_on_the_same_appliance(sites):
    a, _b = sites
    alpha, local = ent_id(a, "alpha"), ent_id(a, "alpha-two")
    key = trust(a, "alpha-two", "a.test")
    status, peer = a.api("POST", f"/api/v1/peering/enterprises/{alpha}/peers", {
        **peer_body(a, key, "Same box", eid="alpha-two"), "hostname": "a.test",
        "port": a.port})
    assert status == 201, peer
    run = sync(a, peer["id"])
    # alpha-two has no contacts of its own; what it imported from peers is never re-offered.
    assert run["state"] == "succeeded" and run["counts"]["added"] == 0, run
    status, offered = a.api("POST", "/api/v1/peering/peer-enterprises",
                            {"hostname": "a.test", "port": a.port, "key": key})
    assert [e["eid"] for e in offered["items"]] == ["alpha-two"]
    assert local != alpha


def test_peer_stopped_mid_sync_removes_nothing(tmp_path, ca):
    a, b = peer_sites.start_pair(tmp_path, ca, 5_000, gate=True)
    try:
        key = trust(b, "bravo", "a.test")
        alpha = ent_id(a, "alpha")
        status, peer = a.api("POST", f"/api/v1/peering/enterprises/{alpha}/peers",
                             peer_body(b, key))
        assert sync(a, peer["id"])["counts"]["added"] == 5_000
        before = contacts(a, alpha)

        # Stop B once a full re-read (asked for) has read two pages and asks for the third.
        b.gate.hold(r"^GET /peer/v1/enterprises/bravo/contacts\?", nth=3)
        status, run = a.api("POST", f"/api/v1/peering/peers/{peer['id']}/sync?full=1")
        assert status == 202, run
        assert b.gate.held.wait(30), a.api("GET", f"/api/v1/jobs/{run['run_id']}")[1]
        now = a.api("GET", f"/api/v1/jobs/{run['run_id']}")[1]
        assert now["state"] == "running" and now["message"] == "Read 1,000 of 5,000 contacts"
        b.stop()
        run = a.wait_job(run["run_id"])
        assert run["state"] == "failed", run
        assert "Nothing was changed" in run["message"]
        after = contacts(a, alpha)
        assert after["total"] == 5_000 and after["items"] == before["items"]
        peer = a.api("GET", f"/api/v1/peering/peers/{peer['id']}")[1]
        assert peer["status"] == "unreachable", peer
    finally:
        b.stop()
        a.stop()
