"""The steps that take one schema state to another, written as migration code.

``diff(have, want)`` compares two ``evolve.state`` readings and returns the lines of a
migration's body; ``makemigrations`` calls it twice (models vs migrations for
``migrate``, and back for ``rollback``). Steps come in an order that works on both
backends: renames, new tables (parents first), new columns, changed columns, dropped
indexes, new indexes, CHECKs, dropped columns, dropped tables (children first).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from datalayer.evolve.state import FieldState, IndexState, TableState

__all__ = ["Plan", "RenameQuestion", "diff", "rename_candidates"]

INDENT = "    "


class RenameQuestion(Exception):
    """A table lost one field and gained another of the same shape: rename or not?"""

    def __init__(self, table: str, old: str, new: str) -> None:
        super().__init__(f"{table}.{old} -> {new}")
        self.table, self.old, self.new = table, old, new


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


def rename_candidates(have: Mapping[str, TableState],
                      want: Mapping[str, TableState]) -> list[RenameQuestion]:
    """Return the (table, old, new) pairs that look like renames."""
    questions = []
    for table, target in want.items():
        source = have.get(table)
        if source is None:
            continue
        gone = [f for n, f in source.fields.items() if n not in target.fields]
        new = [f for n, f in target.fields.items() if n not in source.fields]
        for old in gone:
            for candidate in new:
                if _compatible(old, candidate):
                    questions.append(RenameQuestion(table, old.name, candidate.name))
    return questions


def _compatible(a: FieldState, b: FieldState) -> bool:
    return a.type_pg == b.type_pg and a.fk is None and b.fk is None


def diff(have: Mapping[str, TableState], want: Mapping[str, TableState],
         renames: Mapping[tuple[str, str], str]) -> Plan:
    """Return the migration steps from ``have`` to ``want``; ``renames`` maps (table, old) -> new."""
    plan = Plan()
    for (table, old), new in sorted(renames.items()):
        plan.add(f"migrator.rename_field({table!r}, {old!r}, {new!r})")
    created = [t for t in want if t not in have]
    for table in created:
        _create_table(plan, want[table])
    for table, target in want.items():
        if table in have:
            _alter_table(plan, have[table], target, renames)
    for table in reversed(list(have)):
        if table not in want:
            plan.drops.append(f"table {table} (all its rows)")
            plan.add(f"migrator.remove_model({table!r})")
    return plan


def _alter_table(plan: Plan, source: TableState, target: TableState,
                 renames: Mapping[tuple[str, str], str]) -> None:
    table = target.name
    forward = {old: new for (t, old), new in renames.items() if t == table}
    before = {forward.get(n, n): f for n, f in source.fields.items()}
    added = [f for n, f in target.fields.items() if n not in before]
    dropped = [f for n, f in before.items() if n not in target.fields]
    for new in added:
        _add_field(plan, table, new)
    for name, wanted in target.fields.items():
        if name in before:
            _change_field(plan, table, before[name], wanted)
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
    for name in sorted(set(source.checks) - set(target.checks)):
        plan.add(f"drop_check(migrator, {table!r}, {name!r})", "drop_check")
    for name, expressions in sorted(target.checks.items()):
        if source.checks.get(name) != expressions:
            if name in source.checks:
                plan.add(f"drop_check(migrator, {table!r}, {name!r})", "drop_check")
            plan.add(f"add_check(migrator, {table!r}, {name!r}, {_check_args(expressions)})",
                     "add_check")
    _diff_triggers(plan, table, source.triggers, target.triggers)
    if dropped:
        names = ", ".join(repr(f.name) for f in dropped)
        plan.drops.extend(f"column {table}.{f.column} (its values)" for f in dropped)
        plan.add(f"migrator.remove_fields({table!r}, {names})")


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


def _add_field(plan: Plan, table: str, new: FieldState) -> None:
    if not new.null and new.default is None:
        plan.errors.append(
            f"{table}.{new.name} is NOT NULL without a server default: existing rows need "
            "a value. Give the field a server default (constraints=[ServerDefault(...)]), "
            "or add it with null=True, backfill it, and make it NOT NULL in a later "
            "migration (the README's 'Changing the schema' shows how).")
    code = field_code(new, declare_index=True)
    plan.add(f"migrator.add_fields(\n{INDENT}{table!r},\n{INDENT}allow_not_null=True,\n"
             f"{INDENT}{new.name}={code},\n)", *_helpers_of(new))


def _change_field(plan: Plan, table: str, old: FieldState, new: FieldState) -> None:
    if (old.type_pg, old.type_sqlite, old.fk, old.max_length) != (
            new.type_pg, new.type_sqlite, new.fk, new.max_length):
        plan.add("# Review: the column's type or foreign key changes; PostgreSQL casts the "
                 "values\n# implicitly, and fails if it cannot.")
        plan.add(f"migrator.change_fields({table!r}, {new.name}={field_code(new)})",
                 *_helpers_of(new))
    if old.default != new.default:
        value = _default_code(new.default) if new.default else "None"
        plan.add(f"set_default(migrator, {table!r}, {new.name!r}, {value})",
                 "set_default", "ServerDefault")
    if old.null != new.null:
        operation = "drop_not_null" if new.null else "add_not_null"
        if not new.null:
            plan.add("# Review: fails if a row still holds NULL; backfill first.")
        plan.add(f"migrator.{operation}({table!r}, {new.name!r})")


def _create_table(plan: Plan, table: TableState) -> None:
    helpers: set[str] = set()
    lines = ["@migrator.create_model", f"class {table.model.__name__}(pw.Model):"]
    for state in table.fields.values():
        lines.append(f"{INDENT}{state.name} = {field_code(state, declare_index=True)}")
        helpers.update(_helpers_of(state))
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


def _default_code(default: tuple[str, str]) -> str:
    postgres, sqlite = default
    return f"ServerDefault({postgres!r})" if postgres == sqlite else \
        f"ServerDefault({postgres!r}, {sqlite!r})"


def _helpers_of(state: FieldState) -> set[str]:
    helpers = {"ServerDefault"} if state.default else set()
    return helpers | ({"TimestampTZField"} if state.kind == "TimestampTZField" else set())


def field_code(state: FieldState, *, declare_index: bool = False) -> str:
    """Return the constructor call that declares a field in a migration."""
    args: list[str] = []
    if state.fk:
        table, column, on_delete, on_update = state.fk
        rel = "'self'" if table == state.field.model._meta.table_name \
            else f"migrator.orm[{table!r}]"
        args += [rel, f"column_name={state.column!r}", f"field={column!r}"]
        args += [f"on_delete={on_delete!r}"] if on_delete else []
        args += [f"on_update={on_update!r}"] if on_update else []
        args.append("backref='+'")
    elif state.column != state.name:
        args.append(f"column_name={state.column!r}")
    if state.max_length is not None and state.kind == "pw.CharField":
        args.append(f"max_length={state.max_length}")
    if state.primary_key:
        args.append("primary_key=True")
    if state.null:
        args.append("null=True")
    if declare_index and state.unique:
        args.append("unique=True")
    elif declare_index and state.fk and not state.index:
        args.append("index=False")
    elif declare_index and state.index and not state.fk and not state.primary_key:
        args.append("index=True")
    if state.default:
        args.append(f"constraints=[{_default_code(state.default)}]")
    return f"{state.kind}({', '.join(args)})"
