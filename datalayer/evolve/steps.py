"""What a pending migration will do, read before it runs: data it drops, steps that must
run outside a transaction, and peewee_migrate's index bookkeeping fixed.

A migration's ``migrate(migrator, database)`` only queues operations (and updates the
migration state); nothing reaches the database until ``migrator()`` runs them. So the
queue can be read first: ``datalayer migrate`` counts the rows a ``remove_model`` or a
``remove_fields`` would take with it and refuses without ``--allow-data-loss``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import peewee as pw
from peewee_migrate import Migrator
from playhouse.migrate import Operation

from datalayer.migration_ops import CONCURRENTLY

__all__ = ["DataLoss", "data_loss", "install_index_fix", "is_concurrent", "queue"]

_DROP_SQL = re.compile(r"\bDROP\s+(TABLE|COLUMN)\s+(?:IF\s+EXISTS\s+)?\"?(\w+)\"?", re.I)


class DataLoss:
    """A pending step that drops a table or column holding data."""

    def __init__(self, migration: str, what: str, rows: int) -> None:
        self.migration, self.what, self.rows = migration, what, rows

    def __str__(self) -> str:
        return f"{self.migration}: drops {self.what} ({self.rows} non-null value(s))"


def queue(read: Callable[[str], Any], migrator: Migrator, database: pw.Database,
          name: str, *, downgrade: bool = False) -> list[Any]:
    """Queue migration ``name`` (or its rollback) on ``migrator``; return its operations."""
    migrate, rollback = read(name)
    (rollback if downgrade else migrate)(migrator, database, fake=False)
    return list(migrator.__ops__)


def is_concurrent(ops: list[Any], name: str) -> bool:
    """Tell whether a migration is made of CONCURRENTLY steps (refuse a mix)."""
    flags = [isinstance(op, Operation) and op.fn.__name__ == "sql"
             and bool(CONCURRENTLY.search(op.args[0])) for op in ops]
    if any(flags) and not all(flags):
        raise ValueError(f"{name}: a CONCURRENTLY step runs outside the migration's "
                         "transaction, so its migration may hold nothing else")
    return bool(flags) and all(flags)


def data_loss(database: pw.Database, ops: list[Any], name: str) -> list[DataLoss]:
    """Return the drops among ``ops`` that would delete data present now."""
    found = []
    tables = set(database.get_tables())
    for op in ops:
        if not isinstance(op, Operation):
            continue
        step = op.fn.__name__
        if step == "drop_table" and op.args[0] in tables:
            rows = _count(database, op.args[0], None)
            if rows:
                found.append(DataLoss(name, f"table {op.args[0]}", rows))
        elif step == "drop_column" and op.args[0] in tables:
            rows = _count(database, op.args[0], op.args[1])
            if rows:
                found.append(DataLoss(name, f"column {op.args[0]}.{op.args[1]}", rows))
        elif step == "sql":
            for kind, target in _DROP_SQL.findall(op.args[0]):
                if kind.upper() == "TABLE" and target in tables:
                    rows = _count(database, target, None)
                    if rows:
                        found.append(DataLoss(name, f"table {target}", rows))
    return found


def _count(database: Any, table: str, column: str | None) -> int:
    if column is not None and column not in {c.name for c in database.get_columns(table)}:
        return 0
    what = f'"{column}"' if column else "*"
    return int(database.execute_sql(f'SELECT count({what}) FROM "{table}"').fetchone()[0])


def install_index_fix() -> None:
    """Let peewee_migrate's ``drop_index`` skip indexes declared with ``Model.index()``.

    peewee_migrate 2.3 unpacks every entry of ``Meta.indexes`` as a (columns, unique)
    tuple, so a rollback touching a table with a named index raised ``TypeError: cannot
    unpack non-iterable ModelIndex object``. ``migrations/conf.py`` calls this for
    ``pw_migrate``; ``datalayer migrate`` calls it too. Idempotent.
    """
    original = Migrator.drop_index
    if getattr(original, "_datalayer_fixed", False):
        return

    def drop_index(self: Migrator, model: Any, *columns: str) -> Any:
        model = self.__get_model__(model)
        meta = model._meta
        named = [i for i in meta.indexes if isinstance(i, pw.ModelIndex)]
        meta.indexes = [i for i in meta.indexes if not isinstance(i, pw.ModelIndex)]
        try:
            return original(self, model, *columns)
        finally:
            meta.indexes = [*meta.indexes, *named]

    drop_index._datalayer_fixed = True  # type: ignore[attr-defined]
    Migrator.drop_index = drop_index  # type: ignore[method-assign]
