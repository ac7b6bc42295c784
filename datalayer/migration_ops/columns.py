"""Columns: add (filling existing rows), drop, change type or foreign key, NOT NULL.

PostgreSQL gets one ``ALTER TABLE`` per change, each written in one function here
(``*_sql``). SQLite, whose ALTER TABLE cannot change a column, rebuilds the table from
the model the migration state holds (``rebuild``).
"""

from __future__ import annotations

from typing import Any

import peewee as pw

from datalayer.migration_ops.base import (
    Step,
    index_name,
    is_sqlite,
    literal,
    queue_sql,
    quote,
    server_default,
)
from datalayer.migration_ops.indexes import index_sql
from datalayer.migration_ops.rebuild import queue_rebuild

__all__ = ["UNSET", "add_column", "add_not_null", "alter_column", "drop_column",
           "drop_not_null", "forget_field"]

UNSET: Any = object()  # no fill given


def _render(database: Any, node: Any) -> str:
    ctx = database.get_sql_context()
    return str(ctx.sql(node).query()[0])


def fk_clause(field: pw.Field) -> str:
    """Return ``REFERENCES ... ON DELETE ...`` for a foreign key field, else ''."""
    if not isinstance(field, pw.ForeignKeyField):
        return ""
    clause = (f" REFERENCES {quote(field.rel_model._meta.table_name)} "
              f"({quote(field.rel_field.column_name)})")
    clause += f" ON DELETE {field.on_delete}" if field.on_delete else ""
    return clause + (f" ON UPDATE {field.on_update}" if field.on_update else "")


def add_column(migrator: Any, table: str, name: str, field: pw.Field, *,
               fill: Any = UNSET) -> None:
    """Add column ``name``; a NOT NULL one without a server default gets ``fill`` (a
    constant) in every existing row. Builds the field's own index (``index=True``,
    ``unique=True``, a foreign key's)."""
    model = migrator.orm[table]
    model._meta.add_field(name, field)
    column = field.column_name
    database = migrator.__database__
    if is_sqlite(migrator):
        if field.null and server_default(field) is None and fill is UNSET and \
                not isinstance(field, pw.ForeignKeyField):
            queue_sql(migrator, f"ALTER TABLE {quote(table)} ADD COLUMN "
                                f"{_render(database, field.ddl(database.get_sql_context()))}")
        else:
            filled = {} if fill is UNSET else {column: literal(fill, sqlite=True)}
            queue_rebuild(migrator, table, fill=filled)
    else:
        ddl = _render(database, field.ddl(database.get_sql_context())) + fk_clause(field)
        if fill is not UNSET and server_default(field) is None:
            # Every row gets the constant, then the column keeps no DEFAULT (the model's).
            queue_sql(migrator, f"ALTER TABLE {quote(table)} ADD COLUMN {ddl} "
                                f"DEFAULT {literal(fill, sqlite=False)}")
            queue_sql(migrator, f"ALTER TABLE {quote(table)} ALTER COLUMN {quote(column)} "
                                "DROP DEFAULT")
        else:
            queue_sql(migrator, f"ALTER TABLE {quote(table)} ADD COLUMN {ddl}")
    if (field.index or field.unique) and not field.primary_key:
        name_ = index_name(pw.ModelIndex(model, (field,), field.unique))
        queue_sql(migrator, index_sql(table, name_, [field], unique=bool(field.unique),
                                      where=None))


def forget_field(model: Any, field: pw.Field) -> None:
    """Remove a field from a migration-state model: its accessors, backref, indexes."""
    meta = model._meta
    meta.remove_field(field.name)
    for attribute in (field.name, getattr(field, "object_id_name", None)):
        if attribute and attribute in model.__dict__:
            delattr(model, attribute)
    backref = getattr(field, "backref", None)
    if isinstance(field, pw.ForeignKeyField) and backref and backref != "+" and \
            backref in field.rel_model.__dict__:
        delattr(field.rel_model, backref)
    meta.indexes = [i for i in meta.indexes if not _uses(i, field)]


def _uses(index: Any, field: pw.Field) -> bool:
    if isinstance(index, pw.ModelIndex):
        expressions: Any = index._expressions  # type: ignore[attr-defined]  # private
        return any(e is field for e in expressions)
    columns, _ = index
    return field.name in columns or field.column_name in columns


def drop_column(migrator: Any, table: str, name: str) -> None:
    """Drop column ``name`` with its indexes and foreign key (its values are lost:
    ``datalayer migrate`` refuses while it holds any, without --allow-data-loss)."""
    model = migrator.orm[table]
    field = model._meta.fields[name]
    forget_field(model, field)
    drops = (("column", table, field.column_name),)
    if is_sqlite(migrator):
        queue_rebuild(migrator, table, drops=drops)
        return
    database = migrator.__database__
    statement = f"ALTER TABLE {quote(table)} DROP COLUMN {quote(field.column_name)}"
    migrator.__ops__.append(Step(f"drop column {table}.{field.column_name}",
                                 lambda: database.execute_sql(statement), drops=drops))


def alter_column(migrator: Any, table: str, name: str, field: pw.Field) -> None:
    """Change a column's type, length or foreign key to ``field`` (the column keeps its
    name, its values and its indexes; the field may take a new attribute ``name``).

    PostgreSQL casts the values (``USING column::type``) and fails, changing nothing,
    when one does not convert.
    """
    model = migrator.orm[table]
    meta = model._meta
    old = meta.columns.get(field.column_name or name) or meta.fields[name]
    forget_field(model, old)
    # The column keeps its place (peewee orders fields by their creation counter).
    field._order, field._sort_key = old._order, old._sort_key  # type: ignore[attr-defined]  # peewee's private ordering, not in its stubs
    meta.add_field(name, field)
    if is_sqlite(migrator):
        queue_rebuild(migrator, table)
        return
    database = migrator.__database__
    ctx = database.get_sql_context
    before, after = (_render(database, f.ddl_datatype(ctx())) for f in (old, field))
    column = quote(field.column_name)
    if before != after:
        queue_sql(migrator, f"ALTER TABLE {quote(table)} ALTER COLUMN {column} TYPE {after} "
                            f"USING {column}::{after}")
    if fk_clause(old) != fk_clause(field):
        if isinstance(old, pw.ForeignKeyField):
            migrator.__ops__.append(Step(f"drop foreign key {table}.{field.column_name}",
                                         lambda: _drop_pg_foreign_key(
                                             database, table, field.column_name)))
        if isinstance(field, pw.ForeignKeyField):
            add_foreign_key_sql(migrator, table, field)


def add_foreign_key_sql(migrator: Any, table: str, field: pw.Field) -> None:
    """Queue PostgreSQL's ADD FOREIGN KEY for an existing column (named as CREATE TABLE
    names it), checked against the rows in a second statement."""
    name = quote(f"{table}_{field.column_name}_fkey")
    queue_sql(migrator, f"ALTER TABLE {quote(table)} ADD CONSTRAINT {name} FOREIGN KEY "
                        f"({quote(field.column_name)}){fk_clause(field)} NOT VALID")
    queue_sql(migrator, f"ALTER TABLE {quote(table)} VALIDATE CONSTRAINT {name}")


def _drop_pg_foreign_key(database: Any, table: str, column: str) -> None:
    rows = database.execute_sql(
        "SELECT c.conname FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = "
        "c.conrelid AND a.attnum = ANY(c.conkey) WHERE c.contype = 'f' AND "
        "c.conrelid = %s::regclass AND a.attname = %s", (quote(table), column)).fetchall()
    for (name,) in rows:
        database.execute_sql(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}")


def add_not_null(migrator: Any, table: str, name: str, *, fill: Any = UNSET) -> None:
    """Make a column NOT NULL; with ``fill`` (a constant, or a ``ServerDefault`` whose
    expression is used), rows holding NULL get it first. Without, a NULL fails the step."""
    field = migrator.orm[table]._meta.fields[name]
    field.null = False
    column = quote(field.column_name)
    if is_sqlite(migrator):
        filled = {} if fill is UNSET else {
            field.column_name: f"coalesce({column}, {literal(fill, sqlite=True)})"}
        queue_rebuild(migrator, table, fill=filled)
        return
    if fill is not UNSET:
        queue_sql(migrator, f"UPDATE {quote(table)} SET {column} = "
                            f"{literal(fill, sqlite=False)} WHERE {column} IS NULL")
    queue_sql(migrator, f"ALTER TABLE {quote(table)} ALTER COLUMN {column} SET NOT NULL")


def drop_not_null(migrator: Any, table: str, name: str) -> None:
    """Let a column hold NULL."""
    field = migrator.orm[table]._meta.fields[name]
    field.null = True
    if is_sqlite(migrator):
        queue_rebuild(migrator, table)
        return
    queue_sql(migrator, f"ALTER TABLE {quote(table)} ALTER COLUMN "
                        f"{quote(field.column_name)} DROP NOT NULL")
