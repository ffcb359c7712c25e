"""search indexes for the Corporate Directory and the Accounts tab (appliance/search.py)

SQLite: a contentless FTS5 table <table>_search (trigram, case-sensitive) of each row's
enterprise as the token #<id># and its searched columns through lower() (SQLite's, the one
ILIKE uses), kept by triggers on the table; filled from the rows there are.
PostgreSQL: the pg_trgm extension and a GIN index ix_<table>_search over lower() of the
searched columns (gin_trgm_ops), which the database keeps itself. Creating the extension needs the
right to (a superuser, or the database's owner: pg_trgm is a trusted extension); where the
appliance's role has neither, run `CREATE EXTENSION pg_trgm` as one first.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 16:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

# The searched columns of each table, as the models declare them (SearchIndex in
# appliance/models.py) on the day of this migration.
INDEXES = {
    'contact': ('last_name', 'first_name', 'email', 'phone'),
    'account': ('login', 'last_name', 'first_name', 'email', 'phone'),
}
SCOPE = 'enterprise_id'


def _sqlite_row(prefix: str, columns) -> str:
    """The values a row is indexed with: its id, scope token, lowered columns."""
    values = [f"{prefix}id", f"'#' || {prefix}{SCOPE} || '#'",
              *(f"lower({prefix}{c})" for c in columns)]
    return ", ".join(values)


def _sqlite_upgrade(table: str, columns) -> None:
    name = f"{table}_search"
    cols = ", ".join(columns)
    # contentless (content=''): it keeps the index only; columnsize=0: no ranking needs
    # the columns' sizes. detail=full (the default): phrases need token positions.
    op.execute(f"CREATE VIRTUAL TABLE {name} USING fts5({SCOPE}, {cols}, content='', "
               "columnsize=0, tokenize='trigram case_sensitive 1')")
    into = f"INSERT INTO {name} (rowid, {SCOPE}, {cols})"
    remove = f"INSERT INTO {name} ({name}, rowid, {SCOPE}, {cols})"
    # A contentless table forgets a row through the 'delete' command given the values it
    # was indexed with: the old row's, through the same expressions.
    op.execute(f"CREATE TRIGGER {name}_insert AFTER INSERT ON {table} BEGIN "
               f"{into} VALUES ({_sqlite_row('new.', columns)}); END")
    op.execute(f"CREATE TRIGGER {name}_delete AFTER DELETE ON {table} BEGIN "
               f"{remove} VALUES ('delete', {_sqlite_row('old.', columns)}); END")
    watched = ("id", SCOPE, *columns)
    changed = " OR ".join(f"old.{c} IS NOT new.{c}" for c in watched)
    op.execute(f"CREATE TRIGGER {name}_update AFTER UPDATE OF {', '.join(watched)} "
               f"ON {table} WHEN {changed} BEGIN "
               f"{remove} VALUES ('delete', {_sqlite_row('old.', columns)}); "
               f"{into} VALUES ({_sqlite_row('new.', columns)}); END")
    op.execute(f"{into} SELECT {_sqlite_row('', columns)} FROM {table}")


def _postgresql_upgrade(table: str, columns) -> None:
    ops = ", ".join(f"lower({c}) gin_trgm_ops" for c in columns)
    op.execute(f"CREATE INDEX ix_{table}_search ON {table} USING gin ({ops})")
    # The planner's statistics of the indexed expressions (lower(...)) come from ANALYZE.
    # Not of an empty table: statistics that say "no rows" made the first large import's
    # NOT EXISTS a nested loop over the rows it was inserting (100,000 rows: 2 minutes).
    if op.get_bind().execute(sa.text(f"SELECT EXISTS (SELECT 1 FROM {table})")).scalar():
        op.execute(f"ANALYZE {table}")


def upgrade():
    dialect = op.get_bind().dialect.name
    if dialect == 'postgresql':
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for table, columns in INDEXES.items():
        if dialect == 'sqlite':
            _sqlite_upgrade(table, columns)
        elif dialect == 'postgresql':
            _postgresql_upgrade(table, columns)


def downgrade():
    dialect = op.get_bind().dialect.name
    for table in reversed(INDEXES):
        if dialect == 'sqlite':
            for trigger in ('update', 'delete', 'insert'):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_search_{trigger}")
            op.execute(f"DROP TABLE IF EXISTS {table}_search")
        elif dialect == 'postgresql':
            op.execute(f"DROP INDEX IF EXISTS ix_{table}_search")
    # The pg_trgm extension stays: other objects of the database may use it too.
