"""The adoption plan: one ``INSERT ... SELECT`` per target table, worked out from the catalog.

The target tables are whatever the library's migrations built (in the scratch schema),
so a new migration changes the plan without touching this module — unless it adds
something adoption cannot fill. Then the plan refuses, naming the column:

- a target column that is NOT NULL, has no DEFAULT and that no rule fills;
- an original column that no target column receives (its data would be lost);
- a column whose type changed in a way ``adopt_rules.CONVERSIONS`` does not cover.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from datalayer.adopt.catalog import Column, ident, qualified
from datalayer.adopt.original import ORIGINAL_TABLES
from datalayer.adopt.rules import ORIGINAL, Fix, TableRule, convert, rules
from datalayer.errors import AdoptError

SCRATCH = "datalayer_adopt"  # the schema the target is built in, then emptied into public


@dataclass
class Copy:
    """Fill one target table from its original in one statement."""

    table: str
    sql: str
    rows_sql: str  # how many rows the statement must write
    notes: list[str] = field(default_factory=list)


@dataclass
class Plan:
    copies: list[Copy]
    fixes: list[Fix]
    defaulted: dict[str, list[str]]  # new target columns that take their DEFAULT (or NULL)
    created_empty: list[str]  # target tables the original has no counterpart for
    dropped_if_empty: list[str]  # original tables the target has no counterpart for


def build_plan(variant: str, originals: dict[str, list[Column]],
               targets: dict[str, list[Column]], order: list[str]) -> Plan:
    """Work out every statement; raise ``AdoptError`` listing whatever adopt cannot do."""
    table_rules = rules(variant)
    problems: list[str] = []
    copies: list[Copy] = []
    fixes: list[Fix] = []
    defaulted: dict[str, list[str]] = {}
    for table in order:
        if table not in ORIGINAL_TABLES:
            continue
        rule = table_rules.get(table, TableRule())
        copy, new, extra_fixes, trouble = _copy(table, originals[table], targets[table], rule)
        problems += trouble
        copies.append(copy)
        fixes += list(rule.fixes) + extra_fixes
        if new:
            defaulted[table] = new
    if problems:
        raise AdoptError(
            "adopt does not know how to convert this database to the library's current "
            f"schema ({len(problems)} problem(s); a migration probably changed a table "
            "without a rule in datalayer/adopt/rules.py): " + "; ".join(problems))
    return Plan(
        copies=copies,
        fixes=fixes,
        defaulted=defaulted,
        created_empty=sorted(set(targets) - set(ORIGINAL_TABLES)),
        dropped_if_empty=sorted(set(ORIGINAL_TABLES) - set(targets)),
    )


def _copy(table: str, original: list[Column], target: list[Column],
          rule: TableRule) -> tuple[Copy, list[str], list[Fix], list[str]]:
    source = {c.name: c for c in original}
    used = set(rule.consumes)
    names: list[str] = []
    exprs: list[str] = []
    new: list[str] = []
    fixes: list[Fix] = []
    problems: list[str] = []
    converted: dict[str, list[str]] = {}
    for column in target:
        where = f"{table}.{column.name}"
        if column.name in rule.exprs:
            expr = rule.exprs[column.name]
        elif rule.by_name and column.name in source:
            old = source[column.name]
            maybe = convert(f"o.{ident(column.name)}", old.type, column.type)
            if maybe is None:
                problems.append(f"{where}: no conversion from {old.type} to {column.type}")
                continue
            expr = maybe
            if old.type != column.type:
                kind = f"{_short(old.type)} -> {_short(column.type)}"
                converted.setdefault(kind, []).append(column.name)
            if column.not_null and not old.not_null and column.default is not None:
                expr = f"COALESCE({expr}, {column.default})"
                fixes.append(Fix(table, f"NULL {column.name} -> its default {column.default} "
                                 "(the target column is NOT NULL)",
                                 f"SELECT count(*) FROM {qualified(ORIGINAL, table)} "
                                 f"WHERE {ident(column.name)} IS NULL"))
        else:
            if column.not_null and column.default is None:
                problems.append(f"{where} is NOT NULL with no DEFAULT and no rule fills it")
            else:
                new.append(column.name)
            continue
        if column.name in source:
            used.add(column.name)
        names.append(ident(column.name))
        exprs.append(expr)
    problems += [f"{table}.{name}: the original column has no place in the target (its "
                 "data would be lost)" for name in source if name not in used]
    origin = rule.source or qualified(ORIGINAL, table)
    sql = (f"INSERT INTO {qualified(SCRATCH, table)} ({', '.join(names)}) "
           f"SELECT {', '.join(exprs)} FROM {origin} AS o")
    rows_sql = rule.rows_sql or f"SELECT count(*) FROM {qualified(ORIGINAL, table)}"
    notes = [f"{', '.join(cols)}: {kind}" for kind, cols in converted.items()]
    if rule.what:
        notes.insert(0, rule.what)
    return Copy(table, sql, rows_sql, notes), new, fixes, problems


def _short(type_: str) -> str:
    return {"timestamp without time zone": "timestamp (read as UTC)",
            "timestamp with time zone": "timestamptz"}.get(type_, type_)
