"""Compiled dumpers: produce exactly what ``schema.dump`` would, without marshmallow's
per-field call overhead, from rows selected in column order (peewee's ``.tuples()`` or
the driver's own rows). The equality with ``schema.dump`` is proven by property-based
tests (tests/test_schemas_common.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import marshmallow
import peewee
from marshmallow import fields

from datalayer.models.base import to_utc


def _iso(value: Any) -> Any:
    if value is None or isinstance(value, str):  # SQLite hands dates back as text
        return value
    return value.isoformat()


def _iso_utc(value: Any) -> Any:
    return None if value is None else to_utc(value).isoformat()  # type: ignore[union-attr]


def _bool(value: Any) -> Any:
    return None if value is None else bool(value)


def _json_text(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _converter(field: fields.Field, *, raw_sqlite: bool = False) -> Callable[[Any], Any] | None:
    """How one value is dumped; ``None`` where it is passed through unchanged.

    ``raw_sqlite``: the value comes straight from the sqlite3 driver (JSON still text).
    """
    if raw_sqlite and isinstance(field, fields.Raw | fields.List):  # JSON columns
        return _json_text
    if isinstance(field, fields.DateTime):
        return _iso_utc
    if isinstance(field, fields.Date):
        return _iso
    if isinstance(field, fields.Boolean):
        return _bool
    return None


class Dumper:
    """Produce exactly what ``schema.dump`` would, from rows selected in column order.

    Built once per schema; ``columns`` lists the column names to select, in order.
    The equality with ``schema.dump`` is proven by property-based tests.
    """

    def __init__(self, schema: marshmallow.Schema, model: type[peewee.Model]) -> None:
        self.schema = schema
        self.model = model
        dumped = [(name, f) for name, f in schema.dump_fields.items()]
        self.columns: tuple[str, ...] = tuple(name for name, _ in dumped)
        self.fields: tuple[peewee.Field, ...] = tuple(
            model._meta.columns[name] for name in self.columns
        )
        self.row = self._compile([_converter(f) for _, f in dumped])
        self.raw_sqlite_row = self._compile([_converter(f, raw_sqlite=True) for _, f in dumped])

    def _compile(self, converters: list[Callable[[Any], Any] | None]
                 ) -> Callable[[Sequence[Any]], dict[str, Any]]:
        """Build the function that dumps one row given in ``columns`` order."""
        columns = self.columns
        if all(c is None for c in converters):
            return lambda values: dict(zip(columns, values, strict=True))
        plan = tuple(zip(columns, converters, strict=True))

        def row(values: Sequence[Any]) -> dict[str, Any]:
            return {
                name: (value if conv is None else conv(value))
                for (name, conv), value in zip(plan, values, strict=True)
            }

        return row

    def rows(self, rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
        """Dump many rows (values converted by peewee, e.g. from ``.tuples()``)."""
        row = self.row
        return [row(values) for values in rows]

    def raw_rows(self, rows: Iterable[Sequence[Any]], *, sqlite: bool) -> list[dict[str, Any]]:
        """Dump rows as the driver returned them (a cached statement's cursor)."""
        row = self.raw_sqlite_row if sqlite else self.row
        return [row(values) for values in rows]

    def instance(self, obj: peewee.Model) -> dict[str, Any]:
        """Dump a model instance."""
        return self.row([getattr(obj, f.name if not isinstance(f, peewee.ForeignKeyField)
                                 else f.object_id_name) for f in self.fields])

    def select(self, *extra: Any) -> peewee.ModelSelect:
        """Select this DTO's columns (plus ``extra`` expressions) from the model."""
        return self.model.select(*self.fields, *extra)

    def one(self, query: peewee.ModelSelect) -> dict[str, Any] | None:
        """Run ``query`` (made by ``select``) and dump its first row, or return None."""
        for values in query.limit(1).tuples():
            return self.row(values)  # type: ignore[arg-type]
        return None

    def many(self, query: peewee.ModelSelect) -> list[dict[str, Any]]:
        """Run ``query`` (made by ``select``) and dump every row."""
        return self.rows(query.tuples())  # type: ignore[arg-type]
