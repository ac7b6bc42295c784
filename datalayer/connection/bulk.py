"""Bulk loads: ``COPY`` on PostgreSQL (on peewee's own connection), batched inserts on SQLite.

For seeding and imports of many rows at once. Rows are written as given: callers pass
values already valid for the columns (the seed generator, a validated import); use the
query modules for anything a user typed.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

import peewee

from datalayer.connection.database import db, is_postgres
from datalayer.connection.replicas import note_write
from datalayer.errors import translate_errors

__all__ = ["copy_rows"]

# peewee's wrapper maps driver exceptions to its own (untyped in its stubs).
_DRIVER_ERRORS: Any = getattr(peewee, "__exception_wrapper__")  # noqa: B009

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: Any) -> str:
    """Render one value in PostgreSQL's COPY text format."""
    if type(value) is str:  # the common case first
        return value.translate(_ESCAPES)
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} in a bulk load")
        return value.isoformat()
    if isinstance(value, dt.date | int | float):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":")).translate(_ESCAPES)
    return str(value).translate(_ESCAPES)


def _copy(model: type[peewee.Model], columns: Sequence[str], rows: Iterable[Sequence[Any]],
          batch_size: int) -> int:
    table = model._meta.table_name
    column_list = ", ".join(f'"{c}"' for c in columns)
    statement = f'COPY "{table}" ({column_list}) FROM STDIN'
    total = 0
    buffer = io.StringIO()
    pending = 0
    cursor = db.cursor()
    for row in rows:
        buffer.write("\t".join(map(_copy_text, row)))
        buffer.write("\n")
        pending += 1
        if pending >= batch_size:
            buffer.seek(0)
            cursor.copy_expert(statement, buffer)
            total += pending
            buffer, pending = io.StringIO(), 0
    if pending:
        buffer.seek(0)
        cursor.copy_expert(statement, buffer)
        total += pending
    return total


def _insert(model: type[peewee.Model], columns: Sequence[str], rows: Iterable[Sequence[Any]],
            batch_size: int) -> int:
    fields = [model._meta.columns[c] for c in columns]
    total = 0
    batch: list[Sequence[Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= batch_size:
            model.insert_many(batch, fields=fields).as_rowcount().execute()
            total += len(batch)
            batch = []
    if batch:
        model.insert_many(batch, fields=fields).as_rowcount().execute()
        total += len(batch)
    return total


def copy_rows(
    model: type[peewee.Model],
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    batch_size: int = 20_000,
) -> int:
    """Load ``rows`` (tuples in ``columns`` order) into the model's table; return the count.

    One transaction (a savepoint inside the caller's): all rows or none.
    """
    if is_postgres():
        # peewee's wrapper turns the driver's errors (raised by copy_expert) into its own.
        with translate_errors(), db.atomic(), _DRIVER_ERRORS:
            count = _copy(model, columns, rows, batch_size)
        # COPY goes around execute_sql, so tell the read-your-writes fence about it.
        note_write()
        return count
    # SQLite caps bound parameters per statement (32,766 since 3.32).
    per_statement = max(1, min(batch_size, 30_000 // max(1, len(columns))))
    with translate_errors(), db.atomic():
        return _insert(model, columns, rows, per_statement)
