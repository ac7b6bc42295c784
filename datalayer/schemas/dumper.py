"""Compiled dumpers: produce exactly what ``schema.dump`` would, without marshmallow's
per-field call overhead, from rows selected in column order (peewee's ``.tuples()`` or
the driver's own rows). The equality with ``schema.dump`` is proven by property-based
tests (tests/test_schemas_common.py).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import marshmallow
import peewee
from marshmallow import fields

from datalayer.models.base import to_utc

UTC = dt.UTC


def _iso(value: Any) -> Any:
    if value is None or isinstance(value, str):  # SQLite hands dates back as text
        return value
    return value.isoformat()


def _iso_utc(value: Any) -> str:
    """ISO-8601 in UTC of a non-null timestamp given as a datetime or as stored text."""
    return to_utc(value).isoformat()  # type: ignore[union-attr]


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


def _expression(index: int, field: fields.Field, *, raw_sqlite: bool) -> str:
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


def compile_row(columns: Sequence[str], dump_fields: Sequence[fields.Field], *,
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
    return namespace["row"]


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
        dump_fields = [f for _, f in dumped]
        self.row = compile_row(self.columns, dump_fields, raw_sqlite=False)
        self.raw_sqlite_row = compile_row(self.columns, dump_fields, raw_sqlite=True)

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

    def written(self, query: Any) -> dict[str, Any] | None:
        """Run a write with ``RETURNING`` this DTO's columns; dump its first row, or None."""
        # Read every row: an unfinished cursor would keep SQLite's statement open.
        rows = list(query.returning(*self.fields).tuples().execute())
        return self.row(rows[0]) if rows else None

    def many(self, query: peewee.ModelSelect) -> list[dict[str, Any]]:
        """Run ``query`` (made by ``select``) and dump every row."""
        return self.rows(query.tuples())  # type: ignore[arg-type]
