"""Compiled dumpers: produce exactly what ``schema.dump`` would, without marshmallow's
per-field call overhead, from rows selected in column order (peewee's ``.tuples()`` or
the driver's own rows). The equality with ``schema.dump`` is proven by property-based
tests (tests/test_schemas_common.py).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar, cast

import marshmallow
import peewee
from marshmallow import fields

from datalayer.errors import NotFoundError
from datalayer.models.base import to_utc

UTC = dt.UTC

# The DTO a dumper produces: a TypedDict (``TodoDTO``), or a plain dict.
DTO = TypeVar("DTO")


class SchemaDriftWarning(UserWarning):
    """A schema names a column its model no longer has (renamed or removed): left out."""


def _iso(value: Any) -> Any:
    if value is None or isinstance(value, str):  # SQLite hands dates back as text
        return value
    return value.isoformat()


def _iso_utc(value: Any) -> str:
    """ISO-8601 in UTC of a non-null timestamp given as a datetime or as stored text."""
    return cast(dt.datetime, to_utc(value)).isoformat()  # not None: the value is not null


def _iso_utc_text(value: Any) -> str:
    """Like ``_iso_utc`` for SQLite's stored text, by slicing when it is the canonical form.

    The library stores ``YYYY-MM-DD HH:MM:SS.ffffff+00:00``; its ISO form differs only by
    the ``T``, except that ``isoformat`` leaves out a zero fraction.
    """
    if (isinstance(value, str) and len(value) == 32 and value[26:] == "+00:00"
            and value[20:26] != "000000"):
        return value[:10] + "T" + value[11:]
    return _iso_utc(value)


def _json_text(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _expression(index: int, field: fields.Field[Any], *, raw_sqlite: bool) -> str:
    """The Python expression that dumps value ``v[index]`` of a row."""
    v = f"v[{index}]"
    if isinstance(field, fields.Raw | fields.List):  # JSON columns
        return f"_json_text({v})" if raw_sqlite else v
    if isinstance(field, fields.DateTime):
        if raw_sqlite:
            return f"(None if {v} is None else _iso_utc_text({v}))"
        # psycopg2 and peewee's converted values are usually already in UTC.
        return (f"(None if {v} is None else {v}.isoformat() if {v}.tzinfo is UTC "
                f"else _iso_utc({v}))")
    if isinstance(field, fields.Date):
        return f"_iso({v})"
    if isinstance(field, fields.Boolean) and raw_sqlite:  # stored as 0/1
        return f"(None if {v} is None else bool({v}))"
    return v


_NAMESPACE = {"UTC": UTC, "_iso": _iso, "_iso_utc": _iso_utc,
              "_iso_utc_text": _iso_utc_text, "_json_text": _json_text}


def compile_row(columns: Sequence[str], dump_fields: Sequence[fields.Field[Any]], *,
                raw_sqlite: bool) -> Callable[[Sequence[Any]], dict[str, Any]]:
    """Generate one function that dumps a row: a single dict display, no per-field calls.

    ``raw_sqlite``: values come straight from the sqlite3 driver (JSON and timestamps
    still text, booleans 0/1). Otherwise they come from psycopg2 or from peewee's
    converted values (``.tuples()``).
    """
    items = ", ".join(
        f"{name!r}: {_expression(i, field, raw_sqlite=raw_sqlite)}"
        for i, (name, field) in enumerate(zip(columns, dump_fields, strict=True))
    )
    source = f"def row(v):\n    return {{{items}}}\n"
    namespace: dict[str, Any] = dict(_NAMESPACE)
    exec(compile(source, f"<dumper {','.join(columns)[:60]}>", "exec"), namespace)  # noqa: S102
    return cast("Callable[[Sequence[Any]], dict[str, Any]]", namespace["row"])


def _dumped_columns(
    schema: marshmallow.Schema, model: type[peewee.Model]
) -> list[tuple[str, fields.Field[Any]]]:
    """The schema's dumped fields that are columns of the model, in the schema's order.

    A field naming no column (a column renamed or removed while the schema still names
    it) is left out with a ``SchemaDriftWarning`` instead of failing ``import datalayer``
    with a bare KeyError: the DTO test then names the key, and ``datalayer
    makemigrations`` still runs.
    """
    dumped = []
    for name, field in schema.dump_fields.items():
        if name in model._meta.columns:
            dumped.append((name, field))
            continue
        warnings.warn(
            f"{type(schema).__name__} dumps {name!r}, which is not a column of "
            f"{model.__name__} (renamed or removed?): left out of its DTO; update the "
            "schema's overrides in datalayer/schemas/",
            SchemaDriftWarning,
            stacklevel=3,
        )
    return dumped


class Dumper(Generic[DTO]):
    """Produce exactly what ``schema.dump`` would, from rows selected in column order.

    Built once per schema; ``columns`` lists the column names to select, in order.
    The equality with ``schema.dump`` is proven by property-based tests. The type
    parameter is the DTO it produces: ``todo_dumper: Dumper[TodoDTO] = Dumper(...)``.
    """

    def __init__(self, schema: marshmallow.Schema, model: type[peewee.Model]) -> None:
        self.schema = schema
        self.model = model
        dumped = _dumped_columns(schema, model)
        self.columns: tuple[str, ...] = tuple(name for name, _ in dumped)
        self.fields: tuple[peewee.Field, ...] = tuple(
            model._meta.columns[name] for name in self.columns
        )
        self._dump_fields = [f for _, f in dumped]

    # Generated on first use, not at import (``import datalayer`` builds two dozen
    # dumpers); then a plain attribute (cached_property stores it on the instance).
    # The generated functions build exactly the DTO's keys (the DTO tests prove it).
    @functools.cached_property
    def row(self) -> Callable[[Sequence[Any]], DTO]:
        """Dump one row of values converted by peewee or psycopg2."""
        compiled = compile_row(self.columns, self._dump_fields, raw_sqlite=False)
        return cast("Callable[[Sequence[Any]], DTO]", compiled)

    @functools.cached_property
    def raw_sqlite_row(self) -> Callable[[Sequence[Any]], DTO]:
        """Dump one row as the sqlite3 driver returns it."""
        compiled = compile_row(self.columns, self._dump_fields, raw_sqlite=True)
        return cast("Callable[[Sequence[Any]], DTO]", compiled)

    def rows(self, rows: Iterable[Sequence[Any]]) -> list[DTO]:
        """Dump many rows (values converted by peewee, e.g. from ``.tuples()``)."""
        row = self.row
        return [row(values) for values in rows]

    def raw_rows(self, rows: Iterable[Sequence[Any]], *, sqlite: bool) -> list[DTO]:
        """Dump rows as the driver returned them (a cached statement's cursor)."""
        row = self.raw_sqlite_row if sqlite else self.row
        return [row(values) for values in rows]

    def instance(self, obj: peewee.Model) -> DTO:
        """Dump a model instance."""
        return self.row([getattr(obj, f.name if not isinstance(f, peewee.ForeignKeyField)
                                 else f.object_id_name) for f in self.fields])

    def select(self, *extra: Any) -> peewee.ModelSelect:
        """Select this DTO's columns (plus ``extra`` expressions) from the model."""
        return self.model.select(*self.fields, *extra)

    def one(self, query: peewee.ModelSelect) -> DTO | None:
        """Run ``query`` (made by ``select``) and dump its first row, or return None."""
        for values in query.limit(1).tuples():
            # peewee's stubs type .tuples() rows as the model, not as tuples.
            return self.row(values)  # type: ignore[arg-type]  # see above
        return None

    def written(self, query: Any) -> DTO | None:
        """Run a write with ``RETURNING`` this DTO's columns; dump its first row, or None."""
        # Read every row: an unfinished cursor would keep SQLite's statement open.
        rows = list(query.returning(*self.fields).tuples().execute())
        return self.row(rows[0]) if rows else None

    def written_one(self, query: Any) -> DTO:
        """Run a write with ``RETURNING`` that returns its row (an insert, an upsert, an
        update of a row the caller holds); dump it. No row: NotFoundError."""
        row = self.written(query)
        if row is None:
            raise NotFoundError(f"no {self.model._meta.table_name} row was written")
        return row

    def many(self, query: peewee.ModelSelect) -> list[DTO]:
        """Run ``query`` (made by ``select``) and dump every row."""
        # peewee's stubs type .tuples() rows as the model, not as tuples.
        return self.rows(query.tuples())  # type: ignore[arg-type]  # see above
