"""appliance.db.execute_many: the driver executemany that bulk writes use."""

from datetime import datetime

import pytest
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    select,
    update,
)

from appliance.db import db, execute_many, utcnow

STAMP = datetime(2026, 1, 2, 3, 4, 5, 678901)
things = Table("test_thing", MetaData(),
               Column("id", Integer, primary_key=True),
               Column("name", String(32), unique=True),
               Column("n", Integer),
               Column("kind", String(8), default="plain"),
               Column("stamp", DateTime, default=lambda: STAMP, onupdate=utcnow))


@pytest.fixture
def conn(app):
    with app.app_context():
        things.create(db.engine)
        with db.engine.connect() as c:
            yield c


def test_insert_fills_defaults_once_and_stores_as_core_does(conn):
    execute_many(conn, insert(things), ("name", "n"), [("a", 1), ("b", 2), ("c", None)])
    conn.execute(insert(things), {"name": "core", "n": 4})  # the same defaults, through Core
    conn.commit()
    rows = conn.execute(select(things).order_by(things.c.id)).all()
    assert [(r.name, r.n, r.kind, r.stamp) for r in rows] == [
        ("a", 1, "plain", STAMP), ("b", 2, "plain", STAMP), ("c", None, "plain", STAMP),
        ("core", 4, "plain", STAMP)]
    # stored as the same text, so comparisons in SQL see one format
    raw = conn.exec_driver_sql("SELECT DISTINCT stamp FROM test_thing").all()
    assert len(raw) == 1


def test_update_binds_in_the_statements_order_and_sets_onupdate(conn):
    execute_many(conn, insert(things), ("name", "n"), [("a", 1), ("b", 2)])
    ids = dict(conn.execute(select(things.c.name, things.c.id)).all())
    before = utcnow()
    # the WHERE bind comes last in the SQL, first in the keys
    execute_many(conn, update(things).where(things.c.id == bindparam("_id")), ("_id", "n"),
                 [(ids["b"], 20), (ids["a"], 10)])
    conn.commit()
    rows = {r.name: r for r in conn.execute(select(things))}
    assert (rows["a"].n, rows["b"].n) == (10, 20)
    assert rows["a"].stamp == rows["b"].stamp >= before  # one onupdate value for the batch


def test_fixed_values_are_processed_and_keys_needing_processing_refused(conn):
    later = datetime(2027, 5, 6, 7, 8, 9)
    execute_many(conn, insert(things), ("name",), [("a",)], {"stamp": later, "kind": "x"})
    assert conn.execute(select(things.c.kind, things.c.stamp)).one() == ("x", later)
    if DateTime().dialect_impl(conn.dialect).bind_processor(conn.dialect) is None:
        # psycopg takes a datetime as it is (SQLite's DateTime is written as text): taken
        execute_many(conn, insert(things), ("name", "stamp"), [("b", later)])
        assert conn.execute(select(things.c.name)).scalars().all() == ["a", "b"]
        return
    with pytest.raises(ValueError, match="stamp needs its type's bind processing"):
        execute_many(conn, insert(things), ("name", "stamp"), [("b", later)])
    assert conn.execute(select(things.c.name)).scalars().all() == ["a"]


def test_no_rows_writes_nothing(conn):
    execute_many(conn, insert(things), ("name",), [])
    assert conn.execute(select(things)).all() == []
