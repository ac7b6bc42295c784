"""What a table looks like, read off a peewee model: the unit makemigrations compares.

The same reading serves the models (the schema wanted) and the models peewee_migrate
rebuilds by replaying the migration files (the schema the migrations make). Everything
a migration can change is here: column types per backend, NULL, server DEFAULT, foreign
keys with their actions, indexes with their names, uniqueness and ``WHERE``, named
CHECK constraints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

import peewee as pw

__all__ = ["FieldState", "IndexState", "TableState", "state_of", "states_of"]

_PG = pw.PostgresqlDatabase(None)
_SQLITE = pw.SqliteDatabase(None)
_CHECK = re.compile(r"\s*CONSTRAINT\s+(\S+)\s+CHECK\s*\((.*)\)\s*$", re.IGNORECASE | re.DOTALL)


def _render(database: pw.Database, node: Any) -> str:
    ctx: Any = database.get_sql_context()
    return str(ctx.sql(node).query()[0])


@dataclass(frozen=True)
class FieldState:
    """One column: how it is declared and the DDL it makes on each backend."""

    name: str
    column: str
    kind: str  # the constructor a migration writes, e.g. "pw.TextField"
    type_pg: str
    type_sqlite: str
    null: bool
    primary_key: bool
    unique: bool
    index: bool
    max_length: int | None
    default: tuple[str, str] | None  # server DEFAULT (PostgreSQL, SQLite)
    fk: tuple[str, str, str | None, str | None] | None  # table, column, on_delete, on_update
    field: Any

    @property
    def shape(self) -> tuple[Any, ...]:
        """Everything but the name: what a rename keeps."""
        return (self.kind, self.type_pg, self.type_sqlite, self.null, self.unique,
                self.max_length, self.default, self.fk)


@dataclass(frozen=True)
class IndexState:
    name: str
    fields: tuple[str, ...]
    unique: bool
    where: str | None
    # Made by a field's index=True / unique=True: the same index either way.
    implicit: bool = dataclass_field(compare=False)


@dataclass
class TableState:
    name: str
    model: Any
    fields: dict[str, FieldState]
    indexes: dict[str, IndexState]
    checks: dict[str, tuple[str, str]]  # name -> expression (PostgreSQL, SQLite)
    composite_key: tuple[str, ...] | None
    triggers: dict[str, Any] = dataclass_field(default_factory=dict)  # name -> Trigger


def _server_default(field: pw.Field) -> tuple[str, str] | None:
    for node in field.constraints or ():
        if getattr(node, "prefix", "") == "DEFAULT " and hasattr(node, "postgres"):
            return (node.postgres, node.sqlite)
        sql = getattr(node, "sql", None)
        if isinstance(sql, str) and sql.upper().startswith("DEFAULT "):
            return (sql[8:], sql[8:])
    return None


def _kind(field: pw.Field) -> str:
    if field.field_type == "TIMESTAMPTZ":
        return "TimestampTZField"
    for cls in type(field).__mro__:
        if cls.__module__ == "peewee" and issubclass(cls, pw.Field):
            return "pw." + cls.__name__
    raise TypeError(f"{field.model.__name__}.{field.name}: no peewee field class to write")


def _field_state(field: pw.Field) -> FieldState:
    fk = None
    if isinstance(field, pw.ForeignKeyField):
        fk = (field.rel_model._meta.table_name, field.rel_field.column_name,
              field.on_delete, field.on_update)
    return FieldState(
        name=field.name, column=field.column_name, kind=_kind(field),
        type_pg=_render(_PG, field.ddl_datatype(_PG.get_sql_context())),
        type_sqlite=_render(_SQLITE, field.ddl_datatype(_SQLITE.get_sql_context())),
        null=bool(field.null), primary_key=bool(field.primary_key),
        unique=bool(field.unique), index=bool(field.index),
        max_length=getattr(field, "max_length", None), default=_server_default(field),
        fk=fk, field=field)


def _index_state(index: Any, implicit: set[str]) -> IndexState:
    # index: a peewee ModelIndex, read through its private attributes (no public ones).
    # An expression (fn.lower(Todo.title)) is kept as PostgreSQL text, as the index
    # writes it: 'lower("title")'; a migration's add_index takes that text back.
    names = []
    for expression in index._expressions:
        if isinstance(expression, pw.Field):
            names.append(expression.name)
        elif isinstance(expression, pw.SQL):
            names.append(expression.sql)
        else:
            names.append(_index_expression(index, expression))
    where = index._where
    return IndexState(
        name=index._name, fields=tuple(names), unique=bool(index._unique),
        where=_render(_PG, where) if where is not None else None,
        implicit=index._name in implicit)


def _index_expression(index: Any, expression: Any) -> str:
    """Return an index expression as CREATE INDEX writes it (columns unqualified)."""
    single = pw.Index("x", index._table, (expression,))
    sql = _render(_PG, single)
    opening = sql.index("(", sql.index(" ON "))
    return sql[opening + 1:sql.rindex(")")]


def _index_name(index: Any) -> str:
    return str(index._name)


def state_of(model: Any) -> TableState:
    """Read a model (from the package or from the migration state) as a TableState."""
    meta = model._meta
    fields = {f.name: _field_state(f) for f in meta.sorted_fields}
    implicit: set[str] = {
        _index_name(pw.ModelIndex(model, (f,), f.unique))
        for f in meta.sorted_fields if (f.index or f.unique) and not f.primary_key
    }
    indexes = {_index_name(i): _index_state(i, implicit) for i in meta.fields_to_index()}
    checks = {}
    for node in meta.constraints or ():
        # pw.SQL (one text) or a Dialect node (a text per backend).
        texts = (node.postgres, node.sqlite) if hasattr(node, "postgres") else \
            (getattr(node, "sql", "") or "",) * 2
        matches = [_CHECK.match(text or "") for text in texts]
        if matches[0] and matches[1]:
            checks[matches[0].group(1)] = (" ".join(matches[0].group(2).split()),
                                           " ".join(matches[1].group(2).split()))
    key = meta.primary_key
    composite = tuple(key.field_names) if isinstance(key, pw.CompositeKey) else None
    triggers = {t.name: t for t in getattr(meta, "triggers", None) or ()}
    return TableState(meta.table_name, model, fields, indexes, checks, composite, triggers)


def states_of(models: Any) -> dict[str, TableState]:
    """Read many models, keyed by table name, in foreign-key order."""
    ordered: list[Any] = pw.sort_models(list(models))  # type: ignore[attr-defined]  # not in peewee's stubs
    return {m._meta.table_name: state_of(m) for m in ordered}
