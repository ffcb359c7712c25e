"""Two real appliance processes peering over real HTTPS (nginx, a test CA) on loopback."""

from datetime import datetime, timedelta

import pytest
import trustme
from sqlalchemy import select

from appliance.db import db
from appliance.directory import replace_source
from appliance.models import Account, Contact, ContactTombstone, Enterprise
from tests import peer_sites
from tests.peer_sites import ent_id, peer_body, seed, trust


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def sites(tmp_path_factory, ca):
    """A (a.test on 127.0.0.1) and B (b.test on 127.0.0.2, behind a CountingGate); B's
    enterprise bravo has 1,234 contacts and trusts a.test."""
    yield from peer_sites.run_pair(tmp_path_factory.mktemp("peers"), ca, 1234, gate=True)


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


# --- the change feed between two appliances -----------------------------------------------


def people(b, keep=range(10), **changes):
    """Make B's enterprise delta's directory d<i> for i in `keep` (some fields changed)."""
    with b.database():
        ent = db.session.scalar(select(Enterprise).where(Enterprise.eid == "delta"))
        replace_source(Contact, ent, "sync:1", "Directory", [
            {"external_id": f"d{i}", "first_name": f"Dee{i}", "last_name": f"Delta{i}",
             "phone": f"{300 + i}", **changes.get(f"d{i}", {})} for i in keep],
            allow_drop=True)


def rekey(a, b, peer_id) -> None:
    """A fresh key for a.test (the other tests replace it too), given to A's peer."""
    a.api("PUT", f"/api/v1/peering/peers/{peer_id}", {"key": trust(b, "delta", "a.test")})


def asked(b) -> list[str]:
    """The requests for delta's contacts B served (status checks aside)."""
    return [line for line in b.gate.lines if "/peer/v1/enterprises/delta/" in line]


def directory(a, ent) -> dict:
    """A's contacts of `ent` by B's name for them (d<i>: first name Dee<i>)."""
    return {c["first_name"].replace("Dee", "d"): c for c in contacts(a, ent)["items"]}


@pytest.fixture(scope="module")
def delta(sites):
    """B's enterprise delta (IM domain delta.test; d0 is also an account) synced in full
    into A's enterprise echo: (A, B, the peer's id, echo's id)."""
    a, b = sites
    with b.database():
        db.session.add(Enterprise(eid="delta", name="Delta", im_domain="delta.test"))
        db.session.commit()
    people(b)
    with b.database():
        ent = db.session.scalar(select(Enterprise).where(Enterprise.eid == "delta"))
        replace_source(Account, ent, "sync:1", "Directory",
                       [{"external_id": "d0", "login": "dee"}])
    echo = ent_id(a, "echo")
    status, peer = a.api("POST", f"/api/v1/peering/enterprises/{echo}/peers",
                         peer_body(b, trust(b, "delta", "a.test"), "Delta peer", eid="delta"))
    assert status == 201, peer
    run = sync(a, peer["id"])
    assert run["counts"]["added"] == 10, run
    assert run["message"].startswith("Full fetch (first sync) from Delta peer"), run
    return a, b, peer["id"], echo


def test_a_resync_reads_only_what_changed(delta):
    a, b, peer_id, echo = delta
    rekey(a, b, peer_id)
    assert directory(a, echo)["d0"]["im_address"] == "dee@delta.test"
    people(b, [i for i in range(11) if i != 2], d1={"phone": "999"})
    with b.database():  # the account of d0 renamed: peers reach it at its new address
        ent = db.session.scalar(select(Enterprise).where(Enterprise.eid == "delta"))
        replace_source(Account, ent, "sync:1", "Directory",
                       [{"external_id": "d0", "login": "deanna"}])
    b.gate.lines.clear()
    run = sync(a, peer_id)
    assert run["counts"] == {"added": 1, "updated": 2, "removed": 1, "unchanged": 7,
                             "failed": 0}, run
    assert run["message"].startswith("Changes since the last sync from Delta peer"), run
    assert len(asked(b)) == 1 and "/changes?since=" in asked(b)[0]
    got = directory(a, echo)
    assert "d2" not in got and got["d10"]["last_name"] == "Delta10"
    assert got["d1"]["phone"] == "999" and got["d0"]["im_address"] == "deanna@delta.test"

    # Nothing changed: one request, for the changes, that brings none.
    b.gate.lines.clear()
    run = sync(a, peer_id)
    assert run["counts"] == {"added": 0, "updated": 0, "removed": 0, "unchanged": 10,
                             "failed": 0}, run
    assert len(asked(b)) == 1 and "/changes?since=" in asked(b)[0]
    assert "after=" not in asked(b)[0]


def test_an_unknown_cursor_falls_back_to_a_full_fetch(delta):
    a, b, peer_id, echo = delta
    rekey(a, b, peer_id)
    people(b, [i for i in range(11) if i not in (2, 3)], d1={"phone": "999"})
    with b.database():  # d3's removal is older than B keeps removals
        db.session.execute(ContactTombstone.__table__.update().values(
            at=datetime.now() - timedelta(days=40)))
        db.session.commit()
    b.gate.lines.clear()
    run = sync(a, peer_id)
    assert run["state"] == "succeeded", run
    assert run["message"].startswith("Full fetch (b.test no longer knows the changes since "
                                     "the last sync: Cursor "), run
    assert "no longer kept" in run["message"] and run["counts"]["removed"] == 1
    assert "/changes?" in asked(b)[0] and "/contacts?" in asked(b)[1]
    assert "d3" not in directory(a, echo)
    run = sync(a, peer_id)  # and then only what changed again
    assert run["message"].startswith("Changes since the last sync"), run


def test_the_safety_rules_hold_for_changes(delta):
    a, b, peer_id, echo = delta
    rekey(a, b, peer_id)
    before = directory(a, echo)
    people(b, [0, 1, 4])  # 6 of 9 gone (7 of 10): beyond the 50% safety threshold
    run = sync(a, peer_id)
    assert run["state"] == "failed" and "safety threshold" in run["message"], run
    assert directory(a, echo) == before
    status, run = a.api("POST", f"/api/v1/peering/peers/{peer_id}/sync?allow_drop=1")
    run = a.wait_job(run["run_id"])
    assert run["state"] == "succeeded" and run["counts"]["removed"] == len(before) - 3, run
    assert sorted(directory(a, echo)) == ["d0", "d1", "d4"]

    # B stops answering while A reads its changes: nothing changes, nothing is lost.
    people(b, [0, 1, 4, 20])
    b.gate.hold(r"^GET /peer/v1/enterprises/delta/changes\?")
    status, run = a.api("POST", f"/api/v1/peering/peers/{peer_id}/sync")
    assert b.gate.held.wait(30)
    b.gate.release()
    run = a.wait_job(run["run_id"])
    assert run["state"] == "failed" and "Nothing was changed" in run["message"], run
    assert sorted(directory(a, echo)) == ["d0", "d1", "d4"]
    run = sync(a, peer_id)
    assert run["counts"]["added"] == 1 and "d20" in directory(a, echo), run


# --- appliances of different versions: one without the change feed ------------------------


@pytest.fixture(scope="module")
def old(sites, tmp_path_factory, ca):
    """C (c.test on 127.0.0.3, behind a CountingGate): an appliance without the change
    feed (peer_sites.OLD), whose enterprise charlie has 30 contacts."""
    root = tmp_path_factory.mktemp("old")
    seed(root / "c.test", "charlie", 30)
    site = peer_sites.start(root, "c.test", ca, gate=True, env=peer_sites.OLD)
    yield site
    site.stop()


def test_a_peer_without_the_feed_is_read_whole_every_time(sites, old):
    a, _ = sites
    foxtrot = ent_id(a, "foxtrot")
    status, peer = a.api("POST", f"/api/v1/peering/enterprises/{foxtrot}/peers",
                         peer_body(old, trust(old, "charlie", "a.test"), "Old peer",
                                   eid="charlie"))
    assert status == 201, peer
    assert sync(a, peer["id"])["counts"]["added"] == 30
    with old.database():
        ent = db.session.scalar(select(Enterprise).where(Enterprise.eid == "charlie"))
        replace_source(Contact, ent, "sync:1", "Directory", [
            {"external_id": f"u{i}", "first_name": f"First{i}", "last_name": f"Last{i:05d}",
             "email": f"user{i}@charlie.test", "phone": f"{2000 + i}",
             "im_address": f"user{i}@charlie.test"} for i in range(1, 30)])
    old.gate.lines.clear()
    run = sync(a, peer["id"])
    assert run["counts"]["removed"] == 1 and run["counts"]["unchanged"] == 29, run
    assert run["message"].startswith("Full fetch (c.test offers no change feed"), run
    assert old.gate.lines and all("/contacts?" in line for line in old.gate.lines)
    assert a.api("GET", f"/api/v1/peering/peers/{peer['id']}")[1]["changes_offered"] is False


def test_an_appliance_without_the_feed_reads_a_new_peer_whole(sites, old):
    """C as the client: it reads B's pages as before (its requests come from 127.0.0.1,
    a.test's address, so B trusts a.test)."""
    _, b = sites
    golf = ent_id(old, "golf")
    status, peer = old.api("POST", f"/api/v1/peering/enterprises/{golf}/peers",
                           peer_body(b, trust(b, "bravo", "a.test"), "New peer"))
    assert status == 201, peer
    b.gate.lines.clear()
    for added in (1234, 0):
        run = sync(old, peer["id"])
        assert run["state"] == "succeeded" and run["counts"]["added"] == added, run
        assert run["counts"]["unchanged"] == 1234 - added
        assert run["message"].startswith("Full fetch (the change feed is off here"), run
    assert all("/bravo/contacts?" in line for line in b.gate.lines if "/bravo/" in line)
    assert len([line for line in b.gate.lines if "/bravo/" in line]) == 6  # 3 pages twice


def test_the_full_resync_runs_on_the_admins_schedule(delta):
    from appliance.db import utcnow
    from appliance.plugins.peering.models import Peer
    a, b, peer_id, _echo = delta
    rekey(a, b, peer_id)
    with a.database():  # the last full re-sync was 8 days ago; the default is weekly
        db.session.execute(Peer.__table__.update().where(Peer.id == peer_id).values(
            full_at=utcnow() - timedelta(days=8)))
        db.session.commit()
    run = sync(a, peer_id)
    assert run["message"].startswith("Full fetch (the full re-sync every 7 day(s) is due)"), run
    assert sync(a, peer_id)["message"].startswith("Changes since the last sync")
    status, peer = a.api("PUT", f"/api/v1/peering/peers/{peer_id}", {"full_days": 0})
    assert status == 200 and peer["full_days"] == 0, peer
    run = sync(a, peer_id)
    assert run["message"].startswith("Full fetch (set to read everything at every sync)"), run
