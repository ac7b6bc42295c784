"""Renaming a table: its rows, indexes and constraints go with it."""

from __future__ import annotations

from typing import Any

import peewee as pw

from datalayer.migration_ops.base import Step, index_name, is_sqlite, queue_sql, quote
from datalayer.migration_ops.indexes import index_sql

__all__ = ["rename_table"]


def rename_table(migrator: Any, old: str, new: str) -> None:
    """Rename table ``old`` to ``new``, keeping the model class in the migration state.

    The indexes named after the table (a field's ``index=True``, ``unique=True``, a
    foreign key's) take the new name; on PostgreSQL so do the primary key and the
    foreign keys it named itself (``old_pkey``, ``old_column_fkey``).
    """
    model = migrator.orm[old]
    meta = model._meta
    fields = [f for f in meta.sorted_fields if (f.index or f.unique) and not f.primary_key]
    before = [index_name(pw.ModelIndex(model, (f,), f.unique)) for f in fields]
    migrator.orm.remove(model)
    meta.set_table_name(new)
    migrator.orm.add(model)
    if is_sqlite(migrator):
        database = migrator.__database__
        migrator.__ops__.append(Step(f"rename {old} to {new}",
                                     lambda: _rename_sqlite_table(database, old, new)))
    else:
        queue_sql(migrator, f"ALTER TABLE {quote(old)} RENAME TO {quote(new)}")
    for field, name in zip(fields, before, strict=True):
        renamed = index_name(pw.ModelIndex(model, (field,), field.unique))
        if renamed == name:
            continue
        if is_sqlite(migrator):
            queue_sql(migrator, f"DROP INDEX {quote(name)}")
            queue_sql(migrator, index_sql(new, renamed, [field], unique=bool(field.unique),
                                          where=None))
        else:
            queue_sql(migrator, f"ALTER INDEX {quote(name)} RENAME TO {quote(renamed)}")
    if not is_sqlite(migrator):
        database = migrator.__database__
        migrator.__ops__.append(Step(f"rename {old}'s constraints",
                                     lambda: _rename_pg_constraints(database, old, new)))


def _rename_pg_constraints(database: Any, old: str, new: str) -> None:
    rows = database.execute_sql(
        "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass "
        "AND contype IN ('p', 'f')", (quote(new),)).fetchall()
    for (name,) in rows:
        if name.startswith(old + "_") and name.endswith(("_pkey", "_fkey")):
            renamed = new + name[len(old):]
            database.execute_sql(f"ALTER TABLE {quote(new)} RENAME CONSTRAINT "
                                 f"{quote(name)} TO {quote(renamed)}")


def _rename_sqlite_table(database: Any, old: str, new: str) -> None:
    """Rename with SQLite's modern ALTER TABLE, which also renames the table in the foreign
    keys of the tables referencing it (``datalayer migrate`` runs in the legacy mode, in
    which table rebuilds keep other tables' triggers intact)."""
    legacy = database.execute_sql("PRAGMA legacy_alter_table").fetchone()[0]
    database.execute_sql("PRAGMA legacy_alter_table = OFF")
    try:
        database.execute_sql(f"ALTER TABLE {quote(old)} RENAME TO {quote(new)}")
    finally:
        database.execute_sql(f"PRAGMA legacy_alter_table = {int(legacy)}")
