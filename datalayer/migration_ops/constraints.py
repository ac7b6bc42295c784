"""CHECK constraints, server DEFAULTs, triggers and raw per-backend statements."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from datalayer.migration_ops.base import (
    ServerDefault,
    check_constraint,
    constraint_name,
    is_sqlite,
    queue_sql,
    quote,
)
from datalayer.migration_ops.rebuild import queue_rebuild

__all__ = ["Trigger", "add_check", "add_trigger", "drop_check", "drop_trigger", "run_sql",
           "set_default"]


def add_check(migrator: Any, table: str, name: str, expression: str, *,
              sqlite: str | None = None) -> None:
    """Add CHECK constraint ``name`` (``sqlite``: SQLite's own expression); existing rows
    must pass it, or the migration fails naming the constraint.

    PostgreSQL adds it ``NOT VALID`` and validates it in a second statement, which takes
    a weaker lock than a plain ``ADD CONSTRAINT``; SQLite rebuilds the table.
    """
    meta = migrator.orm[table]._meta
    meta.constraints = [*(meta.constraints or []), check_constraint(name, expression, sqlite=sqlite)]
    if is_sqlite(migrator):
        queue_rebuild(migrator, table)
        return
    queue_sql(migrator, f"ALTER TABLE {quote(table)} ADD CONSTRAINT {name} "
                        f"CHECK ({expression}) NOT VALID")
    queue_sql(migrator, f"ALTER TABLE {quote(table)} VALIDATE CONSTRAINT {name}")


def drop_check(migrator: Any, table: str, name: str) -> None:
    """Drop CHECK constraint ``name``."""
    meta = migrator.orm[table]._meta
    meta.constraints = [c for c in meta.constraints or [] if constraint_name(c) != name] or None
    if is_sqlite(migrator):
        queue_rebuild(migrator, table)
        return
    queue_sql(migrator, f"ALTER TABLE {quote(table)} DROP CONSTRAINT IF EXISTS {name}")


def set_default(migrator: Any, table: str, field: str, default: ServerDefault | None) -> None:
    """Set (or, with None, drop) the server-side DEFAULT of a column."""
    model = migrator.orm[table]
    column = model._meta.fields[field]
    # Any class named ServerDefault: 001 and the models each carry their own copy.
    others = [c for c in column.constraints or [] if type(c).__name__ != "ServerDefault"]
    column.constraints = [*others, default] if default is not None else (others or None)
    if is_sqlite(migrator):  # SQLite cannot alter a default: rebuild the table
        queue_rebuild(migrator, table)
        return
    what = f"SET DEFAULT {default.postgres}" if default is not None else "DROP DEFAULT"
    queue_sql(migrator, f"ALTER TABLE {quote(table)} ALTER COLUMN "
                        f"{quote(column.column_name)} {what}")


class Trigger:
    """A trigger (and the function it calls), as a model declares it in ``Meta.triggers``.

    Each backend gets the statements that create it and the ones that drop it. The
    PostgreSQL text is written for ``execute_sql`` with parameters: a literal ``%`` is
    ``%%``, as in migration 001.
    """

    def __init__(self, name: str, *, postgres: Iterable[str] = (), sqlite: Iterable[str] = (),
                 drop_postgres: Iterable[str] = (), drop_sqlite: Iterable[str] = ()) -> None:
        self.name = name
        self.postgres, self.sqlite = tuple(postgres), tuple(sqlite)
        self.drop_postgres, self.drop_sqlite = tuple(drop_postgres), tuple(drop_sqlite)

    def key(self) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
        """What makes two declarations the same trigger (whitespace aside)."""
        return (self.name, tuple(" ".join(s.split()) for s in self.postgres),
                tuple(" ".join(s.split()) for s in self.sqlite))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Trigger) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def __repr__(self) -> str:
        parts = [repr(self.name)] + [
            f"{label}={value!r}" for label, value in (
                ("postgres", self.postgres), ("sqlite", self.sqlite),
                ("drop_postgres", self.drop_postgres), ("drop_sqlite", self.drop_sqlite))
            if value]
        return f"Trigger({', '.join(parts)})"


def add_trigger(migrator: Any, table: str, trigger: Trigger) -> None:
    """Create ``trigger`` on ``table`` (its statements for this backend)."""
    meta = migrator.orm[table]._meta
    meta.triggers = [*(t for t in getattr(meta, "triggers", None) or ()
                       if t.name != trigger.name), trigger]
    for statement in trigger.sqlite if is_sqlite(migrator) else trigger.postgres:
        migrator.sql(statement)


def drop_trigger(migrator: Any, table: str, trigger: Trigger) -> None:
    """Drop ``trigger`` from ``table`` (its drop statements for this backend)."""
    meta = migrator.orm[table]._meta
    meta.triggers = [t for t in getattr(meta, "triggers", None) or () if t.name != trigger.name]
    for statement in trigger.drop_sqlite if is_sqlite(migrator) else trigger.drop_postgres:
        migrator.sql(statement)


def run_sql(migrator: Any, *, postgres: Iterable[str] = (), sqlite: Iterable[str] = ()) -> None:
    """Run statements written for each backend (triggers, functions, data fixes)."""
    for statement in sqlite if is_sqlite(migrator) else postgres:
        queue_sql(migrator, statement)
