"""Indexes: named, partial (``where``), on expressions, unique or not."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import peewee as pw

from datalayer.migration_ops.base import index_name, is_sqlite, queue_sql, quote

__all__ = ["add_index", "drop_index", "index_sql"]

_NAME = re.compile(r"\w+")


def add_index(migrator: Any, table: str, name: str, fields: Iterable[str], *,
              unique: bool = False, where: str | None = None,
              concurrently: bool = False) -> None:
    """Create index ``name`` on ``fields``, partial when ``where`` is given.

    Each item of ``fields`` is a field name or an SQL expression (``'lower("title")'``).
    ``concurrently=True`` builds it with ``CREATE INDEX CONCURRENTLY`` on PostgreSQL,
    outside the migration's transaction; such a migration holds only such steps.
    """
    model = migrator.orm[table]
    items = [model._meta.fields[f] if _NAME.fullmatch(f) else pw.SQL(f) for f in fields]
    columns = [i for i in items if isinstance(i, pw.Field)]
    implicit = len(items) == len(columns) == 1 and where is None and \
        index_name(pw.ModelIndex(model, columns, unique)) == name
    if implicit:  # what index=True / unique=True on the field declares
        columns[0].index, columns[0].unique = not unique, unique
    else:
        model._meta.indexes.append(model.index(
            *items, unique=unique, name=name, where=pw.SQL(where) if where else None))
    queue_sql(migrator, index_sql(table, name, items, unique=unique, where=where,
                                  concurrently=concurrently and not is_sqlite(migrator)))


def index_sql(table: str, name: str, items: list[Any], *, unique: bool, where: str | None,
              concurrently: bool = False) -> str:
    """Return the CREATE INDEX statement (the one place it is written)."""
    listed = ", ".join(quote(i.column_name) if isinstance(i, pw.Field) else i.sql
                       for i in items)
    # IF NOT EXISTS: create_model has built a new table's declared indexes already.
    how = "CONCURRENTLY IF NOT EXISTS " if concurrently else "IF NOT EXISTS "
    statement = (f"CREATE {'UNIQUE ' if unique else ''}INDEX {how}{quote(name)} "
                 f"ON {quote(table)} ({listed})")
    return statement + (f" WHERE {where}" if where else "")


def drop_index(migrator: Any, table: str, name: str, *, concurrently: bool = False) -> None:
    """Drop index ``name``, however the model declared it (tuple, ``index()``, field flag)."""
    meta = migrator.orm[table]._meta
    kept = []
    for index in meta.indexes:
        declared = index if isinstance(index, pw.ModelIndex) else None
        if declared is None:
            columns, unique = index
            declared = pw.ModelIndex(meta.model, [meta.fields[c] for c in columns], unique)
        if index_name(declared) != name:
            kept.append(index)
    meta.indexes = kept
    for field in meta.sorted_fields:  # a single-field index=True / unique=True
        if (field.index or field.unique) and index_name(pw.ModelIndex(
                meta.model, (field,), field.unique)) == name:
            field.index = field.unique = False
    how = "CONCURRENTLY " if concurrently and not is_sqlite(migrator) else ""
    queue_sql(migrator, f"DROP INDEX {how}IF EXISTS {quote(name)}")
