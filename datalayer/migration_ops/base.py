"""What every operation shares: the per-backend DDL node, the column types migrations
declare, quoting, literals, and the queued ``Step`` that ``datalayer migrate`` can read.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Callable
from typing import Any

import peewee as pw

__all__ = ["CONCURRENTLY", "Dialect", "ServerDefault", "Step", "TimestampTZField", "check", "check_constraint",
           "constraint_name", "index_name", "is_sqlite", "literal", "quote", "queue_sql",
           "server_default"]

# Statements that must run outside a transaction; `datalayer migrate` runs a migration
# made only of these on its own (see datalayer.evolve.migrate), and refuses to mix them.
CONCURRENTLY = re.compile(r"\bCONCURRENTLY\b", re.IGNORECASE)


class Dialect(pw.Node):
    """A piece of DDL written for each backend (PostgreSQL, SQLite)."""

    prefix = ""

    def __init__(self, postgres: str, sqlite: str | None = None) -> None:
        self.postgres = postgres
        self.sqlite = postgres if sqlite is None else sqlite

    def __sql__(self, ctx: Any) -> Any:
        # peewee gives no dialect name to the context; its parameter style tells it.
        expr = self.sqlite if ctx.state.param == "?" else self.postgres
        return ctx.literal(self.prefix + expr if expr else "")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.postgres!r}, {self.sqlite!r})"


class ServerDefault(Dialect):
    """A column's server-side ``DEFAULT``."""

    prefix = "DEFAULT "


class TimestampTZField(pw.DateTimeField):
    """``timestamptz`` on PostgreSQL, ``TIMESTAMPTZ`` (ISO text, UTC) on SQLite."""

    field_type = "TIMESTAMPTZ"


class Step:
    """One queued operation that is Python, not a single statement.

    ``drops`` names what it deletes (``("table", name, None)`` or ``("column", table,
    column)``): ``datalayer migrate`` and ``rollback`` read it before anything runs and
    count the rows at stake.
    """

    def __init__(self, name: str, run: Callable[[], None], *,
                 drops: tuple[tuple[str, str, str | None], ...] = ()) -> None:
        self.__name__ = name
        self.run, self.drops = run, drops

    def __call__(self) -> None:
        self.run()

    def __repr__(self) -> str:
        return f"Step({self.__name__!r})"


def check_constraint(name: str, expression: str, *, sqlite: str | None = None) -> pw.Node:
    """Return a named table CHECK constraint, as ``Meta.constraints`` holds it.

    ``sqlite`` gives SQLite its own expression (e.g. ``json_type`` for ``jsonb_typeof``).
    """
    if sqlite is None or sqlite == expression:
        return pw.SQL(f"CONSTRAINT {name} CHECK ({expression})")
    return Dialect(f"CONSTRAINT {name} CHECK ({expression})",
                   f"CONSTRAINT {name} CHECK ({sqlite})")


# The name migrations 001-003 (and users' migration files) import: kept working.
check = check_constraint


def is_sqlite(migrator: Any) -> bool:
    """Tell whether the migration runs on SQLite."""
    return isinstance(migrator.__database__, pw.SqliteDatabase)


def quote(name: str) -> str:
    """Quote an identifier."""
    return '"' + name.replace('"', '""') + '"'


def queue_sql(migrator: Any, statement: str) -> None:
    """Queue one statement on the migration."""
    # migrator.sql() runs through execute_sql with a parameter tuple: psycopg2
    # interpolates, so a literal % must be doubled there (SQLite's ? style does not).
    migrator.sql(statement if is_sqlite(migrator) else statement.replace("%", "%%"))


def literal(value: Any, *, sqlite: bool) -> str:
    """Return a constant as an SQL literal (a default's value, a fill)."""
    if isinstance(value, Dialect):
        return value.sqlite if sqlite else value.postgres
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return ("1" if value else "0") if sqlite else ("true" if value else "false")
    if isinstance(value, int | float | decimal.Decimal):
        return repr(value) if not isinstance(value, decimal.Decimal) else str(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        value = value.isoformat()
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"{value!r}: only a constant (number, text, boolean, date) can fill "
                    "existing rows")


def server_default(field: pw.Field) -> Dialect | None:
    """Return the server DEFAULT a field declares, if any (any class named ServerDefault)."""
    for node in field.constraints or ():
        if type(node).__name__ == "ServerDefault":
            return node  # type: ignore[no-any-return]  # peewee types constraints as Any
        sql = getattr(node, "sql", None)
        if isinstance(sql, str) and sql.upper().startswith("DEFAULT "):
            return ServerDefault(sql[8:])
    return None


def index_name(index: Any) -> str:
    """Return a peewee index's name (kept in a private attribute the stubs do not list)."""
    return str(index._name)


def constraint_name(node: Any) -> str | None:
    """Return the name of a ``CONSTRAINT name ...`` node."""
    text = node.postgres if hasattr(node, "postgres") else getattr(node, "sql", "")
    match = re.match(r"\s*CONSTRAINT\s+(\S+)", text or "", re.IGNORECASE)
    return match.group(1) if match else None
