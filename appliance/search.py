"""Substring search that stays fast at a million rows, through the store's own index.

The meaning is today's, and it is the rule: a row matches when the search text is a
case-insensitive substring of any searched column, exactly as `column ILIKE '%text%'`
says on the store the appliance runs on. A model declares a search index over some of its
text columns within a scope column (`SearchIndex`, in its table's `info`); `paginate` asks
`condition()` for the WHERE clause, and the index is used where it gives the same rows:

- PostgreSQL: a GIN trigram index (pg_trgm, `gin_trgm_ops`) on the searched columns.
  The planner uses it for the ILIKE itself and rechecks every row it finds, so the
  condition is the plain ILIKE; the database keeps the index in step with every write.
- SQLite: a contentless FTS5 table `<table>_search` (tokenizer `trigram case_sensitive 1`)
  holding each row's scope as the token `#<id>#` and its searched columns lowered by
  SQLite's own lower(): the very function SQLite's ILIKE applies to both sides (ASCII
  letters only; É and é stay different, as they do for ILIKE there). Triggers on the
  table keep it in step with every insert, update and delete, whichever code writes (a
  sync, a peer import, a bulk import, an edit, a cascade from a deleted enterprise). A
  phrase query of the lowered text is then exactly ILIKE's rule: the trigrams of the text,
  consecutive, in one column. No row needs reading to decide, and the scope token keeps a
  small enterprise's search small whatever its neighbours hold.
- Text of fewer than MIN_CHARS characters has no trigram: it scans the scope's rows (on
  SQLite with LIKE, which folds exactly what lower() folds, a fifth cheaper than
  ILIKE's lower() LIKE lower()).

The migration that creates the indexes (appliance/migrations/versions/0012_search.py)
writes their definitions out in full, as migrations do; `tests/test_search.py` checks that
they cover what the models declare.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, column, false, literal_column, or_, select, table

from appliance.db import db

#: The shortest text a trigram index can answer: shorter text scans (see the module doc).
MIN_CHARS = 3
# SQLite's lower() without ICU: ASCII letters only, as the triggers index them.
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True)
class SearchIndex:
    """A substring index over `columns` of `table`, every search within one `scope` value
    (a row's enterprise). Declared with `info={"search": ...}` in the model's table args."""

    table: str
    scope: str
    columns: tuple[str, ...]

    @property
    def name(self) -> str:
        """The FTS5 table on SQLite, and (with ix_) the GIN index on PostgreSQL."""
        return f"{self.table}_search"

    def owns(self, name: str) -> bool:
        """Whether a table or index `name` is part of this index (FTS5's own tables are
        `<name>_data`, `_idx`, `_config`): the schema comparison leaves them out."""
        return name in (self.name, f"ix_{self.name}") or name.startswith(f"{self.name}_")


def declared() -> list[SearchIndex]:
    """Every search index the models declare."""
    return [t.info["search"] for t in db.metadata.tables.values() if "search" in t.info]


def schema_object(name: str) -> bool:
    """Whether `name` (a table or an index) belongs to a search index: models do not map
    them, so Alembic must neither create nor drop them."""
    return any(index.owns(name) for index in declared())


def pattern(q: str) -> str:
    """`q` as a LIKE pattern of a substring: %, _ and \\ stand for themselves."""
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def plain(columns, q: str) -> ColumnElement:
    """Today's search, by scanning: `q` a case-insensitive substring of any column."""
    like = pattern(q)
    if db.engine.dialect.name == "sqlite":  # its LIKE folds ASCII case, as lower() does
        return or_(*(c.like(like, escape="\\") for c in columns))
    return or_(*(c.ilike(like, escape="\\") for c in columns))


def _index_of(columns) -> SearchIndex | None:
    """The search index of the columns' table, if it covers every one of them."""
    tables = {getattr(getattr(c, "expression", c), "table", None) for c in columns}
    if len(tables) != 1 or None in tables:
        return None
    index = getattr(next(iter(tables)), "info", {}).get("search")
    names = [getattr(c, "expression", c).name for c in columns]
    return index if index is not None and set(names) <= set(index.columns) else None


def fts_query(index: SearchIndex, names, q: str, scope=None) -> str:
    """The FTS5 query for `q` in the columns `names` (within `scope`): one phrase, quoted,
    so that no character of `q` is query syntax."""
    phrase = '"' + q.translate(_ASCII_LOWER).replace('"', '""') + '"'
    query = "{" + " ".join(names) + "} : " + phrase
    if scope is not None:
        query = f'{index.scope} : "#{int(scope)}#" AND {query}'
    return query


def condition(columns, q: str, scope=None) -> ColumnElement:
    """WHERE `q` is a case-insensitive substring of any of `columns` (and the row is in
    `scope`, when given: the caller filters by it too). Through the columns' table's search
    index on SQLite when it covers them and `q` has MIN_CHARS characters; the plain scan
    otherwise (PostgreSQL's planner takes its trigram index for that scan by itself)."""
    if not columns:
        return false()
    index = _index_of(columns)
    if index is None or len(q) < MIN_CHARS or db.engine.dialect.name != "sqlite":
        return plain(columns, q)
    names = [getattr(c, "expression", c).name for c in columns]
    owner = getattr(columns[0], "expression", columns[0]).table
    fts = table(index.name, column("rowid"))
    # IN (subquery): SQLite runs the FTS query once. A join could be planned as a loop
    # that runs it again for every row of the scope.
    hits = select(fts.c.rowid).where(
        literal_column(index.name).op("MATCH")(fts_query(index, names, q, scope)))
    return owner.c.id.in_(hits)
