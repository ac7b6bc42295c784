"""Helpers every query module uses: keyset pages, opaque cursors, transactions, errors."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypedDict, TypeVar

import peewee

from datalayer.db import db, is_postgres
from datalayer.errors import ValidationError, translate_errors
from datalayer.models.base import to_utc
from datalayer.schemas.base import Dumper, check_limit

T = TypeVar("T")


class Page(TypedDict):
    items: list[Any]
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


def encode_cursor(created_at: Any, row_id: str) -> str:
    """Return an opaque cursor for the keyset position (created_at, id)."""
    ts = to_utc(created_at)
    raw = json.dumps([ts.isoformat() if ts else None, row_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    """Read a cursor made by ``encode_cursor``; a damaged one is a ValidationError."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        ts_text, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        ts = dt.datetime.fromisoformat(ts_text)
        if ts.tzinfo is None or not isinstance(row_id, str):
            raise ValueError("bad cursor")
        return ts, row_id
    except (ValueError, TypeError, binascii.Error, AttributeError):
        raise ValidationError({"cursor": ["Not a valid cursor."]}) from None


def keyset_page(
    query: peewee.ModelSelect,
    *,
    dumper: Dumper,
    ts_field: peewee.Field,
    id_field: peewee.Field,
    limit: int,
    cursor: str | None,
    transform: Callable[[dict[str, Any], tuple[Any, ...]], Any] | None = None,
    extra: int = 0,
) -> Page:
    """Run ``query`` as one newest-first keyset page ordered by (ts_field, id_field).

    The query must select ``dumper.columns`` first (``dumper.select(...)``), then
    ``extra`` more columns that ``transform(dto, extras)`` may fold into each item.
    No OFFSET: page 1,000 costs what page 1 costs.
    """
    limit = check_limit(limit)
    if cursor is not None:
        if not isinstance(cursor, str):
            raise ValidationError({"cursor": ["Not a valid cursor."]})
        ts, row_id = decode_cursor(cursor)
        position = peewee.Tuple(
            peewee.Value(ts, converter=ts_field.db_value),
            peewee.Value(row_id, converter=id_field.db_value),
        )
        query = query.where(peewee.Tuple(ts_field, id_field) < position)
    query = query.order_by(ts_field.desc(), id_field.desc()).limit(limit + 1)
    with read():
        rows = list(query.tuples())
    width = len(dumper.columns)
    ts_index = dumper.columns.index(ts_field.column_name)
    id_index = dumper.columns.index(id_field.column_name)
    items = []
    for values in rows[:limit]:
        dto = dumper.row(values[:width])
        items.append(transform(dto, tuple(values[width:])) if transform else dto)
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(last[ts_index], last[id_index])
    return {"items": items, "next_cursor": next_cursor}


def for_update(query: peewee.ModelSelect, **kwargs: Any) -> peewee.ModelSelect:
    """Lock the selected rows on PostgreSQL (SQLite's single writer already serializes)."""
    return query.for_update(**kwargs) if is_postgres() else query
