"""How ``migrate`` runs migrations that must not stop writers, and what it says first.

A migration made of online steps (``datalayer.migration_ops.online``) or of ``CONCURRENTLY``
statements runs outside the migration's transaction on PostgreSQL: unit by unit, each
in a transaction of its own, the units that take a lock writers need with a short
``lock_timeout``, retried with backoff. A ``CREATE INDEX CONCURRENTLY`` that fails
leaves an ``INVALID`` index behind: it is dropped, before a build (a run killed half-way)
and after a failed one, so the migration stays pending with nothing left over. That
holds for ``add_index(..., concurrently=True)`` and for the index ``contract`` builds.

On SQLite, a table rebuild holds the write lock while it copies every row: ``rebuilds``
lists the tables a pending migration rebuilds, with their rows, for migrate to say so
before it starts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import peewee as pw
from playhouse.migrate import Operation

from datalayer.migration_ops import CONCURRENTLY
from datalayer.migration_ops.steps import Statement, settings

__all__ = ["drop_invalid_indexes", "is_online", "rebuild_notice", "rebuilds", "run_online",
           "settings", "use_settings"]

_CREATE_INDEX = re.compile(
    r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?\"?([^\"\s]+)",
    re.IGNORECASE)

# playhouse's SqliteMigrator operations that rebuild the table (create, copy, drop).
_SQLITE_REBUILDING = {"add_not_null", "drop_not_null", "add_column_default",
                      "drop_column_default", "alter_column_type", "add_constraint",
                      "drop_constraint", "add_foreign_key_constraint"}


def _is_online(op: Any) -> bool:
    if getattr(op, "datalayer_online", False):
        return True
    return (isinstance(op, Operation) and op.fn.__name__ == "sql"
            and bool(CONCURRENTLY.search(op.args[0])))


def is_online(ops: list[Any], name: str) -> bool:
    """Tell whether a migration runs outside the transaction (refuse a mix)."""
    flags = [_is_online(op) for op in ops]
    if any(flags) and not all(flags):
        raise ValueError(f"{name}: an online step (CONCURRENTLY, a backfill, a validated "
                         "constraint) runs outside the migration's transaction, so its "
                         "migration may hold only such steps")
    return bool(flags) and all(flags)


def _index_names(ops: list[Any]) -> list[str]:
    """The indexes these ops build CONCURRENTLY: ``add_index`` SQL, and steps' statements
    (``contract`` builds the column's index on its new copy)."""
    texts = [op.args[0] for op in ops if isinstance(op, Operation) and op.fn.__name__ == "sql"]
    texts += [unit.postgres for op in ops for unit in getattr(op, "units", ())
              if isinstance(unit, Statement)]
    return [match.group(1) for text in texts for match in [_CREATE_INDEX.search(text)]
            if match]


def drop_invalid_indexes(database: Any, ops: list[Any]) -> list[str]:
    """Drop the INVALID indexes left by an earlier build of these ops; return names."""
    dropped = []
    for name in _index_names(ops):
        row = database.execute_sql(
            "SELECT NOT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = "
            "i.indexrelid WHERE c.relname = %s AND pg_table_is_visible(c.oid)",
            (name,)).fetchone()
        if row and row[0]:
            database.execute_sql("SET lock_timeout = 0")
            database.execute_sql(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
            dropped.append(name)
    return dropped


def run_online(database: Any, ops: list[Any],
               on_retry: Callable[[str, int, float], None] | None = None) -> None:
    """Run a migration's online ops outside any transaction, in order."""
    drop_invalid_indexes(database, ops)
    try:
        for op in ops:
            if getattr(op, "datalayer_online", False):
                op.run_outside(on_retry)
            else:  # CONCURRENTLY: writers never wait for it, so it may wait for them
                database.execute_sql("SET lock_timeout = 0")
                op.run()
    finally:
        database.execute_sql("SET lock_timeout = 0")


def rebuilds(database: pw.Database, ops: list[Any]) -> list[tuple[str, int]]:
    """Return the tables these (SQLite) ops rebuild, each with its row count."""
    tables: list[str] = []
    for op in ops:
        table = getattr(op, "rebuilds_table", None)
        if table is None and isinstance(op, Operation):
            name = op.fn.__name__
            if name in _SQLITE_REBUILDING or (
                    name == "add_column" and len(op.args) > 2
                    and not getattr(op.args[2], "null", True)):
                table = op.args[0]
        if table and table not in tables:
            tables.append(table)
    present = set(database.get_tables())
    raw: Any = database
    return [(t, int(raw.execute_sql(f'SELECT count(*) FROM "{t}"').fetchone()[0]))
            for t in tables if t in present]


def rebuild_notice(migration: str, tables: list[tuple[str, int]]) -> str:
    """Say what a rebuild will do before it starts."""
    listed = ", ".join(f"{t} ({rows} rows)" for t, rows in tables)
    return (f"{migration} rebuilds {listed}: SQLite copies every row into a new table, "
            "and the database is write-locked until the migration commits")


def use_settings(*, lock_timeout: float, retries: int) -> Any:
    """Apply migrate's lock settings to the online steps while a run lasts."""
    return settings.use(lock_timeout=lock_timeout, retries=retries)
