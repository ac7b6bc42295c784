"""Column changes that rewrite their table on PostgreSQL: found, sized, refused or made
online.

``ALTER COLUMN … TYPE`` rewrites the whole table under an ACCESS EXCLUSIVE lock unless
the new type is binary-compatible (a longer ``varchar``, ``varchar`` to ``text``):
writers wait for all of it (6–8 s on a million todos). ``makemigrations`` says so with
the table's estimated rows and size, refuses above a threshold unless
``--allow-rewrite``, and with ``--online`` writes the change as three migrations instead
(``expand``, ``fill_expanded``, ``contract``: docs/online-schema-changes.md).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from datalayer.connection.database import build_database
from datalayer.errors import DataLayerError
from datalayer.evolve.code import field_code, helpers_of
from datalayer.evolve.diff import Plan
from datalayer.evolve.state import FieldState, TableState

__all__ = ["REWRITE_THRESHOLD", "Rewrite", "RewritePolicy", "RewriteRefusedError", "Size",
           "find", "online_plans", "sizer", "sizes_at"]

REWRITE_THRESHOLD = 100_000  # rows: above, a rewrite needs --allow-rewrite (or --online)
_VARCHAR = re.compile(r"VARCHAR\((\d+)\)", re.I)


class RewriteRefusedError(DataLayerError):
    """A table rewrite above the threshold, without --allow-rewrite or --online."""


@dataclass(frozen=True)
class Size:
    rows: int
    bytes: int | None


@dataclass(frozen=True)
class Rewrite:
    """A column whose new type makes PostgreSQL rewrite the table."""

    table: str
    old: FieldState
    new: FieldState
    checks: tuple[str, ...] = ()  # the table's CHECK expressions (PostgreSQL)
    indexes: tuple[str, ...] = ()  # indexes naming the column, but its own index=True one
    referenced_by: tuple[str, ...] = ()  # "table.column" of the foreign keys to it
    in_composite_key: bool = False

    def describe(self, size: Size | None) -> str:
        """Say what the change costs writers, with the table's size when known."""
        how = "size unknown: pass --database URL to see it" if size is None else (
            f"~{size.rows:,} rows" + (f", {size.bytes / 1e6:,.0f} MB" if size.bytes else ""))
        return (f"{self.table}.{self.old.column}: {self.old.type_pg} -> {self.new.type_pg} "
                f"rewrites table {self.table} ({how}) on PostgreSQL; writers are blocked "
                "until it finishes")

    @property
    def online_ok(self) -> str | None:
        """Why the online path cannot take this column (None: it can).

        The swap drops the old column with everything attached to it; the online path
        rebuilds on the new column only NOT NULL, the server default and the field's own
        index (``index=True`` / ``unique=True``).
        """
        column = f"{self.table}.{self.old.column}"
        if self.old.primary_key or self.new.primary_key or self.in_composite_key:
            return (f"{column} is (in) the primary key: the swap would drop the key, and the "
                    "foreign keys to it, with the old column")
        if self.old.fk or self.new.fk:
            return (f"{column} is a foreign key: its constraint would be dropped with the "
                    "old column (and its type follows the key it references)")
        if self.referenced_by:
            return (f"{column} is referenced by {', '.join(self.referenced_by)}: the "
                    "foreign key would be dropped with the old column")
        if (self.old.index, self.old.unique) != (self.new.index, self.new.unique):
            return (f"{column}'s index changes with its type: change the index in a "
                    "migration of its own, before or after")
        if self.indexes:
            return (f"{column} is in index {', '.join(self.indexes)} (with other columns, "
                    "an expression or a WHERE, or declared apart from the field), which "
                    "the swap would drop with the old column: the online path rebuilds "
                    "only the field's own index (index=True / unique=True)")
        if any(re.search(rf"\b{re.escape(self.old.column)}\b", c) for c in self.checks):
            return (f"{column} is in a CHECK, which the swap would drop with the old "
                    "column: the online path does not rebuild CHECKs")
        return None


def _binary_compatible(old: str, new: str) -> bool:
    if old.upper() == new.upper():
        return True
    was, now = _VARCHAR.fullmatch(old), _VARCHAR.fullmatch(new)
    if was and now:
        return int(now.group(1)) >= int(was.group(1))
    return bool(was) and new.upper() == "TEXT"


def find(have: Mapping[str, TableState], want: Mapping[str, TableState]) -> list[Rewrite]:
    """Return the columns, in tables both sides hold, whose type change rewrites."""
    found = []
    for table, target in want.items():
        source = have.get(table)
        for name, new in target.fields.items() if source else ():
            old = source.fields.get(name) if source else None
            if source is None or old is None or _binary_compatible(old.type_pg, new.type_pg):
                continue
            sides = (source, target)
            checks = tuple(pg for side in sides for pg, _ in side.checks.values())
            found.append(Rewrite(table, old, new, checks, _other_indexes(sides, old),
                                 _references(have, want, table, old.column),
                                 any(name in (s.composite_key or ()) for s in sides)))
    return found


def _other_indexes(sides: tuple[TableState, TableState], field: FieldState) -> tuple[str, ...]:
    """The indexes that name ``field``, on either side, but its own index=True one."""
    word = re.compile(rf"\b{re.escape(field.column)}\b")
    names: list[str] = []
    for side in sides:
        for index in side.indexes.values():
            own = index.implicit and index.fields == (field.name,)
            named = field.name in index.fields or any(
                word.search(text) for text in (*index.fields, index.where or ""))
            if named and not own and index.name not in names:
                names.append(index.name)
    return tuple(names)


def _references(have: Mapping[str, TableState], want: Mapping[str, TableState], table: str,
                column: str) -> tuple[str, ...]:
    """The foreign keys, on either side, to ``table.column``."""
    return tuple(dict.fromkeys(
        f"{state.name}.{field.column}" for states in (have, want) for state in states.values()
        for field in state.fields.values()
        if field.fk and field.fk[0] == table and field.fk[1] == column))


def sizer(database: Any) -> Callable[[str], Size | None]:
    """Return a function estimating a table's rows and bytes in ``database``."""
    def size(table: str) -> Size | None:
        try:
            if database.param == "?":  # SQLite: a count is the estimate
                rows = database.execute_sql(f'SELECT count(*) FROM "{table}"').fetchone()[0]
                return Size(int(rows), None)
            row = database.execute_sql(
                "SELECT reltuples::bigint, pg_total_relation_size(oid) FROM pg_class "
                "WHERE oid = to_regclass(%s)", (f'"{table}"',)).fetchone()
        except Exception:  # no such table, no database: unknown
            return None
        if row is None:
            return None
        rows = int(row[0]) if row[0] >= 0 else int(database.execute_sql(
            f'SELECT count(*) FROM "{table}"').fetchone()[0])  # never analyzed
        return Size(rows, int(row[1]))
    return size


_ALTER = re.compile(r"alter_column\(migrator, '(\w+)', '(\w+)', ")
_REVIEW = "# Review: the column's type or foreign key changes"


def online_plans(found: list[Rewrite], forward: Plan, backward: Plan,
                 ) -> tuple[Plan, Plan, list[tuple[str, Plan, Plan]]]:
    """Take the rewrites out of the plans; return them with three (suffix, forward,
    backward) migrations: expand, fill, contract."""
    keys = {(r.table, r.new.name) for r in found} | {(r.table, r.old.name) for r in found}
    plans = [_without(forward, keys), _without(backward, keys)]
    stages = [("expand", Plan(), Plan()), ("fill", Plan(), Plan()),
              ("contract", Plan(), Plan())]
    for r in found:
        table, column, new, old = r.table, r.old.column, r.new.type_pg, r.old.type_pg
        stages[0][1].add(f"expand(migrator, {table!r}, {column!r}, {new!r})", "expand")
        stages[0][2].add(f"unexpand(migrator, {table!r}, {column!r})", "unexpand")
        stages[1][1].add(f"fill_expanded(migrator, {table!r}, {column!r}, {new!r})",
                         "fill_expanded")
        # declare_index: the field's own index is rebuilt on the new column, by name
        stages[2][1].add(f"contract(migrator, {table!r}, {r.new.name!r}, "
                         f"{field_code(r.new, declare_index=True)})", "contract",
                         *helpers_of(r.new))
        stages[2][2].add(f"uncontract(migrator, {table!r}, {r.old.name!r}, "
                         f"{field_code(r.old, declare_index=True)}, {old!r})", "uncontract",
                         *helpers_of(r.old))
    return plans[0], plans[1], stages


def _without(plan: Plan, keys: set[tuple[str, str]]) -> Plan:
    kept = Plan(drops=plan.drops)
    steps = plan.steps
    for i, step in enumerate(steps):
        match = _ALTER.match(step)
        if match and (match.group(1), match.group(2)) in keys:
            continue
        following = steps[i + 1] if i + 1 < len(steps) else ""
        nxt = _ALTER.match(following)
        if step.startswith(_REVIEW) and nxt and (nxt.group(1), nxt.group(2)) in keys:
            continue
        kept.steps.append(step)
    text = "\n".join(kept.steps)
    kept.helpers = {h for h in plan.helpers if re.search(rf"\b{h}\b", text)}
    return kept


class RewritePolicy:
    """What makemigrations does with a column change that rewrites a table: say so with
    the table's size; refuse above ``threshold`` rows unless ``allow``; with ``online``,
    write expand / fill / contract migrations instead."""

    def __init__(self, *, allow: bool = False, online: bool = False,
                 threshold: int = REWRITE_THRESHOLD,
                 size: Callable[[str], Size | None] | None = None,
                 say: Callable[[str], None] | None = None) -> None:
        self.allow, self.online, self.threshold = allow, online, threshold
        self.size, self.say = size or (lambda table: None), say or (lambda text: None)

    def apply(self, found: list[Rewrite], forward: Plan, backward: Plan,
              ) -> tuple[Plan, Plan, list[tuple[str, Plan, Plan]]]:
        """Return the plans, and the expand / fill / contract stages (``online``)."""
        if not found:
            return forward, backward, []
        if self.online:
            blocked = [r.online_ok for r in found if r.online_ok]
            if blocked:
                raise RewriteRefusedError("; ".join(blocked) + " (nothing was written)")
            return online_plans(found, forward, backward)
        too_big = []
        for change in found:
            size = self.size(change.table)
            self.say(change.describe(size))
            if size is not None and size.rows > self.threshold:
                too_big.append(f"{change.table} (~{size.rows:,} rows)")
        if too_big and not self.allow:
            raise RewriteRefusedError(
                f"refusing to rewrite {', '.join(too_big)}: more than {self.threshold:,} "
                "rows. Write it online with --online (expand, backfill, contract: writers "
                "go on), or accept the blocked writers with --allow-rewrite (nothing was "
                "written)")
        return forward, backward, []


def sizes_at(url: str | None) -> Callable[[str], Size | None]:
    """Estimate a table's size in the database migrate would run on (None: unknown)."""
    target = url or os.environ.get("DATABASE_DIRECT_URL") or os.environ.get("DATABASE_URL")
    if not target:
        return lambda table: None
    database = build_database(target)

    def size(table: str) -> Size | None:
        try:
            database.connect(reuse_if_open=True)
        except Exception:  # no database to ask: the size stays unknown
            return None
        return sizer(database)(table)
    return size
