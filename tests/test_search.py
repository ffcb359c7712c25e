"""Search of the Corporate Directory and the Accounts tab through the stores' own indexes
(appliance/search.py): the same rows as the plain substring scan it replaces, whatever the
text, and the index in step with every write path. On the suite's store
(APPLIANCE_TEST_DATABASE): SQLite's FTS5 table, or PostgreSQL's GIN trigram index."""

import random
import re

import pytest
from alembic import command
from flask import render_template_string
from sqlalchemy import func, or_, select, text

from appliance import create_app, listing, migrate
from appliance import search as searching
from appliance.core.accounts import ACCOUNTS
from appliance.core.directory import CONTACTS
from appliance.db import db
from appliance.directory import remove_source, replace_source
from appliance.models import Account, Contact, Enterprise
from appliance.search import MIN_CHARS, condition, declared, pattern
from appliance.validation import MAX_INT
from tests import postgres_server
from tests.test_sync import add_node, sync

# (first name, last name, e-mail, phone): mixed case, accents in both cases, characters
# whose case folds oddly (ß, the Kelvin sign, dotted and dotless i, final sigma), quotes,
# LIKE's own characters, backslashes, FTS5's query syntax, and values of 0 to 2 characters.
PEOPLE = [
    ("Émile", "ZOLA", "emile.zola@example.com", "+33 1 40 00 00 01"),
    ("ÉMILE", "Zola-Dupont", "EMILE@EXAMPLE.COM", "+33 (1) 40-00-00-02"),
    ("émile", "zoë", "zoe@éxample.fr", "0140000003"),
    ("Zoë", "ZOË", "zoë@example.org", ""),
    ("Straße", "STRASSE", "strasse@example.de", "ext. 12"),
    ("Kelvin", "\u212aelvin", "k@example.com", "1"),
    ("İsmail", "ısık", "ISIK@example.com.tr", "12"),
    ("Σίσυφος", "ΣΊΣΥΦΟΣ", "sisyphus@example.gr", "σς"),
    ("Seán", "O'Brien", "sean.o'brien@example.ie", "+353 1 000 0000"),
    ('Say "hi"', 'the "Boss"', "boss@example.com", "+1 555 0100"),
    ("100% sure", "Fifty%", "percent%@example.com", "50%"),
    ("a_b", "under_score", "under_score@example.com", "_"),
    ("back\\slash", "C:\\path\\x", "back\\slash@example.com", "\\\\"),
    ("Ab", "a", "", ""),
    ("McDonald", "MCDONALD", "mcdonald@example.com", "555"),
    ("mcdonald", "Van der Berg", "van  der@example.com", "5"),
    ("Sm😀le", "NEAR", "and@or.not", "*"),
    ("{x}", "last_name : x", "#1#", "enterprise_id"),
    ("x-y", "a.b", "^ab", "abc*"),
]
SPECIALS = [
    "%", "_", "\\", '"', "'", "''", '""', "%%", "a_b", "a%b", "100%", "0%", "\\s", "\\\\",
    "h\\x", "é", "É", "ÉMI", "émi", "Émi", "EMI", "ss", "SS", "ß", "straße", "STRASSE", "k",
    "K", "\u212a", "\u212aelvin", "kelvin", "i", "I", "İ", "ı", "isik", "ISIK", "σ", "Σ", "ς",
    "σίσ", "ΣΊΣ", "😀", "Sm😀", "m😀l", "der b", "der  b", "van  der", "+1 (", "(1)",
    "@éx", "@ÉX", "AND", "and", "OR", "NOT", "NEAR", "*", "abc*", "^ab", "{x}", ":",
    "last_name : x", "#1#", "#2#", "enterprise_id", "-", "x-y", "a.b", "o'b", "O'BRIEN",
    '"hi"', 'say "', "zz", "nobody", "example.com", "ab", "Ab", "AB", "a", "A",
]


@pytest.fixture
def ents(app):
    """Two enterprises holding the same people as contacts and as accounts: a search in
    one must never find the other's."""
    with app.app_context():
        out = []
        for eid in ("one", "two"):
            e = Enterprise(eid=eid, name=eid.title())
            db.session.add(e)
            db.session.commit()
            replace_source(Contact, e, "sync:1", "LDAP", _rows())
            replace_source(Account, e, "sync:1", "LDAP", _rows())
            out.append(e.id)
        return out


def _rows(people=PEOPLE, prefix="p"):
    return [{"external_id": f"{prefix}{i}", "login": f"{prefix}{i}.{last[:3]}", "first_name": first,
             "last_name": last, "email": email, "phone": phone}
            for i, (first, last, email, phone) in enumerate(people)]


def found(people, ent_id, q) -> set[int]:
    """What the tab's search finds (its API list: every page of it)."""
    ent = db.session.get(Enterprise, ent_id)
    page = people.page_of(ent, {"q": q, "per_page": "1000"}, 100, adjustable=True)
    assert page.pages == 1
    return {r.id for r in page.rows}


def scanned(people, ent_id, q) -> set[int]:
    """What the search found before the indexes: ILIKE '%q%' over the searched columns."""
    m = people.model
    return set(db.session.scalars(select(m.id).where(
        m.enterprise_id == ent_id, or_(*(c.ilike(pattern(q), escape="\\")
                                         for c in people.search)))))


def _queries(ent_id) -> list[str]:
    """The special texts, and a sample of the substrings (1 to 4 characters) of the
    stored values, each also in upper and in lower case."""
    values = set()
    for m in (Contact, Account):
        for row in db.session.execute(select(m.first_name, m.last_name, m.email, m.phone)
                                      .where(m.enterprise_id == ent_id)):
            values.update(row)
    subs = sorted({v[i:i + n] for v in values for n in range(1, 5) for i in range(len(v))
                   if v[i:i + n].strip()})
    sample = random.Random(16).sample(subs, min(150, len(subs)))
    return list(dict.fromkeys(q.strip() for s in SPECIALS + sample
                              for q in (s, s.upper(), s.lower()) if q.strip()))


def _ascii_lower(s: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in s)


def test_the_same_rows_as_the_substring_scan(app, ents):
    """Every query, on both tabs: the rows the scan finds, in the right enterprise only.
    On SQLite, ILIKE folds ASCII letters only (É and é differ, so do ß and ss, K and the
    Kelvin sign), and so does the index; on PostgreSQL ILIKE folds as lower() does in the
    database's locale (É and é match, ß and ss do not), and so does the condition."""
    one, two = ents
    with app.app_context():
        queries = _queries(one)
        assert len(queries) > 250
        hits = 0
        for people in (CONTACTS, ACCOUNTS):
            for q in queries:
                want = scanned(people, one, q)
                assert found(people, one, q) == want, (people.model.__name__, q)
                hits += bool(want)
                if db.engine.dialect.name == "sqlite":  # what the scan found, by hand
                    by_hand = {r.id for r in db.session.scalars(select(people.model).where(
                        people.model.enterprise_id == one)) if any(
                        _ascii_lower(q) in _ascii_lower(getattr(r, c.key))
                        for c in people.search)}
                    assert want == by_hand, q
        assert hits > len(queries)  # most queries find something: the test tests something
        # The other enterprise holds the same people: its rows are never among these.
        mine = found(CONTACTS, one, "example")
        assert mine and not mine & set(db.session.scalars(
            select(Contact.id).where(Contact.enterprise_id == two)))


def test_which_way_each_query_goes(app, ents):
    """SQLite: MIN_CHARS characters or more through the FTS5 table, fewer by the scan.
    PostgreSQL: the ILIKE itself, which its planner answers from the GIN index."""
    with app.app_context():
        sqlite = db.engine.dialect.name == "sqlite"
        for q, indexed in (("zol", True), ("zo", False), ("z", False), ("%_\\", True)):
            assert len(q) >= MIN_CHARS or not indexed
            sql = str(condition(CONTACTS.search, q, ents[0]))
            assert ("MATCH" in sql) == (indexed and sqlite), (q, sql)
        # Columns of a table without a search index (API tokens): always the scan.
        from appliance.models import ApiToken
        assert "MATCH" not in str(condition((ApiToken.label,), "label", None))


@pytest.mark.skipif(not postgres_server.enabled(), reason="PostgreSQL's GIN index; on SQLite "
                    "test_the_same_rows_as_the_substring_scan goes through the FTS5 table")
def test_postgresql_answers_from_the_gin_index_with_the_scans_rows(app, ents):
    """With sequential and plain index scans off, the condition the search sends (lower()
    LIKE lower()) is answered from the GIN index (a bitmap scan of ix_<table>_search),
    with the rows of ILIKE."""
    with app.app_context():
        queries = _queries(ents[0])
        for people in (CONTACTS, ACCOUNTS):
            m, name = people.model, f"ix_{people.model.__tablename__}_search"
            for q in queries:
                stmt = select(m.id).where(condition(people.search, q, None))
                db.session.execute(text("SET LOCAL enable_seqscan = off"))
                db.session.execute(text("SET LOCAL enable_indexscan = off"))
                if len(q) >= MIN_CHARS:
                    compiled = stmt.compile(dialect=db.engine.dialect)
                    plan = "\n".join(r[0] for r in db.session.connection().exec_driver_sql(
                        "EXPLAIN " + compiled.string, compiled.params))
                    assert name in plan, (q, plan)
                indexed = set(db.session.scalars(stmt))
                db.session.rollback()
                assert indexed == set(db.session.scalars(
                    select(m.id).where(or_(*(c.ilike(pattern(q), escape="\\")
                                             for c in people.search))))), q


@pytest.mark.parametrize("leading,counted", [(0, 4), (12, 4), (0, 1000)],
                         ids=["index", "leading rows", "every match by key"])
def test_paging_forwards_and_backwards_gives_one_order(app, ents, monkeypatch, leading,
                                                       counted):
    """Paged 3 rows at a time, every sort both ways, with and without a search: the pages
    put together are the whole list in one page. Pages in the second half are read from
    the other end. A search with more matches than it counts (`counted`, as a large result)
    reads its pages through the index, after looking among the first `leading` rows in sort
    order (found there or not); one with fewer reads its matches' rows by key."""
    monkeypatch.setattr(searching, "LEADING_ROWS", leading)
    monkeypatch.setattr(listing, "COUNTED", counted)
    outcomes = []
    original = searching.page_ids

    def recorded(*a):
        ids = original(*a)
        outcomes.append(ids is not None)
        return ids
    monkeypatch.setattr(searching, "page_ids", recorded)
    with app.app_context():
        ent = db.session.get(Enterprise, ents[0])
        for people in (CONTACTS, ACCOUNTS):
            for q in ("", "example", "mcd"):
                for column in (c for c in people.columns if c.sort is not None):
                    for way in ("asc", "desc"):
                        args = {"q": q, "sort": column.key, "dir": way, "adjustable": True}
                        whole = page(people, ent, args, 1, 1000)
                        assert set(whole) == (scanned(people, ent.id, q) if q else set(whole))
                        pages, n = [], 1
                        while n == 1 or n <= -(-len(whole) // 3):
                            pages += page(people, ent, args, n, 3)
                            n += 1
                        assert pages == whole, (people.model.__name__, q, column.key, way)
        # SQLite: found among the leading rows, or not (then the caller's query); PostgreSQL:
        # there, or read from the index and sorted (always ids).
        if counted == 1000:
            assert outcomes == []
        elif db.engine.dialect.name == "sqlite":
            assert (True in outcomes) == bool(leading) and False in outcomes
        else:
            assert outcomes and all(outcomes)


def test_a_search_counts_its_matches_up_to_a_limit(app, ents, monkeypatch):
    """Past COUNTED matches a search says "N+" (API: more) and its Last link asks for a page
    past them, which counts them all; a page within them does not."""
    monkeypatch.setattr(listing, "COUNTED", 2)
    with app.app_context():
        ent = db.session.get(Enterprise, ents[0])
        matches = len(scanned(CONTACTS, ent.id, "example"))
        assert matches > 4
        first = CONTACTS.page_of(ent, {"q": "example"}, 2)
        assert (first.total, first.more, first.pages, first.last) == (2, True, 1, MAX_INT)
        assert first.json(lambda r: r.id)["more"] is True
        last = CONTACTS.page_of(ent, {"q": "example", "page": str(MAX_INT)}, 2)
        assert (last.total, last.more, last.page) == (matches, False, -(-matches // 2))
        few = CONTACTS.page_of(ent, {"q": "example"}, 2 * matches)
        assert (few.total, few.more) == (matches, False)
        with app.test_request_context():
            html = render_template_string(
                '{% from "macros.html" import pager %}{{ pager(p, ("audit.index",), '
                '"#people-table") }}', p=first)
        assert "2+ results" in html and "page 1 of 1+" in html
        assert f"page={MAX_INT}" in html and "Next ›</a>" in html


def page(people, ent, args, number, per_page) -> list[int]:
    args = {k: v for k, v in args.items() if k != "adjustable"}
    got = people.page_of(ent, {**args, "page": str(number), "per_page": str(per_page)}, 100,
                         adjustable=True)
    return [r.id for r in got.rows]


@pytest.mark.skipif(not postgres_server.enabled(), reason="PostgreSQL's plan cache (psycopg's "
                    "prepared statements; SQLite plans each): runs in make test-pg")
def test_postgresql_plans_each_search_for_its_text(app):
    """psycopg prepares a statement run five times, and PostgreSQL may then plan it once for
    any values: a small enterprise's search read the whole trigram index (70 ms at a
    million contacts, 1 ms planned for its values). The appliance's sessions plan each."""
    with app.app_context():
        assert db.session.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"


@pytest.mark.skipif(not postgres_server.enabled(), reason="PostgreSQL's planner statistics "
                    "(the migration analyzes only there): runs in make test-pg")
def test_the_migration_leaves_an_empty_table_unanalyzed(app):
    """Migration 0012 analyzes the tables it indexes only when they hold rows: statistics
    that say "empty" planned the first large import's NOT EXISTS as a nested loop over the
    rows it was inserting (100,000 contacts: 2 minutes instead of 8 s)."""
    with app.app_context():
        for table in ("contact", "account"):
            assert db.session.execute(text("SELECT reltuples FROM pg_class WHERE relname = :t"),
                                      {"t": table}).scalar() < 0, table


def _fts_rows(model, ent_id) -> int | None:
    """How many rows of `ent_id` the FTS5 table holds (None on PostgreSQL)."""
    if db.engine.dialect.name != "sqlite":
        return None
    name = model.__table__.info["search"].name
    return db.session.execute(text(f"SELECT count(*) FROM {name} WHERE {name} MATCH :q"),
                              {"q": f'enterprise_id : "#{ent_id}#"'}).scalar()


def assert_in_step(ent_id):
    """The index holds exactly the enterprise's rows, as they are now: each row is found
    by each of its searched values, and the searches find what the scan finds."""
    for people in (CONTACTS, ACCOUNTS):
        m = people.model
        rows = db.session.scalars(select(m).where(m.enterprise_id == ent_id)).all()
        assert _fts_rows(m, ent_id) in (None, len(rows))
        for row in rows:
            for c in people.search:
                value = getattr(row, c.key).strip()
                if len(value) >= MIN_CHARS:
                    assert row.id in found(people, ent_id, value), (m.__name__, value)
        for q in ("ann", "lee", "Renamed", "gone", "Moved", "new", "@", "x"):
            assert found(people, ent_id, q) == scanned(people, ent_id, q), q


def test_the_index_follows_replace_source_and_remove_source(app, ents):
    one = ents[0]
    with app.app_context():
        e = db.session.get(Enterprise, one)
        rows = _rows(prefix="p")
        rows[0].update(last_name="Renamed", email="renamed@example.com")  # update
        rows[1].update(login="moved.login", first_name="Moved")  # an account's new login
        del rows[2]  # delete
        rows.append({"external_id": "new1", "login": "new1", "first_name": "New",
                     "last_name": "Newcomer", "email": "new@example.com", "phone": "777"})
        for model in (Contact, Account):
            replace_source(model, e, "sync:1", "LDAP", rows)
        assert_in_step(one)
        assert not found(CONTACTS, one, "ZOLA") - found(CONTACTS, one, "Zola-Dupont")
        assert found(CONTACTS, one, "Renamed") and found(ACCOUNTS, one, "moved.login")
        assert not found(CONTACTS, one, "zoe@éxample")  # row 2 went
        for model in (Contact, Account):
            remove_source(model, e, "sync:1")
        assert_in_step(one)
        assert not found(CONTACTS, one, "example") and not found(ACCOUNTS, one, "new")
        assert found(CONTACTS, ents[1], "example")  # the other enterprise's stay


CSV = ("number,device_type,mac,first_name,last_name,department,group,group_kind,pilot,"
       "dynamic_extension\n")


def test_the_index_follows_a_sync_and_the_deletion_of_the_enterprise(app, api, tmp_path):
    """A PBX node's sync (a job: staged rows merged by SourceImport), run again with a
    renamed and a removed user, then the enterprise deleted (the rows go by cascade)."""
    ent = api("POST", "/api/v1/enterprises", json={"name": "Acme", "eid": "acme"}).get_json()
    path = tmp_path / "import" / "node.csv"  # the import directory
    people = [("Ann", "Lee"), ("Émile", "O'Brien"), ("Bob", "Stone"), ("Zoë", "100%")]
    path.write_text(CSV + "".join(f"20{i:02d},5340 IP,00:08:5D:11:22:{i:02d},{f},{last},Sales"
                                  ",,,,\n" for i, (f, last) in enumerate(people)))
    node = add_node(api, ent["id"], path)
    assert sync(app, api, node["id"]).state == "succeeded"
    with app.app_context():
        assert len(found(ACCOUNTS, ent["id"], "Stone")) == 1
        assert_in_step(ent["id"])
    people[0], people[2] = ("Ann", "Renamed"), None
    path.write_text(CSV + "".join(f"20{i:02d},5340 IP,00:08:5D:11:22:{i:02d},{p[0]},{p[1]},"
                                  "Sales,,,,\n" for i, p in enumerate(people) if p))
    run = sync(app, api, node["id"], confirm=True)
    assert run.state == "succeeded", run.message
    with app.app_context():
        assert found(ACCOUNTS, ent["id"], "Renamed") and found(CONTACTS, ent["id"], "Renamed")
        assert not found(ACCOUNTS, ent["id"], "Stone") and not found(CONTACTS, ent["id"], "Lee")
        assert_in_step(ent["id"])
    assert api("DELETE", f"/api/v1/enterprises/{ent['id']}").status_code == 204
    with app.app_context():
        for model in (Contact, Account):
            assert db.session.scalar(select(func.count()).select_from(model)) == 0
            assert _fts_rows(model, ent["id"]) in (None, 0)


def test_every_declared_index_is_built_by_the_migration(app):
    """What the models declare (SearchIndex) is what migration 0012 built: the FTS5 table's
    columns and its three triggers, or the GIN index's columns."""
    assert {i.table for i in declared()} == {"contact", "account"}
    with app.app_context(), db.engine.connect() as conn:
        for index in declared():
            if conn.dialect.name == "sqlite":
                cols = [r[1] for r in conn.execute(text(f"PRAGMA table_info({index.name})"))]
                triggers = set(conn.execute(text(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
                    {"t": index.table}).scalars())
                assert {f"{index.name}_{w}" for w in ("insert", "update", "delete")} <= triggers
                assert cols == [index.scope, *index.columns]
            else:
                definition = conn.execute(text("SELECT pg_get_indexdef(CAST(:n AS regclass))"),
                                          {"n": f"ix_{index.name}"}).scalar()
                assert "USING gin" in definition
                assert re.findall(r"lower\(\(?(\w+)\)?(?:::text)?\) gin_trgm_ops",
                                  definition) == list(index.columns), definition


def test_the_migration_indexes_the_rows_there_are_and_goes_back(tmp_path):
    """Upgrading a database that holds contacts indexes them; downgrading to 0011 drops
    the index (and its triggers) and writes go on; upgrading again indexes them again."""
    app = create_app({"DATA_DIR": str(tmp_path), "SECRET_KEY": "x",
                      **postgres_server.config_for(tmp_path)})
    location = dict(migrate.owners(app))[migrate.CORE]

    def core(to, down=False):
        with app.app_context(), db.engine.begin() as conn:
            cfg = migrate._config(app, migrate.CORE, location, conn)
            (command.downgrade if down else command.upgrade)(cfg, to)

    try:
        core("0011")
        with app.app_context(), db.engine.begin() as conn:
            conn.execute(text("INSERT INTO enterprise (eid, name, created_at) "
                              "VALUES ('old', 'Old', '2026-01-01')"))
            conn.execute(text(
                "INSERT INTO contact (enterprise_id, source, source_label, external_id, "
                "first_name, last_name, email, phone, im_address, federated, updated_at) "
                "SELECT id, 's', 'S', 'k1', 'Ann', 'Before-Upgrade', 'ann@old.test', '1', '', "
                "false, '2026-01-01' FROM enterprise"))
        migrate.upgrade(app)
        with app.app_context():
            ent = db.session.scalar(select(Enterprise.id))
            assert len(found(CONTACTS, ent, "before-up")) == 1
            assert_in_step(ent)
        core("0011", down=True)
        with app.app_context(), db.engine.connect() as conn:
            names = {r[0] for r in conn.execute(text(
                "SELECT name FROM sqlite_master" if conn.dialect.name == "sqlite" else
                "SELECT relname FROM pg_class"))}
            assert not {n for n in names if "contact_search" in n}
        with app.app_context():  # no trigger left behind to write to a dropped table
            replace_source(Contact, db.session.get(Enterprise, ent), "s", "S", [
                {"external_id": "k2", "last_name": "After-Downgrade"}], allow_drop=True)
        core("head")
        with app.app_context():
            assert len(found(CONTACTS, ent, "after-down")) == 1
            assert not found(CONTACTS, ent, "before-up")
            assert_in_step(ent)
    finally:
        app.extensions["appliance"].jobs.shutdown()
        if postgres_server.enabled():
            with app.app_context():
                db.engine.dispose()
            postgres_server.forget(tmp_path)
