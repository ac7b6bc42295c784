"""The steps that take one schema state to another, written as migration code.

``diff(have, want)`` compares two ``evolve.state`` readings and returns the lines of a
migration's body; ``makemigrations`` calls it twice (models vs migrations for
``migrate``, and back for ``rollback``). Steps come in an order that works on both
backends: renames (tables, then columns), new tables (parents first), new columns,
changed columns, dropped indexes, new indexes, CHECKs, dropped columns, dropped tables
(children first). Each step is one call of ``datalayer.migration_ops`` (or of
peewee_migrate's migrator), so how it runs on each backend is decided there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from datalayer.evolve.code import INDENT, default_code, field_code, helpers_of
from datalayer.evolve.renames import renamed_tables
from datalayer.evolve.state import FieldState, IndexState, TableState

__all__ = ["Plan", "diff"]


@dataclass
class Plan:
    steps: list[str] = field(default_factory=list)
    helpers: set[str] = field(default_factory=set)
    drops: list[str] = field(default_factory=list)  # what a step would delete, for review
    errors: list[str] = field(default_factory=list)  # steps that cannot be written safely

    def add(self, code: str, *helpers: str) -> None:
        self.steps.append(code)
        self.helpers.update(helpers)

    @property
    def lines(self) -> list[str]:
        return [line for step in self.steps for line in step.splitlines()]


def diff(have: Mapping[str, TableState], want: Mapping[str, TableState],
         renames: Mapping[tuple[str, str], str], *, tables: Mapping[str, str] | None = None,
         fills: Mapping[tuple[str, str], Any] | None = None) -> Plan:
    """Return the migration steps from ``have`` to ``want``.

    ``renames`` maps (table, old field) -> new field, ``tables`` old table -> new table,
    ``fills`` (table, field) -> the constant existing rows get in a new NOT NULL column.
    """
    plan = Plan()
    for old, new in sorted((tables or {}).items()):
        plan.add(f"rename_table(migrator, {old!r}, {new!r})", "rename_table")
    have = renamed_tables(have, tables or {})
    for (table, old), new in sorted(renames.items()):
        plan.add(f"migrator.rename_field({table!r}, {old!r}, {new!r})")
    for table in [t for t in want if t not in have]:
        _create_table(plan, want[table])
    for table, target in want.items():
        if table in have:
            _alter_table(plan, have[table], target, renames, fills or {})
    for table in reversed(list(have)):
        if table not in want:
            plan.drops.append(f"table {table} (all its rows)")
            plan.add(f"migrator.remove_model({table!r})")
    return plan


def _alter_table(plan: Plan, source: TableState, target: TableState,
                 renames: Mapping[tuple[str, str], str],
                 fills: Mapping[tuple[str, str], Any]) -> None:
    table = target.name
    forward = {old: new for (t, old), new in renames.items() if t == table}
    before = {forward.get(n, n): f for n, f in source.fields.items()}
    added = [f for n, f in target.fields.items() if n not in before]
    dropped = [f for n, f in before.items() if n not in target.fields]
    # The same column under another attribute (e.g. a TextField made a foreign key):
    # a change of that column, never a drop + add.
    by_column = {f.column: f for f in dropped}
    for new in added:
        if new.column not in by_column:
            _add_field(plan, table, new, fills.get((table, new.name)))
    for name, wanted in target.fields.items():
        old = before.get(name) or by_column.get(wanted.column)
        if old is not None:
            _change_field(plan, table, old, wanted)
    kept = {f.column for f in added}
    added = [f for f in added if f.column not in by_column]
    dropped = [f for f in dropped if f.column not in kept]
    _diff_indexes(plan, source, target, forward, added, dropped)
    _diff_checks(plan, table, source.checks, target.checks)
    _diff_triggers(plan, table, source.triggers, target.triggers)
    for gone in dropped:
        plan.drops.append(f"column {table}.{gone.column} (its values)")
        plan.add(f"drop_column(migrator, {table!r}, {gone.name!r})", "drop_column")


def _diff_indexes(plan: Plan, source: TableState, target: TableState,
                  forward: Mapping[str, str], added: list[FieldState],
                  dropped: list[FieldState]) -> None:
    table = target.name
    created_with_field = {i for i in target.indexes.values() if i.implicit
                          and any(f.name in i.fields for f in added)}
    dropped_with_field = {i.name for i in source.indexes.values() if i.implicit
                          and any(f.name in i.fields for f in dropped)}
    old_indexes = {n: _renamed_index(i, forward) for n, i in source.indexes.items()}
    for name, index in sorted(old_indexes.items()):
        if name in dropped_with_field:
            continue
        if name not in target.indexes or target.indexes[name] != index:
            plan.add(f"drop_index(migrator, {table!r}, {name!r})", "drop_index")
    for name, index in sorted(target.indexes.items()):
        if index in created_with_field:
            continue
        if name not in old_indexes or old_indexes[name] != index:
            _add_index(plan, table, index)


def _diff_checks(plan: Plan, table: str, have: Mapping[str, tuple[str, str]],
                 want: Mapping[str, tuple[str, str]]) -> None:
    for name in sorted(set(have) - set(want)):
        plan.add(f"drop_check(migrator, {table!r}, {name!r})", "drop_check")
    for name, expressions in sorted(want.items()):
        if have.get(name) != expressions:
            if name in have:
                plan.add(f"drop_check(migrator, {table!r}, {name!r})", "drop_check")
                plan.add("# Review: existing rows must pass the new CHECK, or the migration "
                         "fails\n# naming it (nothing changed).")
            plan.add(f"add_check(migrator, {table!r}, {name!r}, {_check_args(expressions)})",
                     "add_check")


def _diff_triggers(plan: Plan, table: str, have: Mapping[str, object],
                   want: Mapping[str, object]) -> None:
    for name, trigger in sorted(have.items()):
        if want.get(name) != trigger:
            plan.add(f"drop_trigger(migrator, {table!r}, {trigger!r})", "drop_trigger", "Trigger")
    for name, trigger in sorted(want.items()):
        if have.get(name) != trigger:
            plan.add(f"add_trigger(migrator, {table!r}, {trigger!r})", "add_trigger", "Trigger")


def _renamed_index(index: IndexState, forward: Mapping[str, str]) -> IndexState:
    fields = tuple(forward.get(f, f) for f in index.fields)
    return IndexState(index.name, fields, index.unique, index.where, index.implicit)


def _add_index(plan: Plan, table: str, index: IndexState) -> None:
    extra = ", unique=True" if index.unique else ""
    extra += f", where={index.where!r}" if index.where else ""
    plan.add(f"add_index(migrator, {table!r}, {index.name!r}, {list(index.fields)!r}{extra})",
             "add_index")


def _add_field(plan: Plan, table: str, new: FieldState, fill: Any) -> None:
    code = field_code(new, declare_index=True)
    extra = ""
    if not new.null and new.default is None:
        fill = fill if fill is not None else new.field.default
        if fill is None or callable(fill) or not isinstance(fill, bool | int | float | str):
            plan.errors.append(_unfilled(table, new, fill))
            return
        extra = f", fill={fill!r}"
    plan.add(f"add_column(migrator, {table!r}, {new.name!r}, {code}{extra})",
             "add_column", *helpers_of(new))


def _unfilled(table: str, new: FieldState, fill: Any) -> str:
    what = "a default computed when a row is saved (" + getattr(fill, "__name__", "callable") \
        + ")" if callable(fill) else "no default"
    return (f"{table}.{new.name} is NOT NULL with {what}: existing rows need one value. "
            "Give the field a server default (constraints=[ServerDefault(...)]), or a "
            f"one-off value for the existing rows (--fill {table}.{new.name}=VALUE), or add "
            "it with null=True, backfill it, and make it NOT NULL in a later migration "
            "(docs/changing-the-schema.md shows how)")


def _change_field(plan: Plan, table: str, old: FieldState, new: FieldState) -> None:
    if (old.type_pg, old.type_sqlite, old.fk, old.max_length, old.name) != (
            new.type_pg, new.type_sqlite, new.fk, new.max_length, new.name):
        # NULL and the default change in their own steps below (a NOT NULL fills first).
        kept = dataclasses.replace(new, null=old.null, default=old.default)
        plan.add("# Review: the column's type or foreign key changes; PostgreSQL casts the "
                 "values\n# (USING column::type) and fails, changing nothing, if one does "
                 "not convert.")
        plan.add(f"alter_column(migrator, {table!r}, {new.name!r}, "
                 f"{field_code(kept, declare_index=True)})", "alter_column", *helpers_of(kept))
    if old.default != new.default:
        value = default_code(new.default) if new.default else "None"
        plan.add(f"set_default(migrator, {table!r}, {new.name!r}, {value})",
                 "set_default", "ServerDefault")
    if old.null != new.null:
        if new.null:
            plan.add(f"drop_not_null(migrator, {table!r}, {new.name!r})", "drop_not_null")
            return
        fill, helpers = "", ["add_not_null"]
        constant = new.field.default
        if new.default:
            fill, helpers = f", fill={default_code(new.default)}", [*helpers, "ServerDefault"]
        elif isinstance(constant, bool | int | float | str):
            fill = f", fill={constant!r}"
        else:
            plan.add("# Review: fails if a row still holds NULL; backfill first.")
        plan.add(f"add_not_null(migrator, {table!r}, {new.name!r}{fill})", *helpers)


def _create_table(plan: Plan, table: TableState) -> None:
    helpers: set[str] = set()
    lines = ["@migrator.create_model", f"class {table.model.__name__}(pw.Model):"]
    for state in table.fields.values():
        lines.append(f"{INDENT}{state.name} = {field_code(state, declare_index=True)}")
        helpers.update(helpers_of(state))
    lines += [f"{INDENT}", f"{INDENT}class Meta:", f"{INDENT * 2}table_name = {table.name!r}",
              f"{INDENT * 2}legacy_table_names = False  # index names start with the table's"]
    if table.composite_key:
        lines.append(f"{INDENT * 2}primary_key = pw.CompositeKey{table.composite_key!r}")
    if table.checks:
        lines.append(f"{INDENT * 2}constraints = [")
        # In the model's order: SQLite stores the CREATE TABLE text as written.
        lines += [f"{INDENT * 3}check_constraint({n!r}, {_check_args(e)}),"
                  for n, e in table.checks.items()]
        lines.append(f"{INDENT * 2}]")
        helpers.add("check_constraint")
    plan.add("\n".join(lines), *helpers)
    for index in table.indexes.values():
        if not index.implicit:
            _add_index(plan, table.name, index)
    _diff_triggers(plan, table.name, {}, table.triggers)


def _check_args(expressions: tuple[str, str]) -> str:
    postgres, sqlite = expressions
    return repr(postgres) if postgres == sqlite else f"{postgres!r}, sqlite={sqlite!r}"
