"""What a pending migration will do, read before it runs: data it drops, steps that must
run outside a transaction, and peewee_migrate's index bookkeeping fixed.

A migration's ``migrate(migrator, database)`` only queues operations (and updates the
migration state); nothing reaches the database until ``migrator()`` runs them. So the
queue can be read first: ``datalayer migrate`` counts the rows a ``remove_model`` or a
``remove_fields`` would take with it and refuses without ``--allow-data-loss``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import peewee as pw
from peewee_migrate import Migrator
from playhouse.migrate import Operation, make_index_name

from datalayer.migration_ops import CONCURRENTLY

__all__ = ["DataLoss", "column_defaults", "data_loss", "install_fixes", "install_index_fix", "is_concurrent",
           "queue"]

_DROP_SQL = re.compile(r"\bDROP\s+(TABLE|COLUMN)\s+(?:IF\s+EXISTS\s+)?\"?(\w+)\"?", re.I)


class DataLoss:
    """A pending step that drops a table or column holding data."""

    def __init__(self, migration: str, what: str, rows: int, default: Any = None) -> None:
        self.migration, self.what, self.rows, self.default = migration, what, rows, default

    def __str__(self) -> str:
        if self.what.startswith("table "):
            counted = "row(s)"
        elif self.default is not None:
            counted = f"value(s) other than its default {self.default!r}"
        else:
            counted = "non-null value(s)"
        return f"{self.migration}: drops {self.what} ({self.rows} {counted})"


def column_defaults(migrator: Migrator) -> dict[tuple[str, str], Any]:
    """Return each column's constant default in the migration state, by (table, column).

    A column that holds only its default loses nothing a rollback + migrate cannot give
    back (the column a migration added with ``default=0``): the guard counts the others.
    """
    found: dict[tuple[str, str], Any] = {}
    for model in migrator.orm:
        for field in model._meta.sorted_fields:
            value = _constant(field)
            if value is not None:
                found[(model._meta.table_name, field.column_name)] = value
    return found


def _constant(field: pw.Field) -> Any:
    if isinstance(field.default, bool | int | float | str):
        return field.default
    for node in field.constraints or ():
        text = getattr(node, "postgres", None)
        if type(node).__name__ == "ServerDefault" and isinstance(text, str):
            if re.fullmatch(r"-?\d+", text):
                return int(text)
            if re.fullmatch(r"'[^']*'", text):
                return text[1:-1]
            if text.lower() in {"true", "false"}:
                return text.lower() == "true"
    return None


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


def data_loss(database: pw.Database, ops: list[Any], name: str,
              defaults: Mapping[tuple[str, str], Any] | None = None) -> list[DataLoss]:
    """Return the drops among ``ops`` that would delete data present now (a column's
    values equal to its constant default in ``defaults`` are not counted)."""
    found = []
    tables = set(database.get_tables())
    for op in ops:
        for kind, table, column in _drops(op):
            if table not in tables:
                continue
            default = (defaults or {}).get((table, column)) if column else None
            rows = _count(database, table, column, default)
            if rows:
                what = f"column {table}.{column}" if kind == "column" else f"table {table}"
                found.append(DataLoss(name, what, rows, default))
    return found


def _drops(op: Any) -> list[tuple[str, str, str | None]]:
    """Return what one queued operation drops: (kind, table, column or None)."""
    found = list(getattr(op, "drops", ()))  # migration_ops' own steps say so
    if isinstance(op, Operation):
        step = op.fn.__name__
        if step == "drop_table":
            found.append(("table", op.args[0], None))
        elif step == "drop_column":
            found.append(("column", op.args[0], op.args[1]))
        elif step == "sql":
            found += [("table", target, None) for kind, target in _DROP_SQL.findall(op.args[0])
                      if kind.upper() == "TABLE"]
    return found


def _count(database: Any, table: str, column: str | None, default: Any = None) -> int:
    if column is None:
        return int(database.execute_sql(f'SELECT count(*) FROM "{table}"').fetchone()[0])
    if column not in {c.name for c in database.get_columns(table)}:
        return 0
    params: tuple[Any, ...]
    if default is None:
        sql, params = f'SELECT count("{column}") FROM "{table}"', ()
    else:
        sql, params = f'SELECT count(*) FROM "{table}" WHERE "{column}" <> ?', (default,)
        if not isinstance(database, pw.SqliteDatabase):
            sql = sql.replace("?", "%s")
    return int(database.execute_sql(sql, params).fetchone()[0])


def install_fixes() -> None:
    """Install the fixes to peewee_migrate 2.3 that ``datalayer migrate`` and, through
    ``migrations/conf.py``, ``pw_migrate`` run with. Idempotent."""
    install_index_fix()
    _install_backref_fix()
    _install_legacy_rename()
    _install_concurrently_in_transaction()


def _install_concurrently_in_transaction() -> None:
    """Run a ``CONCURRENTLY`` index step that finds itself in a transaction as a plain one.

    ``datalayer migrate`` runs a migration of such steps outside any transaction;
    ``pw_migrate migrate`` runs every migration in one, where PostgreSQL refuses
    ``CREATE INDEX CONCURRENTLY``. There the plain statement is what can run (it blocks
    the table's writers while it builds, as any step in a transaction does).
    """
    original = Operation.run
    if getattr(original, "_datalayer_fixed", False):
        return

    def run(self: Operation) -> None:
        statement = self.args[0] if self.args else None
        if getattr(self.fn, "__name__", "") == "sql" and isinstance(statement, str) and \
                CONCURRENTLY.search(statement) and self.migrator.database.in_transaction():
            self.args = (CONCURRENTLY.sub("", statement, count=1), *self.args[1:])
        original(self)

    run._datalayer_fixed = True  # type: ignore[attr-defined]  # a marker on a function
    Operation.run = run  # patching playhouse (why: above)


def _install_legacy_rename() -> None:
    """Run peewee_migrate's SQLite steps with ``PRAGMA legacy_alter_table = ON``.

    playhouse rebuilds a table (create a copy, drop, rename) for ``add_fields`` of a NOT
    NULL column and the like; since SQLite 3.26 the rename re-checks every trigger, and
    one on another table that names the dropped one (the audit log's names "user") fails
    it: ``error in trigger ...: no such table: main.user``. ``rename_table`` turns the
    legacy mode off for its own rename (which must rewrite the references).
    """
    from peewee_migrate.migrator import SqliteMigrator

    original = SqliteMigrator.migration_context
    if getattr(original, "_datalayer_fixed", False):
        return

    @contextmanager
    def migration_context(self: Any, atomic: bool = True) -> Iterator[None]:
        database = self.database
        legacy = database.execute_sql("PRAGMA legacy_alter_table").fetchone()[0]
        database.execute_sql("PRAGMA legacy_alter_table = ON")
        try:
            with original(self, atomic):
                yield
        finally:
            database.execute_sql(f"PRAGMA legacy_alter_table = {'ON' if legacy else 'OFF'}")

    migration_context._datalayer_fixed = True  # type: ignore[attr-defined]  # a marker on a function
    SqliteMigrator.migration_context = migration_context


def _install_backref_fix() -> None:
    """Let ``remove_fields`` drop a foreign key declared with ``backref='+'``.

    peewee_migrate 2.3 ran ``delattr(User, '+')`` (``AttributeError: type object 'User'
    has no attribute '+'``): a generated FK column could be neither dropped nor rolled
    back. A backref that is not set on the related model is left alone.
    """
    if getattr(Migrator.__del_field__, "_datalayer_fixed", False):
        return

    def del_field(self: Migrator, model: Any, field: pw.Field) -> None:
        meta = model._meta
        meta.remove_field(field.name)
        for attribute in (field.name, getattr(field, "object_id_name", None)):
            if attribute and attribute in model.__dict__:
                delattr(model, attribute)
        backref = getattr(field, "backref", None)
        if isinstance(field, pw.ForeignKeyField) and backref and \
                backref in field.rel_model.__dict__:
            delattr(field.rel_model, backref)

    del_field._datalayer_fixed = True  # type: ignore[attr-defined]  # a marker on a function
    Migrator.__del_field__ = del_field  # type: ignore[method-assign]  # patching peewee_migrate (why: above)

    original_remove = Migrator.remove_fields

    def remove_fields(self: Migrator, model: Any, *names: str, **params: Any) -> Any:
        # SQLite's DROP COLUMN refuses an indexed column: drop its index=True index first
        # (peewee_migrate drops a unique one itself).
        model = self.__get_model__(model)
        meta = model._meta
        for field in [f for f in meta.fields.values() if f.name in names]:
            if field.index and not field.unique:
                index = make_index_name(meta.table_name, [field.column_name])
                self.__ops__.append(self.__migrator__.drop_index(meta.table_name, index))
        return original_remove(self, model, *names, **params)

    Migrator.remove_fields = remove_fields  # type: ignore[method-assign]  # as above


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

    drop_index._datalayer_fixed = True  # type: ignore[attr-defined]  # a marker on a function
    Migrator.drop_index = drop_index  # type: ignore[method-assign]  # patching peewee_migrate (why: above)
