"""Online schema changes: the operations that change a big table without stopping writers.

Each one updates the migration state like the other operations in
``datalayer.migration_ops`` and queues a ``Step`` (``datalayer.migration_ops.steps``). On
PostgreSQL, ``datalayer migrate`` runs a migration made of steps outside its transaction,
each statement in a transaction of its own with a short ``lock_timeout``, retried; a
migration mixing steps with other operations is refused. On SQLite the same operations
run in the migration's transaction (SQLite has no concurrent DDL: its writers wait).

- ``add_column``: ``ADD COLUMN`` without a table rewrite. A constant default fills the
  existing rows (``ADD COLUMN … DEFAULT``, metadata-only since PostgreSQL 11); the default
  is dropped again unless it is the field's server default. A foreign key is added
  ``NOT VALID`` and validated in a transaction of its own.
- ``add_check`` / ``add_foreign_key``: ``ADD CONSTRAINT … NOT VALID``, then
  ``VALIDATE CONSTRAINT`` on its own (writers go on meanwhile).
- ``set_not_null``: a ``CHECK (col IS NOT NULL) NOT VALID``, validated, then
  ``SET NOT NULL`` (no scan, given the check), then the check dropped; with ``fill``,
  a batched backfill of the NULLs first.
- ``backfill``: ``UPDATE`` in batches, one transaction each, resumable.
- ``expand`` / ``contract``: a column's type changed without a rewrite lock — a new
  column kept in sync by a trigger, backfilled, then swapped in by renames.

Migration files import this module; it imports only ``datalayer.migration_ops`` and
``datalayer.migration_ops.steps`` of the package. Treat its operations as frozen, like those.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import peewee as pw

from datalayer import migration_ops
from datalayer.migration_ops.base import index_name, literal
from datalayer.migration_ops.columns import UNSET, forget_field
from datalayer.migration_ops.steps import Backfill, Statement, Step

__all__ = [
    "add_check_online",
    "add_column",
    "add_column_online",
    "add_foreign_key",
    "backfill",
    "contract",
    "drop_column",
    "drop_column_online",
    "drop_not_null_online",
    "drop_constraint",
    "drop_not_null",
    "expand",
    "fill_expanded",
    "set_not_null",
    "uncontract",
    "unexpand",
]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _is_sqlite(migrator: Any) -> bool:
    return isinstance(migrator.__database__, pw.SqliteDatabase)


def _queue(migrator: Any, name: str, units: Sequence[Statement | Backfill],
           drops: tuple[tuple[str, str, str | None], ...] = ()) -> None:
    migrator.__ops__.append(Step(migrator.__database__, name, units, drops=drops))


def _has_constraint(table: str, name: str) -> str:
    return (f"SELECT true FROM pg_constraint WHERE conname = {_lit(name)} "
            f"AND conrelid = {_lit(_q(table))}::regclass")


def _validated(table: str, name: str, definition: str) -> list[Statement]:
    """``ADD CONSTRAINT … NOT VALID`` (brief lock), then ``VALIDATE`` (no writer waits)."""
    return [Statement(f"ALTER TABLE {_q(table)} ADD CONSTRAINT {_q(name)} {definition} "
                      "NOT VALID", unless=_has_constraint(table, name), sqlite=""),
            Statement(f"ALTER TABLE {_q(table)} VALIDATE CONSTRAINT {_q(name)}",
                      blocks_writers=False, sqlite="", on_error=(
                          f"ALTER TABLE {_q(table)} DROP CONSTRAINT IF EXISTS {_q(name)}"))]


def _column_ddl(migrator: Any, field: pw.Field) -> str:
    """The column's definition as peewee writes it, without its REFERENCES clause."""
    ctx = migrator.__database__.get_sql_context()
    if isinstance(field, pw.ForeignKeyField):
        # the constraint is added NOT VALID afterwards; the column takes the key's type
        column = field.rel_field.__class__(null=field.null, column_name=field.column_name)
        column.name, column.model = field.name, field.model
        column.constraints = field.constraints
        return str(ctx.sql(column.ddl(ctx)).query()[0])
    return str(ctx.sql(field.ddl(ctx)).query()[0])


def add_column(migrator: Any, table: str, name: str, field: pw.Field, *,
               fill: str | None = None, on_delete: str | None = None) -> None:
    """Add column ``name`` online; ``fill`` (a SQL literal) fills the existing rows.

    A NOT NULL field needs ``fill`` or a server default. A foreign key gets its
    constraint ``NOT VALID`` then validated, named ``<table>_<column>_fkey``; index it
    with ``add_index(..., concurrently=True)`` in the next migration.
    """
    if _is_sqlite(migrator):  # SQLite: migration_ops' own (a rebuild when it must)
        migration_ops.add_column(migrator, table, name, field, **(
            {} if fill is None else {"fill": migration_ops.ServerDefault(fill)}))
        return
    model = migrator.orm[table]
    model._meta.add_field(name, field)
    definition = _column_ddl(migrator, field)
    column = field.column_name
    server_default = any(type(c).__name__ == "ServerDefault" for c in field.constraints or [])
    if not field.null and fill is None and not server_default:
        raise ValueError(f"{table}.{name} is NOT NULL: give fill= (a constant) or a "
                         "server default, which fills the rows already there")
    if fill is not None and not server_default:
        definition += f" DEFAULT {fill}"
    units = [Statement(f"ALTER TABLE {_q(table)} ADD COLUMN IF NOT EXISTS {definition}",
                       sqlite=f"ALTER TABLE {_q(table)} ADD COLUMN {definition}")]
    if fill is not None and not server_default:
        units.append(Statement(f"ALTER TABLE {_q(table)} ALTER COLUMN {_q(column)} "
                               "DROP DEFAULT", sqlite=""))
    if isinstance(field, pw.ForeignKeyField):
        target = field.rel_model._meta.table_name
        on_delete = on_delete or field.on_delete
        action = f" ON DELETE {on_delete}" if on_delete else ""
        units += _validated(table, f"{table}_{column}_fkey",
                            f"FOREIGN KEY ({_q(column)}) REFERENCES {_q(target)} "
                            f"({_q(field.rel_field.column_name)}){action}")
    _queue(migrator, f"add_column {table}.{column}", units)


def drop_column(migrator: Any, table: str, name: str) -> None:
    """Drop column ``name`` (brief lock; its constraints and indexes go with it).

    ``datalayer migrate`` refuses while it holds values, without --allow-data-loss.
    """
    if _is_sqlite(migrator):
        migration_ops.drop_column(migrator, table, name)
        return
    model = migrator.orm[table]
    field = model._meta.fields[name]
    column = field.column_name
    forget_field(model, field)
    _queue(migrator, f"drop_column {table}.{column}", [Statement(
        f"ALTER TABLE {_q(table)} DROP COLUMN IF EXISTS {_q(column)}")],
        drops=(("column", table, column),))


def add_foreign_key(migrator: Any, table: str, name: str, column: str, target: str,
                    target_column: str = "id", *, on_delete: str | None = None) -> None:
    """Add FK constraint ``name`` on an existing column, ``NOT VALID`` then validated.

    PostgreSQL only: SQLite declares foreign keys with the table (rebuild it instead).
    """
    action = f" ON DELETE {on_delete}" if on_delete else ""
    _queue(migrator, f"add_foreign_key {name}", _validated(
        table, name, f"FOREIGN KEY ({_q(column)}) REFERENCES {_q(target)} "
                     f"({_q(target_column)}){action}"))


def add_check_online(migrator: Any, table: str, name: str, expression: str) -> None:
    """Add CHECK ``name``: ``NOT VALID``, then validated in a transaction of its own.

    The state keeps it like ``migration_ops.check``. SQLite has no ADD CONSTRAINT:
    use ``migration_ops.add_check`` there (a rebuild); this one skips SQLite.
    """
    if _is_sqlite(migrator):  # no ADD CONSTRAINT: a rebuild
        migration_ops.add_check(migrator, table, name, expression)
        return
    meta = migrator.orm[table]._meta
    meta.constraints = [*(meta.constraints or []),
                        pw.SQL(f"CONSTRAINT {name} CHECK ({expression})")]
    _queue(migrator, f"add_check {name}", _validated(table, name, f"CHECK ({expression})"))


def drop_constraint(migrator: Any, table: str, name: str) -> None:
    """Drop constraint ``name`` (a CHECK or a FK) if it is there."""
    if _is_sqlite(migrator):
        migration_ops.drop_check(migrator, table, name)
        return
    meta = migrator.orm[table]._meta
    meta.constraints = [c for c in meta.constraints or []
                        if f"CONSTRAINT {name} " not in getattr(c, "sql", "")] or None
    _queue(migrator, f"drop_constraint {name}", [Statement(
        f"ALTER TABLE {_q(table)} DROP CONSTRAINT IF EXISTS {_q(name)}", sqlite="")])


def set_not_null(migrator: Any, table: str, name: str, *, fill: Any = UNSET) -> None:
    """Make column ``name`` NOT NULL without holding writers up while rows are scanned.

    With ``fill`` (a constant, or a ``ServerDefault`` whose expression is used), the rows
    holding NULL get it first, by a batched backfill (one short transaction per batch).
    A NULL written meanwhile by code that does not set the column makes the validation
    fail cleanly (the migration stays pending; run it again).
    """
    if _is_sqlite(migrator):  # a rebuild
        migration_ops.add_not_null(migrator, table, name, fill=fill)
        return
    field = migrator.orm[table]._meta.fields[name]
    field.null = False
    column, check = field.column_name, _not_null_check(table, field.column_name)
    units: list[Statement | Backfill] = []
    if fill is not UNSET:
        units.append(Backfill(table, f"{_q(column)} = {literal(fill, sqlite=False)}",
                              where=f"{_q(column)} IS NULL"))
    _queue(migrator, f"set_not_null {table}.{column}", [
        *units,
        *_validated(table, check, f"CHECK ({_q(column)} IS NOT NULL)"),
        Statement(f"ALTER TABLE {_q(table)} ALTER COLUMN {_q(column)} SET NOT NULL",
                  sqlite=""),
        Statement(f"ALTER TABLE {_q(table)} DROP CONSTRAINT IF EXISTS {_q(check)}",
                  sqlite="")])


def drop_not_null(migrator: Any, table: str, name: str) -> None:
    """Let column ``name`` hold NULL again (a catalog change, no scan)."""
    if _is_sqlite(migrator):
        migration_ops.drop_not_null(migrator, table, name)
        return
    field = migrator.orm[table]._meta.fields[name]
    field.null = True
    check = _not_null_check(table, field.column_name)
    _queue(migrator, f"drop_not_null {table}.{field.column_name}", [
        Statement(f"ALTER TABLE {_q(table)} ALTER COLUMN {_q(field.column_name)} "
                  "DROP NOT NULL", sqlite=""),
        # left by a set_not_null that stopped half-way
        Statement(f"ALTER TABLE {_q(table)} DROP CONSTRAINT IF EXISTS {_q(check)}",
                  sqlite="")])


def backfill(migrator: Any, table: str, assignments: str, *, where: str = "TRUE",
             key: str = "id", batch_size: int = 10_000) -> None:
    """Run ``UPDATE table SET assignments`` on the rows ``where`` selects, in batches.

    One transaction per batch of ``batch_size`` rows, in ``key`` order, outside the
    migration's transaction. Make ``where`` select only the rows still to fill (e.g.
    ``new_col IS NULL``): a backfill that stopped then resumes where it was.
    """
    _queue(migrator, f"backfill {table}",
           [Backfill(table, assignments, where=where, key=key, batch_size=batch_size)])


def _not_null_check(table: str, column: str) -> str:
    """The temporary CHECK that lets ``SET NOT NULL`` skip its scan."""
    return f"{table}_{column}_not_null"[:63]


def _sync_name(table: str, column: str) -> str:
    """The trigger (and its function) keeping ``<col>__new`` in step with the column."""
    return f"{table}_{column}__sync"[:63]


def _shadow(column: str) -> str:
    return f"{column}__new"


def _sync_trigger(table: str, column: str, using: str) -> list[Statement]:
    shadow, function = _shadow(column), _sync_name(table, column)
    return [
        Statement(f"CREATE OR REPLACE FUNCTION {_q(function)}() RETURNS trigger "
                  f"LANGUAGE plpgsql AS $$ BEGIN NEW.{_q(shadow)} := "
                  f"{using.replace('{old}', f'NEW.{_q(column)}')}; RETURN NEW; END; $$",
                  sqlite="", blocks_writers=False),
        Statement(f"CREATE OR REPLACE TRIGGER {_q(function)} BEFORE INSERT OR UPDATE ON "
                  f"{_q(table)} FOR EACH ROW EXECUTE FUNCTION {_q(function)}()",
                  sqlite="")]


def _drop_sync(table: str, column: str) -> list[Statement]:
    function = _sync_name(table, column)
    return [Statement(f"DROP TRIGGER IF EXISTS {_q(function)} ON {_q(table)}", sqlite=""),
            Statement(f"DROP FUNCTION IF EXISTS {_q(function)}()", sqlite="",
                      blocks_writers=False)]


def expand(migrator: Any, table: str, column: str, new_type: str, *,
           using: str = "{old}") -> None:
    """First of three migrations changing a column's type online: add ``<col>__new``
    of ``new_type``, kept equal to ``using`` (``{old}``: the column) by a trigger.

    Then ``backfill(..., "<col>__new = <col>::type", where="<col>__new IS NULL AND <col>
    IS NOT NULL")`` and ``contract``. The state is unchanged until ``contract``.
    """
    using = using.replace("{type}", new_type)
    shadow = _shadow(column)
    _queue(migrator, f"expand {table}.{column}", [
        Statement(f"ALTER TABLE {_q(table)} ADD COLUMN IF NOT EXISTS {_q(shadow)} "
                  f"{new_type}", sqlite=""),
        *_sync_trigger(table, column, using)])


def unexpand(migrator: Any, table: str, column: str) -> None:
    """Undo ``expand``: drop the trigger and the ``<col>__new`` column."""
    _queue(migrator, f"unexpand {table}.{column}", [
        *_drop_sync(table, column),
        Statement(f"ALTER TABLE {_q(table)} DROP COLUMN IF EXISTS {_q(_shadow(column))}",
                  sqlite="")])


def contract(migrator: Any, table: str, name: str, field: pw.Field) -> None:
    """Last of three: swap ``<col>__new`` in by renames (one brief lock) and drop the
    old column; ``field`` (the column's new definition) replaces it in the state.

    NOT NULL carries over through a validated check first; the field's own index
    (``index=True`` / ``unique=True``) is built on the new column first (``CONCURRENTLY``)
    and takes its name in the swap. The column must not be a key, referenced, in another
    index or in a CHECK: those stay on the old column and are dropped with it.
    """
    meta = migrator.orm[table]._meta
    column = meta.fields[name].column_name
    field.column_name = column
    not_null = not meta.fields[name].null
    if _is_sqlite(migrator):  # no concurrent writers to spare: SQLite rebuilds the table
        migration_ops.alter_column(migrator, table, name, field)
        return
    meta.add_field(name, field)
    _queue(migrator, f"contract {table}.{column}",
           _swap_in(migrator, table, column, field, not_null))


def uncontract(migrator: Any, table: str, name: str, old_field: pw.Field, old_type: str,
               *, using: str = "{old}") -> None:
    """Undo ``contract``: the same change back to ``old_type`` in one online step
    (column, trigger, backfill, swap); ``old_field`` goes back into the state."""
    meta = migrator.orm[table]._meta
    column = meta.fields[name].column_name
    old_field.column_name = column
    if _is_sqlite(migrator):
        migration_ops.alter_column(migrator, table, name, old_field)
        return
    meta.add_field(name, old_field)
    shadow, sql = _shadow(column), using.replace("{type}", old_type)
    _queue(migrator, f"uncontract {table}.{column}", [
        Statement(f"ALTER TABLE {_q(table)} ADD COLUMN IF NOT EXISTS {_q(shadow)} "
                  f"{old_type}", sqlite=""),
        *_sync_trigger(table, column, sql),
        _fill_shadow(table, column, sql),
        *_swap_in(migrator, table, column, old_field, not old_field.null)])


def fill_expanded(migrator: Any, table: str, column: str, new_type: str, *,
                  using: str = "{old}", batch_size: int = 10_000) -> None:
    """Second of three: backfill ``<col>__new`` from the column, in batches (resumable:
    it fills the rows still NULL). Nothing to do on SQLite."""
    _queue(migrator, f"fill_expanded {table}.{column}", [
        _fill_shadow(table, column, using.replace("{type}", new_type), batch_size)])


def _fill_shadow(table: str, column: str, using: str, batch_size: int = 10_000) -> Backfill:
    shadow = _shadow(column)
    return Backfill(table, f"{_q(shadow)} = {using.replace('{old}', _q(column))}",
                    where=f"{_q(shadow)} IS NULL AND {_q(column)} IS NOT NULL",
                    batch_size=batch_size, sqlite=False)


def _default_of(table: str, column: str, field: pw.Field) -> list[Statement]:
    defaults = [c for c in field.constraints or [] if type(c).__name__ == "ServerDefault"]
    if not defaults:
        return []
    expression = getattr(defaults[0], "postgres", "")
    return [Statement(f"ALTER TABLE {_q(table)} ALTER COLUMN {_q(column)} SET DEFAULT "
                      f"{expression}", sqlite="")]


def _swap_in(migrator: Any, table: str, column: str, field: pw.Field,
             not_null: bool) -> list[Statement]:
    """The units that make ``<col>__new`` the column ``field`` declares: its default, NOT
    NULL, the field's own index, then the swap."""
    shadow, index = _shadow(column), _index_of(migrator, table, field)
    ready = [*_default_of(table, shadow, field)]
    if not_null:
        check = _not_null_check(table, column)
        ready += [*_validated(table, check, f"CHECK ({_q(shadow)} IS NOT NULL)"),
                  Statement(f"ALTER TABLE {_q(table)} ALTER COLUMN {_q(shadow)} "
                            "SET NOT NULL", sqlite="")]
    if index is not None:
        name, unique = index
        # migrate drops an INVALID index of this name (a build that failed or was
        # killed) before the build and after a failed one (evolve.online).
        ready.append(Statement(
            f"CREATE {'UNIQUE ' if unique else ''}INDEX CONCURRENTLY IF NOT EXISTS "
            f"{_q(_building(name))} ON {_q(table)} ({_q(shadow)})",
            sqlite="", blocks_writers=False))
    gone = (f"SELECT NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE "
            f"table_name = {_lit(table)} AND column_name = {_lit(shadow)})")
    for unit in ready:  # a run that stopped after the swap has nothing left to prepare
        unit.unless = gone if unit.unless is None else \
            f"SELECT ({gone}) OR coalesce(({unit.unless}), false)"
    return [*ready, *_swap(table, column, not_null, None if index is None else index[0],
                           unless=gone)]


def _index_of(migrator: Any, table: str, field: pw.Field) -> tuple[str, bool] | None:
    """The name and uniqueness of the index ``index=True`` / ``unique=True`` declares."""
    if not (field.index or field.unique) or field.primary_key:
        return None
    declared = pw.ModelIndex(migrator.orm[table], (field,), bool(field.unique))
    return index_name(declared), bool(field.unique)


def _building(index: str) -> str:
    """The name an index has while it is built on ``<col>__new``."""
    return f"{index[:58]}__new"


def _swap(table: str, column: str, not_null: bool, index: str | None, *,
          unless: str) -> list[Statement]:
    old, check = f"{column}__old", _not_null_check(table, column)
    swap = [f"DROP TRIGGER IF EXISTS {_q(_sync_name(table, column))} ON {_q(table)}",
            f"ALTER TABLE {_q(table)} RENAME COLUMN {_q(column)} TO {_q(old)}",
            f"ALTER TABLE {_q(table)} RENAME COLUMN {_q(_shadow(column))} TO {_q(column)}",
            # the old column's index goes with it, freeing the name for the new one
            f"ALTER TABLE {_q(table)} DROP COLUMN {_q(old)}"]
    if index is not None:
        swap.append(f"ALTER INDEX {_q(_building(index))} RENAME TO {_q(index)}")
    if not_null:
        swap.append(f"ALTER TABLE {_q(table)} DROP CONSTRAINT IF EXISTS {_q(check)}")
    # One statement string: PostgreSQL runs it as one transaction (all or nothing).
    return [Statement("; ".join(swap), unless=unless, sqlite=""),
            *_drop_sync(table, column)[1:]]


# The names makemigrations writes (migration_ops has its own add_column / drop_column).
add_column_online = add_column
drop_column_online = drop_column
drop_not_null_online = drop_not_null
