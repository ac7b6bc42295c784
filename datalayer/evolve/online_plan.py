"""The generated steps that must not stop writers, moved into a migration of their own.

``makemigrations`` writes a change to an existing table in its online form by default:

- an index, unique or partial: ``add_index(..., concurrently=True)`` (rollback
  ``drop_index(..., concurrently=True)``);
- a CHECK: ``add_check_online`` (``NOT VALID``, then ``VALIDATE`` on its own);
- NOT NULL on an existing column: ``set_not_null`` (a validated check, then
  ``SET NOT NULL`` without a scan); its NULLs filled first by a batched backfill when
  the field has a default.

On PostgreSQL those run outside the migration's transaction, and such a migration may
hold nothing else, so they go into a second file, ``NNN_<name>_online.py``, applied
after the first (which keeps the other steps, in one transaction). The same file runs on
SQLite, where the online operations fall back to the plain ones. Tables the migration
creates keep the plain steps: nobody writes to them yet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from datalayer.evolve.diff import Plan

__all__ = ["ONLINE_HELPERS", "Split", "split"]

# Helpers the online file imports from datalayer.migration_ops.online (others: migration_ops).
ONLINE_HELPERS = {"add_check_online", "drop_constraint", "set_not_null", "drop_not_null_online",
                  "expand", "unexpand", "fill_expanded", "contract", "uncontract",
                  "add_column_online", "drop_column_online"}

_ADD_INDEX = re.compile(r"add_index\(migrator, '(\w+)', '(\w+)', (.*)\)", re.S)
_ADD_CHECK = re.compile(r"add_check\(migrator, '(\w+)', '(\w+)', ('(?:[^'\\]|\\.)*'|"
                        r"\"(?:[^\"\\]|\\.)*\")\)", re.S)
_ADD_NOT_NULL = re.compile(r"add_not_null\(migrator, '(\w+)', '(\w+)'(, fill=.*)?\)", re.S)
# a nullable foreign key column (no fill): its constraint NOT VALID, its index CONCURRENTLY
_ADD_FK = re.compile(r"add_column\(migrator, '(\w+)', '(\w+)', (pw\.ForeignKeyField\("
                     r"[^\n]*column_name='(\w+)'[^\n]*\))\)")
_DROP_COLUMN = re.compile(r"drop_column\(migrator, '(\w+)', '(\w+)'\)")
_DROP_INDEX = re.compile(r"drop_index\(migrator, '(\w+)', '(\w+)'\)")
_DROP_CHECK = re.compile(r"drop_check\(migrator, '(\w+)', '(\w+)'\)")
_COLUMN_CHANGE = re.compile(r"(?:add|drop|alter|rename)_column\(migrator, '(\w+)'[^\n]*|"
                            r"rename_table\(migrator, '(\w+)'[^\n]*")
_DROP_NOT_NULL = re.compile(r"drop_not_null\(migrator, '(\w+)', '(\w+)'\)")


@dataclass
class Split:
    """The transactional migration's steps and the online one's, each with its rollback."""

    forward: Plan
    backward: Plan
    online_forward: Plan
    online_backward: Plan


def split(forward: Plan, backward: Plan, created: set[str]) -> Split:
    """Move the steps on existing tables that have an online form to their own plans."""
    result = Split(Plan(), Plan(), Plan(), Plan())
    moved: set[tuple[str, str, str]] = set()
    # A CHECK the migration replaces (dropped, then added under the same name) keeps its
    # add beside the drop, in the one transaction: split, the drop would commit before an
    # online add that fails on existing rows, leaving the table with no CHECK at all.
    created = created | {f"{m.group(1)}.{m.group(2)}" for step in forward.steps
                         if (m := _DROP_CHECK.fullmatch(step))}
    # Column changes stay in the transaction; an index on such a table is dropped there
    # too (its column may go with it, and a rollback re-adds the column before the index).
    # A nullable FK column the migration drops goes online, so its rollback re-adds it
    # online too (the key NOT VALID then validated, the index CONCURRENTLY).
    fk_readds = {m.group(1, 2) for step in backward.steps
                 if (m := _ADD_FK.fullmatch(step)) and "null=True" in step}
    columns_changed = {m.group(1) or m.group(2) for step in forward.steps
                       if not ((d := _DROP_COLUMN.fullmatch(step)) and d.groups() in fk_readds)
                       for m in _COLUMN_CHANGE.finditer(step)}
    for step in forward.steps:
        online = _online_form(step, created, columns_changed, fk_readds)
        if online is None:
            result.forward.steps.append(step)
        else:
            key, code, helper = online
            moved.add(key)
            result.online_forward.add(code, helper)
    for step in backward.steps:
        undo = _online_undo(step, moved)
        if undo is None:
            result.backward.steps.append(step)
        else:
            result.online_backward.add(*undo)
    result.forward.drops = forward.drops
    known = forward.helpers | backward.helpers | ONLINE_HELPERS | {"add_index", "drop_index"}
    for plan in (result.forward, result.backward, result.online_forward,
                 result.online_backward):
        text = "\n".join(plan.steps)
        plan.helpers = {h for h in known if re.search(rf"\b{h}\b", text)}
    return result


def _fk_column_online(table: str, name: str, code: str, column: str) -> str:
    """A nullable FK column added online, with its index (unless ``index=False``)."""
    index = "" if "index=False" in code else (
        f"\nadd_index(migrator, {table!r}, {f'{table}_{column}'!r}, [{name!r}], "
        "concurrently=True)")
    return f"add_column_online(migrator, {table!r}, {name!r}, {code}){index}"


def _online_form(step: str, created: set[str], columns_changed: set[str],
                 fk_readds: set[tuple[str, ...]],
                 ) -> tuple[tuple[str, str, str], str, str] | None:
    if (match := _DROP_INDEX.fullmatch(step)) and match.group(1) not in created | \
            columns_changed:
        table, name = match.groups()
        return (("drop_index", table, name),
                f"drop_index(migrator, {table!r}, {name!r}, concurrently=True)", "drop_index")
    if (match := _DROP_COLUMN.fullmatch(step)) and match.group(1) not in created and \
            match.groups() in fk_readds:
        table, name = match.groups()
        return (("fk_drop", table, name), f"drop_column_online(migrator, {table!r}, {name!r})",
                "drop_column_online")
    if match := _ADD_INDEX.fullmatch(step):
        table, name, rest = match.groups()
        if table not in created:
            return (("index", table, name),
                    f"add_index(migrator, {table!r}, {name!r}, {rest}, concurrently=True)",
                    "add_index")
    elif match := _ADD_CHECK.fullmatch(step):
        table, name, expression = match.groups()
        if table not in created and f"{table}.{name}" not in created:
            return (("check", table, name),
                    f"add_check_online(migrator, {table!r}, {name!r}, {expression})",
                    "add_check_online")
    elif (match := _ADD_FK.fullmatch(step)) and "null=True" in step:
        table, name, code, column = match.groups()
        if table not in created:
            return (("fk_column", table, name), _fk_column_online(table, name, code, column),
                    "add_column_online")
    elif match := _ADD_NOT_NULL.fullmatch(step):
        table, name, fill = match.groups()
        if table not in created:
            return (("not_null", table, name),
                    f"set_not_null(migrator, {table!r}, {name!r}{fill or ''})", "set_not_null")
    return None


def _online_undo(step: str, moved: set[tuple[str, str, str]]) -> tuple[str, str] | None:
    if (match := _ADD_INDEX.fullmatch(step)) and ("drop_index", *match.group(1, 2)) in moved:
        table, name, rest = match.groups()
        return (f"add_index(migrator, {table!r}, {name!r}, {rest}, concurrently=True)",
                "add_index")
    if (match := _ADD_FK.fullmatch(step)) and ("fk_drop", *match.group(1, 2)) in moved:
        return _fk_column_online(*match.groups()), "add_column_online"
    if (match := _DROP_INDEX.fullmatch(step)) and ("index", *match.groups()) in moved:
        table, name = match.groups()
        return f"drop_index(migrator, {table!r}, {name!r}, concurrently=True)", "drop_index"
    if (match := _DROP_CHECK.fullmatch(step)) and ("check", *match.groups()) in moved:
        table, name = match.groups()
        return f"drop_constraint(migrator, {table!r}, {name!r})", "drop_constraint"
    if (match := _DROP_NOT_NULL.fullmatch(step)) and ("not_null", *match.groups()) in moved:
        table, name = match.groups()
        return f"drop_not_null_online(migrator, {table!r}, {name!r})", "drop_not_null_online"
    if (match := _DROP_COLUMN.fullmatch(step)) and ("fk_column", *match.groups()) in moved:
        table, name = match.groups()
        return f"drop_column_online(migrator, {table!r}, {name!r})", "drop_column_online"
    return None
