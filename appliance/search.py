"""Substring search that stays fast at a million rows, through the store's own index.

The meaning is today's, and it is the rule: a row matches when the search text is a
case-insensitive substring of any searched column, exactly as `column ILIKE '%text%'`
says on the store the appliance runs on. A model declares a search index over some of its
text columns within a scope column (`SearchIndex`, in its table's `info`); `paginate` asks
`condition()` for the WHERE clause, and the index is used where it gives the same rows:

- PostgreSQL: a GIN trigram index (pg_trgm, `gin_trgm_ops`) on lower() of each searched
  column, and the condition `lower(column) LIKE lower('%text%')`: in a UTF-8 (any
  multibyte) database that is exactly what ILIKE does (like.c lowers both sides, then
  matches), but the planner can use the index on lower() for it and rechecks every row
  it finds there. Against the same index on the bare columns, ILIKE was planned as a
  sequential scan (250 ms at 100,000 contacts, where the index answers in 15 ms): ILIKE
  lowers the pattern again for every row, a cost the planner does not see. The database
  keeps the index in step with every write.
- SQLite: a contentless FTS5 table `<table>_search` (tokenizer `trigram case_sensitive 1`)
  holding each row's scope as the token `#<id>#` and its searched columns lowered by
  SQLite's own lower(): the very function SQLite's ILIKE applies to both sides (ASCII
  letters only; É and é stay different, as they do for ILIKE there). Triggers on the
  table keep it in step with every insert, update and delete, whichever code writes (a
  sync, a peer import, a bulk import, an edit, a cascade from a deleted enterprise). A
  phrase query of the lowered text is then exactly ILIKE's rule: the trigrams of the text,
  consecutive, in one column. No row needs reading to decide, and the scope token keeps a
  small enterprise's search small whatever its neighbours hold. Contentless, not an
  external-content table over `<table>`: it indexes values the table does not hold (the
  lowered text, the token), which FTS5's 'rebuild' or 'integrity-check' of an external-
  content table would read from the table and find different.
- Text of fewer than MIN_CHARS characters has no trigram: it scans the scope's rows, with
  the same condition on PostgreSQL, with LIKE on SQLite (which folds exactly what lower()
  folds: a fifth cheaper than ILIKE's lower() LIKE lower()).

The migration that creates the indexes (appliance/migrations/versions/0012_search.py)
writes their definitions out in full, as migrations do; `tests/test_search.py` checks that
they cover what the models declare.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, column, false, func, literal_column, or_, select, table

from appliance.db import db

#: The shortest text a trigram index can answer: shorter text scans (see the module doc).
MIN_CHARS = 3
#: A search that matches at least LEADING_MIN rows looks for its page among the first
#: LEADING_ROWS rows in sort order before it asks the index (see page_ids).
LEADING_MIN = 2000
LEADING_ROWS = 5000
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
    """ILIKE's rows, as each store answers them fastest: `q` a case-insensitive substring
    of any column (see the module doc). PostgreSQL uses its index for this by itself."""
    like = pattern(q)
    dialect = db.engine.dialect.name
    if dialect == "sqlite":  # its LIKE folds ASCII case, as lower() does
        return or_(*(c.like(like, escape="\\") for c in columns))
    if dialect == "postgresql":  # ILIKE itself, in a UTF-8 database; the index is on lower()
        return or_(*(func.lower(c).like(func.lower(like), escape="\\") for c in columns))
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
    otherwise (PostgreSQL's planner takes its trigram index for that condition itself)."""
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


def page_ids(stmt, unsearched, columns, q: str, cols, desc: bool, limit: int, offset: int,
             many: bool) -> list | None:
    """The ids of the `limit` rows from `offset` on (there are that many) of `stmt`, the
    search for `q` in `columns` of `unsearched` that matches `total` rows, in the order of
    `cols` (ending with a unique column; descending when `desc`), when the search goes
    through an index and the store needs a hand to read its page well; None: the caller
    reads it as any other page.

    - `many` matches (LEADING_MIN or more): the page is looked for among the first LEADING_ROWS rows
      in sort order. Reading every match to sort them costs 60 ms at a million contacts
      for 'smith1' (111,111 matches) on SQLite; the first rows in sort order usually hold
      a page of so many matches, and reading them costs milliseconds. What is found there
      is the page when it is whole: the rows read are the first ones of the order, so the
      matches among them are the first matches.
    - Otherwise, on PostgreSQL, the matches are read first (the index) and then sorted:
      left to itself, the planner walks the sort column's index and checks each row, which
      it expects to stop early; where the matches lie at the far end of the order that was
      a walk past most of the table (1.0 to 1.3 s at a million contacts). SQLite's FTS5
      query already runs first (IN), then the rows it gives are sorted.
    """
    if limit == 0 or len(q) < MIN_CHARS or _index_of(columns) is None:
        return None
    order = [c.desc() if desc else c.asc() for c in cols]
    if many and offset + limit <= LEADING_ROWS:
        # A subquery with a LIMIT is planned on its own: the sort index, LEADING_ROWS rows.
        keys = {c.key: c for c in (*cols, *columns)}
        first = unsearched.with_only_columns(*keys.values()).order_by(*order) \
            .limit(LEADING_ROWS).subquery()
        by = [first.c[c.key] for c in cols]
        ids = db.session.scalars(select(by[-1]).where(plain([first.c[c.key] for c in columns], q))
                                 .order_by(*(c.desc() if desc else c.asc() for c in by))
                                 .limit(limit).offset(offset)).all()
        if len(ids) == limit:
            return ids
    if db.engine.dialect.name != "postgresql":
        return None
    matches = stmt.with_only_columns(*cols).cte("matches").prefix_with("MATERIALIZED")
    by = [matches.c[c.key] for c in cols]
    return db.session.scalars(select(by[-1]).order_by(*(c.desc() if desc else c.asc()
                                                        for c in by))
                              .limit(limit).offset(offset)).all()
