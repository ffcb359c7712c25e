"""The shared database handle and its engine settings."""

from datetime import UTC, datetime

from flask import abort
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING))


def found(model, ident, what: str, **where):
    """The `model` row with primary key `ident` (and these column values), or a 404 that
    says "No such <what>" (JSON in the API, the error page otherwise)."""
    row = db.session.get(model, ident) if ident is not None else None
    if row is None or any(getattr(row, k) != v for k, v in where.items()):
        abort(404, f"No such {what}")
    return row


#: A bulk write (an import, a sync) of more rows than this is followed by ANALYZE.
ANALYZE_ROWS = 1000


def analyze(*tables: str, written: int | None = None) -> None:
    """Refresh the query planner's statistics of `tables` (ANALYZE, on SQLite and on
    PostgreSQL), when `written` (rows added, changed and removed) is over ANALYZE_ROWS or
    not given. After a bulk write the planner plans for the tables as they were: on
    PostgreSQL until autovacuum comes round, queries were 4 to 10 times slower."""
    if written is not None and written <= ANALYZE_ROWS:
        return
    with db.engine.begin() as conn:
        for table in tables:
            conn.exec_driver_sql(f"ANALYZE {conn.dialect.identifier_preparer.quote(table)}")


def utcnow() -> datetime:
    """Return the current time in UTC, without tzinfo (as stored)."""
    return datetime.now(UTC).replace(tzinfo=None)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_conn, _record):
    """Turn on WAL and foreign keys for every SQLite connection (its busy timeout is the
    app's DB_BUSY_SECONDS, given to the driver as `timeout`)."""
    if type(dbapi_conn).__module__ != "sqlite3":
        return
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()



def execute_many(conn, stmt, keys: tuple[str, ...], rows: list[tuple], fixed: dict | None = None):
    """Run an INSERT or UPDATE for each of `rows` (tuples of the `keys` bind values) in one
    driver executemany. `fixed` binds are the same for every row; so are the Python-side
    defaults (and onupdate values) of the columns the keys leave out: a chunk's rows share
    one timestamp, as they share one transaction.

    The statement is compiled once and only the shared values go through their types' bind
    processing, once: for the hundred thousand rows of a bulk import, Core's per-row
    parameter handling costs more than SQLite's own work. So the `keys` must be values the
    driver takes as they are (text, numbers, None); a key whose type needs processing is
    refused.
    """
    fixed = dict(fixed or {})
    compiled = stmt.compile(dialect=conn.dialect, column_keys=[*keys, *fixed])
    for column in (*compiled.insert_prefetch, *compiled.update_prefetch):
        default = column.default if column in compiled.insert_prefetch else column.onupdate
        if column.key not in fixed:
            fixed[column.key] = default.arg if default.is_scalar else default.arg(None)
    shared = {}
    for name, bind in compiled.binds.items():
        process = bind.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        if name in fixed:
            shared[name] = process(fixed[name]) if process else fixed[name]
        elif process is not None:
            raise ValueError(f"execute_many: {name} needs its type's bind processing; "
                             "pass it in `fixed`, or use Connection.execute")
    if not rows:
        return
    if compiled.positional:
        names = [*keys, *shared]
        tail = tuple(shared.values())
        index = [names.index(name) for name in compiled.positiontup]
        if index == list(range(len(names))):
            params = [row + tail for row in rows]
        else:
            params = [tuple((row + tail)[i] for i in index) for row in rows]
    else:
        params = [{**dict(zip(keys, row, strict=True)), **shared} for row in rows]
    conn.exec_driver_sql(compiled.string, params)
