"""Server-side sorted, searched and paged tables."""

from dataclasses import dataclass
from math import ceil

from sqlalchemy import func, select

from appliance import search as searching
from appliance.db import db
from appliance.validation import MAX_INT, Field, int_range

#: The most rows one API call may ask for with ?per_page= (pages show PAGE_SIZE rows).
MAX_PER_PAGE = 1000
#: A search counts its matches up to this many: past it the page says "1,000+" (and the API
#: `more`), unless a page past them is asked for. Counting every one of 600,000 matches of
#: '7' cost 220 ms at a million contacts, and finding the rare matches of a short text
#: costs a scan whatever the page (see appliance.search).
COUNTED = 1000


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    sort: object = None  # a SQL expression (or a tuple, to match an index), None: no sorting


@dataclass
class Page:
    rows: list
    total: int
    page: int
    per_page: int
    sort: str
    desc: bool
    q: str
    columns: list
    base: dict  # the request's other arguments (filters), kept in every link
    more: bool = False  # a search with more matches than `total` (COUNTED) counted

    @property
    def pages(self) -> int:
        return max(1, ceil(self.total / self.per_page))

    @property
    def last(self) -> int:
        """The page "Last" links to: past the counted matches, one whose count is exact."""
        return MAX_INT if self.more else self.pages

    def json(self, as_dict) -> dict:
        """The one shape of every API list: this page's rows as `as_dict` makes them."""
        return {"items": [as_dict(r) for r in self.rows], "total": self.total,
                "more": self.more, "page": self.page, "pages": self.pages,
                "per_page": self.per_page}

    def args(self, **change) -> dict:
        """Query arguments for a link that changes sort, page or search."""
        out = {**self.base, "sort": self.sort, "dir": "desc" if self.desc else "asc",
               "page": self.page, "q": self.q}
        out.update(change)
        return {k: v for k, v in out.items() if v not in ("", None)}


def number(args, name: str, default: int, lo: int, hi: int) -> int:
    """The query argument `name` as a whole number from lo to hi, `default` when absent;
    Invalid naming it otherwise (the API answers 422, a page 400)."""
    value = Field(name, name, (int_range(lo, hi),), required=False, type="integer") \
        .clean(args.get(name))
    return default if value is None else value


def paging(args, per_page: int, adjustable: bool = False) -> tuple[int, int]:
    """?page= (1 to MAX_INT) and, when `adjustable`, ?per_page= (1 to MAX_PER_PAGE)."""
    if adjustable:
        per_page = number(args, "per_page", per_page, 1, MAX_PER_PAGE)
    return number(args, "page", 1, 1, MAX_INT), per_page


def query_params(columns: list[Column] = (), adjustable: bool = True) -> list[dict]:
    """The OpenAPI description of the arguments paginate reads."""
    def param(name, schema, description):
        return {"name": name, "in": "query", "required": False, "schema": schema,
                "description": description}
    keys = [c.key for c in columns if c.sort is not None]
    out = [param("q", {"type": "string", "maxLength": 100}, "Search text"),
           param("sort", {"type": "string", **({"enum": keys} if keys else {})}, "Sort column"),
           param("dir", {"type": "string", "enum": ["asc", "desc"]}, "Sort direction"),
           param("page", {"type": "integer", "minimum": 1, "maximum": MAX_INT},
                 "Page number (past the last page: the last page)")]
    if adjustable:
        out.append(param("per_page", {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
                         "Rows per page"))
    return out


def paginate(stmt, columns: list[Column], args, default_sort: str, search=(),
             per_page: int = 50, tiebreak=None, adjustable: bool = False,
             scope=None) -> Page:
    """Apply ?q=, ?sort=, ?dir=, ?page= (and ?per_page= when `adjustable`) from `args` to a
    select and return one page; Invalid when a number is not one or out of range.

    ?q= keeps the rows where it is a case-insensitive substring of any `search` column,
    through the table's search index where it has one (appliance.search); `scope` is the
    value of that index's scope column the select already keeps (the enterprise)."""
    page, per_page = paging(args, per_page, adjustable)
    q = (args.get("q") or "").strip()[:100]
    unsearched = stmt
    if q and search:
        stmt = stmt.where(searching.condition(search, q, scope))
    by_key = {c.key: c for c in columns if c.sort is not None}
    sort = args.get("sort") if args.get("sort") in by_key else default_sort
    desc = args.get("dir") == "desc"
    total, more, found = _count(stmt, page * per_page if q and search else None, tiebreak)
    if found is not None:  # every match: the page is read by key, without the search
        stmt = unsearched = unsearched.where(tiebreak.in_(found))
    page = min(page, max(1, ceil(total / per_page))) if not more else page
    cols = by_key[sort].sort
    cols = cols if isinstance(cols, tuple) else (cols,)
    order = [c.desc() if desc else c.asc() for c in cols]
    if tiebreak is not None:
        ids = _page_ids(stmt, unsearched, search, q, (*cols, tiebreak), desc, page, per_page,
                        total, more)
        # These ids match the search: their rows are read without it (SQLite would run the
        # FTS query again).
        by_id = {getattr(r, tiebreak.key): r for r in db.session.scalars(
            unsearched.where(tiebreak.in_(ids)))} if ids else {}
        rows = [by_id[i] for i in ids if i in by_id]
    else:
        rows = db.session.execute(stmt.order_by(*order).limit(per_page)
                                  .offset((page - 1) * per_page)).all()
        rows = [r[0] if len(r) == 1 else r for r in rows]
    base = {k: v for k, v in dict(args).items() if k not in ("sort", "dir", "page", "q")}
    return Page(rows, total, page, per_page, sort, desc, q, columns, base, more)


def _count(stmt, upto: int | None, key=None) -> tuple[int, bool, list | None]:
    """(rows of `stmt`, whether there are more, the `key`s of all of them or None).

    A search (`upto`: the rows its page needs) reads the keys of up to COUNTED + 1 matches
    in no order: that many or fewer are all of them (and its page is then read by key, not
    by a second search), more are counted only when the page needs them (exactly then)."""
    def count(s) -> int:
        return db.session.scalar(select(func.count()).select_from(s.order_by(None).subquery()))
    if upto is None:
        return count(stmt), False, None
    first = stmt.order_by(None).limit(COUNTED + 1)
    found = db.session.scalars(first.with_only_columns(key)).all() if key is not None else None
    n = len(found) if found is not None else count(first)
    if n <= COUNTED:
        return n, False, found
    if upto <= COUNTED:
        return COUNTED, True, None
    return count(stmt), False, None


def _page_ids(stmt, unsearched, search, q, cols, desc, page, per_page, total, more) -> list:
    """The ids of one page of `stmt` (`unsearched` with the search, if any) in the order of
    `cols` (ending with a unique column): a deferred join pages through the (covering)
    index on ids only, and the caller loads one page of rows.

    A page in the second half is read from the other end, in the reverse order: the last
    page costs what the first does, not a walk past every row before it (when `total` is
    the whole count: not `more`)."""
    offset = (page - 1) * per_page
    limit = max(0, min(per_page, total - offset))
    backwards = not more and offset > total - offset - limit
    if backwards:
        offset, desc = total - offset - limit, not desc
    many = more or total >= searching.LEADING_MIN
    ids = searching.page_ids(stmt, unsearched, search, q, cols, desc, limit, offset, many) \
        if stmt is not unsearched else None
    if ids is None:
        order = [c.desc() if desc else c.asc() for c in cols]
        ids = db.session.scalars(stmt.with_only_columns(cols[-1]).order_by(*order)
                                 .limit(per_page if limit == 0 else limit).offset(offset)).all()
    return ids[::-1] if backwards else ids
