"""The home page at a glance: each plugin's card (appliance_home_summary) with its figures,
table and charts' numbers, from a handful of queries whatever the number of enterprises."""

import json
import re
from datetime import datetime, timedelta
from html import unescape

from sqlalchemy import event

from appliance import hookimpl
from appliance.db import db, utcnow
from appliance.models import Enterprise, JobRun
from appliance.plugins.network_elements.models import Element, Licence, User
from appliance.plugins.peering.models import Peer
from appliance.plugins.sync.models import Synchronizer
from appliance.summary import Chart, Figure, Summary


class Card:
    """A partner's card: what the hook returns is what the page shows."""

    @hookimpl
    def appliance_home_summary(self):
        return [Summary("Greetings", order=5, figures=[Figure("Said today", 1234, "ok")],
                        columns=["Greeting", "Times"], rows=[["Hello", 7], ["Hi", 3]],
                        charts=[Chart("Greetings per day", "bars", ["Mon", "Tue"],
                                      {"Said": [4, 9]})],
                        link=("All greetings", "/hello/"))]


def charts(html: str) -> list[dict]:
    return [json.loads(unescape(m)) for m in re.findall(r"data-chart='([^']*)'", html)]


def test_hook_appliance_home_summary_cards_show_their_numbers_and_charts(make_app):
    app = make_app(EXTRA_PLUGINS=[("card", Card())])
    from tests.conftest import PASSWORD, Browser

    with app.app_context():
        from appliance.auth import create_admin
        create_admin("admin", PASSWORD)
    adm = Browser(app.test_client())
    adm.login()
    html = adm.get("/").get_data(as_text=True)
    card = html[html.index('aria-label="Greetings"'):]
    card = card[:card.index("</section>")]
    assert '<dt>Said today</dt><dd><span class="badge ok">1,234</span></dd>' in card
    assert "<tr><td>Hello</td><td>7</td></tr>" in card
    assert charts(card) == [{"kind": "bars", "x": ["Mon", "Tue"], "series": [["Said", [4, 9]]],
                             "unit": ""}]
    # The numbers are in the page, open, whether or not a script draws the chart.
    assert '<details class="chart-data" open>' in card
    assert '<tr><th scope="row">Tue</th><td>9</td></tr>' in card
    assert '<a href="/hello/">All greetings</a>' in card
    assert 'src="/static/vendor/uPlot.iife.min.js?v=' in html
    assert 'src="/static/charts.js?v=' in html
    assert "<script>" not in html  # no inline script: the CSP allows none


def _seed(app, n_ents: int, first: int = 0) -> None:
    """n enterprises, each with a synchronizer and 10 runs (the 6th failed), a scheduled next
    sync, a connected and an unreachable peer; licences held and used."""
    with app.app_context():
        jobs = app.extensions["appliance"].jobs
        ents = [Enterprise(name=f"Ent {i:02d}", eid=f"ent-{i:02d}")
                for i in range(first, first + n_ents)]
        db.session.add_all(ents)
        db.session.flush()
        start = utcnow() - timedelta(days=1)
        for ent in ents:
            syn = Synchronizer(enterprise_id=ent.id, kind="ldap", name=f"AD of {ent.name}")
            db.session.add(syn)
            db.session.add_all([
                Peer(enterprise_id=ent.id, kind="mcs", description="North", hostname="n.example",
                     status="connected"),
                Peer(enterprise_id=ent.id, kind="mcs", description="South",
                     hostname="s.example", status="unreachable")])
            db.session.flush()
            db.session.add_all([JobRun(
                kind="sync.run", target=syn.source, label=f"Synchronize {syn.name}",
                state="failed" if k == 5 else "succeeded", message="LDAP down" if k == 5 else "",
                counts=json.dumps({"added": k, "updated": 2 * k, "removed": 1}),
                created_at=start + timedelta(hours=k), finished_at=start + timedelta(hours=k))
                for k in range(10)])
            jobs.schedule("sync.run", syn.source, {"days": 1, "hour": 3, "minute": 0, "ampm": "AM"},
                          now=datetime(2026, 12, 3, 1))
        if first:
            db.session.commit()
            return
        element = Element(name="MiVB 1", platform="MiVoice Business", address="10.0.0.1")
        db.session.add(element)
        db.session.flush()
        db.session.add_all([Licence(type="MiCollab Client", available=10),
                            Licence(type="Teleworker", available=2)])
        db.session.add_all([User(login=f"u{i}", element_id=element.id,
                                 services=json.dumps(["MiCollab Client", "Teleworker"]))
                            for i in range(2)])
        db.session.commit()


def _admin(app):
    from appliance.auth import create_admin
    from tests.conftest import PASSWORD, Browser

    with app.app_context():
        create_admin("admin", PASSWORD)
    adm = Browser(app.test_client())
    adm.login()
    return adm


def _card(html: str, title: str) -> str:
    card = html[html.index(f'aria-label="{title}"'):]
    return card[:card.index("</section>")]


def test_home_shows_syncs_peers_licences_and_jobs_needing_attention(make_app):
    app = make_app()
    _seed(app, 2)
    adm = _admin(app)
    html = adm.get("/").get_data(as_text=True)

    sync = _card(html, "Synchronization")
    assert "<dt>Synchronizers</dt><dd>2</dd>" in sync
    row = re.search(r"<tr><td>Ent 00</td>(.*?)</tr>", sync).group(1)
    assert "<td>1</td>" in row and "<td>2026-12-03 03:00 UTC</td>" in row  # the next sync
    assert "9 added, 18 updated, 1 removed" in row and 'badge ok">succeeded' in row
    lines = charts(sync)
    assert len(lines) == 2 and lines[0]["kind"] == "lines"
    assert [name for name, _ in lines[0]["series"]] == ["Added", "Updated", "Removed"]
    assert lines[0]["series"][0][1] == [2, 3, 4, 5, 6, 7, 8, 9]  # the last 8 runs
    assert lines[0]["series"][2][1] == [1] * 8

    peers = _card(html, "Peers")
    assert '<dt>Connected</dt><dd><span class="badge ok">2</span>' in peers
    assert '<dt>Not connected</dt><dd><span class="badge bad">2</span>' in peers
    assert 'badge bad">Unreachable</span>' in peers

    licences = _card(html, "Licences")
    bars = charts(licences)
    assert bars[0]["kind"] == "bars" and bars[0]["unit"] == "%"
    assert dict(zip(bars[0]["x"], bars[0]["series"][0][1], strict=True)) == {
        "MiCollab Client": 20, "NuPoint Voice Mail": 0, "Audio Web Video": 0, "Teleworker": 100}
    assert '<dt>Types all used</dt><dd><span class="badge warn">1</span>' in licences

    jobs = _card(html, "Jobs needing attention")
    assert '<dt>Failed or interrupted, last 7 days</dt><dd><span class="badge bad">2</span>' in jobs
    assert jobs.count("LDAP down") == 2 and 'href="/jobs?state=attention"' in jobs


def test_the_home_page_costs_the_same_few_queries_for_3_or_30_enterprises(make_app):
    app = make_app()
    _seed(app, 3)
    adm = _admin(app)
    adm.get("/")  # the session's own first queries
    with app.app_context():
        engine = db.engine

    def statements() -> int:
        seen = []
        listen = lambda *a: seen.append(a[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listen)
        try:
            html = adm.get("/").get_data(as_text=True)
        finally:
            event.remove(engine, "before_cursor_execute", listen)
        return len(seen), html

    few, _ = statements()
    _seed(app, 27, first=3)
    many, html = statements()
    assert few == many and many <= 20, (few, many)
    assert "<dt>Synchronizers</dt><dd>30</dd>" in html
    assert len(re.findall(r"<tr><td>Ent \d\d</td>", _card(html, "Synchronization"))) == 12
