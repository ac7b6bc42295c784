"""Helpers every query module uses: keyset pages, opaque cursors, transactions, errors."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Generic, TypedDict, TypeVar, overload

import marshmallow
import peewee

from datalayer import arguments
from datalayer.connection.context import routed_database
from datalayer.connection.database import db, is_postgres
from datalayer.errors import (
    NOT_INITIALIZED,
    NotInitializedError,
    ValidationError,
    translate_errors,
)
from datalayer.models.base import to_utc
from datalayer.schemas.base import Date, Dumper, check_limit

T = TypeVar("T")
DTO = TypeVar("DTO")


class Page(TypedDict, Generic[T]):
    """A keyset page (``Page[TodoDTO]``): the items, newest first, and the next page's
    cursor (None on the last page)."""

    items: list[T]
    next_cursor: str | None


@contextmanager
def write() -> Iterator[None]:
    """Run a write as one transaction (a savepoint inside the caller's), translating errors."""
    with translate_errors(), db.atomic():
        yield


@contextmanager
def read() -> Iterator[None]:
    """Run a read, translating errors."""
    with translate_errors():
        yield


# A write that is a single statement needs no more than a read: it is atomic on its own
# (no BEGIN/COMMIT round trips outside a transaction) and part of the caller's
# transaction inside one.
one_statement = read


def encode_cursor(created_at: Any, row_id: str) -> str:
    """Return an opaque cursor for the keyset position (created_at, id)."""
    return arguments.encode_cursor(to_utc(created_at), row_id)


def decode_cursor(cursor: Any) -> tuple[dt.datetime, str]:
    """Read a cursor made by ``encode_cursor``; anything else (a forged or damaged one, of
    any type or size) is a ValidationError on ``cursor`` (``arguments.cursor``)."""
    return arguments.cursor(cursor)


_DATE = Date(required=True)


def check_date(name: str, value: Any) -> dt.date:
    """Validate a date argument (a ``date`` or ``YYYY-MM-DD``); a bad one is a ValidationError."""
    try:
        day: dt.date = _DATE.deserialize(value)
        return day
    except marshmallow.ValidationError as exc:
        raise ValidationError({name: exc.messages}) from None


def counters_fit(model: type[peewee.Model], counters: Sequence[str]) -> Any:
    """The WHERE of an increment-or-insert's update: every ``counter + EXCLUDED.counter``
    stays within PostgreSQL's ``integer``. Summed as bigint, so the check cannot overflow;
    when it fails no row is updated (none returned) — on both backends, where PostgreSQL
    alone would raise and SQLite alone would store the bigger number."""
    condition: Any = None
    for name in counters:
        total = model._meta.columns[name].cast("BIGINT") + getattr(peewee.EXCLUDED, name)
        term = (total <= arguments.INT4_MAX) & (total >= arguments.INT4_MIN)
        condition = term if condition is None else condition & term
    return condition


def overflowing_counters(
    model: type[peewee.Model], where: Any, values: Mapping[str, Any], counters: Sequence[str]
) -> list[str]:
    """Return the counters of the stored row (``where``) that adding ``values`` would
    carry out of the integer range (after ``counters_fit`` refused the update)."""
    query = model.select(*(model._meta.columns[c] for c in counters)).where(where)
    row: Any = query.tuples().first()
    if row is None:
        return []
    return [
        c for c, value in zip(counters, row, strict=True)
        if not arguments.INT4_MIN <= value + values[c] <= arguments.INT4_MAX
    ]


def stamp(field: peewee.Field, value: Any) -> peewee.Value:
    """Wrap a value for use inside an SQL expression, stored the way ``field`` stores it."""
    return peewee.Value(value, converter=field.db_value)


@overload
def keyset_page(
    query: peewee.ModelSelect,
    *,
    dumper: Dumper[DTO],
    ts_field: peewee.Field,
    id_field: peewee.Field,
    limit: int,
    cursor: str | None,
    transform: None = None,
    extra: int = 0,
) -> Page[DTO]: ...


@overload
def keyset_page(
    query: peewee.ModelSelect,
    *,
    dumper: Dumper[DTO],
    ts_field: peewee.Field,
    id_field: peewee.Field,
    limit: int,
    cursor: str | None,
    transform: Callable[[DTO, tuple[Any, ...]], T],
    extra: int = 0,
) -> Page[T]: ...


def keyset_page(
    query: peewee.ModelSelect,
    *,
    dumper: Dumper[Any],
    ts_field: peewee.Field,
    id_field: peewee.Field,
    limit: int,
    cursor: str | None,
    transform: Callable[[Any, tuple[Any, ...]], Any] | None = None,
    extra: int = 0,
) -> Page[Any]:
    """Run ``query`` as one newest-first keyset page ordered by (ts_field, id_field).

    The query must select ``dumper.columns`` first (``dumper.select(...)``), then
    ``extra`` more columns that ``transform(dto, extras)`` may fold into each item.
    No OFFSET: page 1,000 costs what page 1 costs.
    """
    limit = check_limit(limit)
    after = None
    if cursor is not None:
        ts, row_id = decode_cursor(cursor)
        after = peewee.Tuple(stamp(ts_field, ts), stamp(id_field, row_id))
    query = keyset_order(query, ts_field, id_field, after).limit(limit + 1)
    with read():
        rows: list[Any] = list(query.tuples())
    width = len(dumper.columns)

    def dump(page: Sequence[Sequence[Any]]) -> list[Any]:
        if transform is None:
            return [dumper.row(values[:width]) for values in page]
        return [transform(dumper.row(values[:width]), tuple(values[width:])) for values in page]

    ts_index = dumper.columns.index(ts_field.column_name)
    id_index = dumper.columns.index(id_field.column_name)
    return page_of(rows, limit, dump, ts_index=ts_index, id_index=id_index)


Q = TypeVar("Q", bound=peewee.SelectQuery)


# The keyset pieces shared by ``keyset_page`` and the compiled statements' pages (whose
# position is made of placeholders, bound per call).


def keyset_order(query: Q, ts_field: peewee.Field, id_field: peewee.Field, after: Any = None) -> Q:
    """Order ``query`` newest first by (ts_field, id_field), after the position ``after``
    (a ``peewee.Tuple`` of a timestamp and an id; None: from the newest)."""
    if after is not None:
        query = query.where(peewee.Tuple(ts_field, id_field) < after)
    return query.order_by(ts_field.desc(), id_field.desc())


def page_of(
    rows: Sequence[Sequence[Any]],
    limit: int,
    items: Callable[[Sequence[Sequence[Any]]], list[T]],
    *,
    ts_index: int,
    id_index: int,
) -> Page[T]:
    """Make a page of ``rows`` fetched with ``LIMIT limit + 1``: the first ``limit`` made into
    ``items``, and when there were more, the cursor of the last of them."""
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1][ts_index], rows[-1][id_index])
    return {"items": items(rows), "next_cursor": next_cursor}


def for_update(query: Q, **kwargs: Any) -> Q:
    """Lock the selected rows on PostgreSQL (SQLite's single writer already serializes)."""
    # peewee's stubs declare for_update() on Select, not on the SelectQuery base.
    return query.for_update(**kwargs) if is_postgres() else query  # type: ignore[attr-defined]  # see above


# --- statements compiled once -----------------------------------------------------------
#
# peewee compiles a query to SQL on every execution (tens of microseconds for a plain
# SELECT — more than the round trip on loopback). Hot paths build their query once per
# backend with named placeholders and then only bind parameters.


class Param:
    """A named placeholder left in compiled SQL; ``convert`` adapts the bound value."""

    __slots__ = ("convert", "name")

    def __init__(self, name: str, convert: Callable[[Any], Any] | None) -> None:
        self.name = name
        self.convert = convert


def param(name: str, field: peewee.Field | None = None) -> peewee.Value:
    """A placeholder for ``name``, converted at run time the way ``field`` converts values."""
    return peewee.Value(
        Param(name, field.db_value if field is not None else None), converter=False, unpack=False
    )


class Statement:
    """The SQL of one query shape, compiled once per database class, run with new values."""

    __slots__ = ("_build", "_compiled")

    def __init__(self, build: Callable[[], peewee.Query]) -> None:
        self._build = build
        self._compiled: dict[type, tuple[str, tuple[tuple[str | None, Any], ...]]] = {}

    def _compile(self, database: peewee.Database) -> tuple[str, tuple[tuple[str | None, Any], ...]]:
        key = type(database)
        compiled = self._compiled.get(key)
        if compiled is None:
            context = database.get_sql_context()
            # peewee's Context.sql() is unannotated in its stubs.
            sql, params = context.sql(self._build()).query()  # type: ignore[no-untyped-call]  # see above
            plan = tuple((p.name, p.convert) if isinstance(p, Param) else (None, p) for p in params)
            compiled = self._compiled[key] = (sql, plan)
        return compiled

    def execute(self, values: dict[str, Any]) -> Any:
        """Run the statement with ``values`` for its placeholders; return the cursor."""
        # The database ``db`` resolves to here: a replica inside a ``replica_read`` call.
        database = routed_database() or db.obj
        if database is None:
            raise NotInitializedError(NOT_INITIALIZED)
        sql, plan = self._compile(database)
        params = [
            constant
            if name is None
            else (values[name] if constant is None else constant(values[name]))
            for name, constant in plan
        ]
        return database.execute_sql(sql, params)  # errors: the namespace's @error_boundary


class StatementCache:
    """Statements of one query family, one per shape (e.g. which columns an update sets)."""

    __slots__ = ("_build", "_statements")

    def __init__(self, build: Callable[..., peewee.Query]) -> None:
        self._build = build
        self._statements: dict[Any, Statement] = {}

    def __call__(self, *shape: Any) -> Statement:
        statement = self._statements.get(shape)
        if statement is None:
            statement = self._statements[shape] = Statement(lambda: self._build(*shape))
        return statement
