"""SQLite's 12-step table rebuild, from the model the migration state holds.

SQLite's ALTER TABLE cannot change a column's type, NULL, DEFAULT, foreign key or a
table's CHECKs. Its documented procedure (sqlite.org/lang_altertable.html, "Making Other
Kinds Of Table Schema Changes"): with foreign keys off and inside the transaction, create
the new table, copy the rows, drop the old table, rename the new one, recreate the
indexes and triggers, then ``PRAGMA foreign_key_check``. The new CREATE TABLE is the
model's own (rendered by peewee from the migration state when the step is queued), never
an edit of the old statement's text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from datalayer.migration_ops.base import Step, quote

__all__ = ["RebuildError", "queue_rebuild"]


class RebuildError(RuntimeError):
    """A rebuild that would lose rows or leave them pointing nowhere (nothing is kept)."""


def queue_rebuild(migrator: Any, table: str, *, fill: Mapping[str, str] | None = None,
                  drops: tuple[tuple[str, str, str | None], ...] = ()) -> None:
    """Queue a rebuild of ``table`` to the model the migration state holds now.

    ``fill`` maps a column to the SQL expression its copied value comes from (a new NOT
    NULL column's constant, ``coalesce(col, default)``); other columns are copied as they
    are, and columns the model no longer has are left behind (``drops`` says so).
    """
    model = migrator.orm[table]
    database = migrator.__database__
    create = create_table_sql(database, model)
    columns = [f.column_name for f in model._meta.sorted_fields]
    wanted = dict(fill or {})

    def run() -> None:
        rebuild(database, table, create, columns, wanted)

    step = Step(f"rebuild {table}", run, drops=drops)
    step.rebuilds_table = table  # type: ignore[attr-defined]  # migrate announces it
    migrator.__ops__.append(step)


def create_table_sql(database: Any, model: Any) -> str:
    """Return the model's CREATE TABLE as peewee writes it for ``database``."""
    bound = model._meta.database
    model._meta.database = database
    try:
        sql, params = model._schema._create_table(safe=False).query()
    finally:
        model._meta.database = bound
    if params:
        raise RebuildError(f"{model._meta.table_name}: CREATE TABLE with parameters {params}")
    return str(sql)


def rebuild(database: Any, table: str, create: str, columns: list[str],
            fill: Mapping[str, str]) -> None:
    """Run the rebuild (foreign keys must be off: a DROP would cascade)."""
    if database.execute_sql("PRAGMA foreign_keys").fetchone()[0]:
        raise RebuildError(f"rebuilding {table} with foreign keys on would delete the rows "
                           "that reference it: run it through `datalayer migrate`")
    old = [row[1] for row in database.execute_sql(f"PRAGMA table_info({quote(table)})")]
    kept = _kept_indexes_and_triggers(database, table, set(columns))
    temporary = f"{table}__new__"
    prefix = f"CREATE TABLE {quote(table)} "
    if not create.startswith(prefix):
        raise RebuildError(f"unexpected CREATE TABLE for {table}: {create[:60]}")
    database.execute_sql(f"CREATE TABLE {quote(temporary)} " + create[len(prefix):])
    targets = [c for c in columns if c in old or c in fill]
    sources = [fill.get(c, quote(c)) for c in targets]
    before = database.execute_sql(f"SELECT count(*) FROM {quote(table)}").fetchone()[0]
    database.execute_sql(
        f"INSERT INTO {quote(temporary)} ({', '.join(quote(c) for c in targets)}) "
        f"SELECT {', '.join(sources)} FROM {quote(table)}")
    after = database.execute_sql(f"SELECT count(*) FROM {quote(temporary)}").fetchone()[0]
    if after != before:
        raise RebuildError(f"rebuilding {table} copied {after} of {before} rows")
    # Between the DROP and the RENAME the table does not exist: a trigger on another table
    # that names it (the audit log's, naming "user") makes a modern RENAME, which checks
    # the whole schema, fail. The legacy RENAME renames only the table; the names those
    # triggers use are right again once it is done.
    legacy = database.execute_sql("PRAGMA legacy_alter_table").fetchone()[0]
    database.execute_sql("PRAGMA legacy_alter_table = ON")
    try:
        database.execute_sql(f"DROP TABLE {quote(table)}")
        database.execute_sql(f"ALTER TABLE {quote(temporary)} RENAME TO {quote(table)}")
    finally:
        database.execute_sql(f"PRAGMA legacy_alter_table = {int(legacy)}")
    for statement in kept:
        database.execute_sql(statement)
    broken = database.execute_sql(f"PRAGMA foreign_key_check({quote(table)})").fetchall()
    if broken:
        raise RebuildError(f"rebuilding {table} leaves {len(broken)} row(s) whose foreign "
                           f"key points nowhere (first: rowid {broken[0][1]} -> "
                           f"{broken[0][2]})")


def _kept_indexes_and_triggers(database: Any, table: str, columns: set[str]) -> list[str]:
    """Return the CREATE statements of the table's indexes (those whose columns all
    survive) and triggers, indexes first."""
    rows = database.execute_sql(
        "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = ? "
        "AND type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY type, name",
        (table,)).fetchall()
    kept = []
    for kind, name, sql in rows:
        if kind == "index":
            used = {r[2] for r in database.execute_sql(f"PRAGMA index_info({quote(name)})")}
            if not used - {None} <= columns:
                continue
        kept.append(sql)
    return kept
