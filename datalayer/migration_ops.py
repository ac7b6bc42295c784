"""The operations generated migrations call, beside peewee_migrate's own ``migrator`` API.

``datalayer makemigrations`` writes migrations that import this module and nothing else
of the package: never the models, so an old migration still runs after the models move
on. Treat everything here as frozen: change a helper's behaviour and every migration
that calls it changes too. Add a new helper instead.

Each helper does two things, like peewee_migrate's own operations: it updates the
migration state (``migrator.orm``, which the next migration and ``makemigrations`` read)
and it queues the SQL, written for the backend the migration runs on. peewee_migrate's
``add_index`` / ``drop_index`` cannot name an index, give it a ``WHERE`` or drop one a
model declared with ``Model.index(...)``; the ones here can.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import peewee as pw

__all__ = [
    "Dialect",
    "ServerDefault",
    "TimestampTZField",
    "Trigger",
    "add_check",
    "add_index",
    "check",
    "check_constraint",
    "drop_check",
    "drop_index",
    "add_trigger",
    "drop_trigger",
    "run_sql",
    "set_default",
]

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


def _is_sqlite(migrator: Any) -> bool:
    return isinstance(migrator.__database__, pw.SqliteDatabase)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql(migrator: Any, statement: str) -> None:
    # migrator.sql() runs through execute_sql with a parameter tuple: psycopg2
    # interpolates, so a literal % must be doubled there (SQLite's ? style does not).
    migrator.sql(statement if _is_sqlite(migrator) else statement.replace("%", "%%"))


def add_index(migrator: Any, table: str, name: str, fields: Iterable[str], *,
              unique: bool = False, where: str | None = None,
              concurrently: bool = False) -> None:
    """Create index ``name`` on ``fields`` (field names), partial when ``where`` is given.

    ``concurrently=True`` builds it with ``CREATE INDEX CONCURRENTLY`` on PostgreSQL,
    outside the migration's transaction; such a migration holds only such steps.
    """
    model = migrator.orm[table]
    columns = [model._meta.fields[f] for f in fields]
    implicit = len(columns) == 1 and where is None and \
        _index_name(pw.ModelIndex(model, columns, unique)) == name
    if implicit:  # what index=True / unique=True on the field declares
        columns[0].index, columns[0].unique = not unique, unique
    else:
        model._meta.indexes.append(model.index(
            *columns, unique=unique, name=name, where=pw.SQL(where) if where else None))
    listed = ", ".join(_quote(c.column_name) for c in columns)
    how = "CONCURRENTLY " if concurrently and not _is_sqlite(migrator) else ""
    statement = (f"CREATE {'UNIQUE ' if unique else ''}INDEX {how}IF NOT EXISTS "
                 f"{_quote(name)} ON {_quote(table)} ({listed})")
    _sql(migrator, statement + (f" WHERE {where}" if where else ""))


def drop_index(migrator: Any, table: str, name: str, *, concurrently: bool = False) -> None:
    """Drop index ``name``, however the model declared it (tuple, ``index()``, field flag)."""
    meta = migrator.orm[table]._meta
    kept = []
    for index in meta.indexes:
        declared = index if isinstance(index, pw.ModelIndex) else None
        if declared is None:
            columns, unique = index
            declared = pw.ModelIndex(meta.model, [meta.fields[c] for c in columns], unique)
        if _index_name(declared) != name:
            kept.append(index)
    meta.indexes = kept
    for field in meta.sorted_fields:  # a single-field index=True / unique=True
        if (field.index or field.unique) and _index_name(pw.ModelIndex(
                meta.model, (field,), field.unique)) == name:
            field.index = field.unique = False
    how = "CONCURRENTLY " if concurrently and not _is_sqlite(migrator) else ""
    _sql(migrator, f"DROP INDEX {how}IF EXISTS {_quote(name)}")


def _index_name(index: Any) -> str:
    # peewee keeps an index's name in a private attribute (the stubs do not list it).
    return str(index._name)


def _constraint_name(node: Any) -> str | None:
    text = node.postgres if isinstance(node, Dialect) or hasattr(node, "postgres") \
        else getattr(node, "sql", "")
    match = re.match(r"\s*CONSTRAINT\s+(\S+)", text or "", re.IGNORECASE)
    return match.group(1) if match else None


def add_check(migrator: Any, table: str, name: str, expression: str, *,
              sqlite: str | None = None) -> None:
    """Add CHECK constraint ``name`` (``sqlite``: SQLite's own expression); existing rows
    must pass it.

    PostgreSQL adds it ``NOT VALID`` and validates it in a second statement, which takes
    a weaker lock than a plain ``ADD CONSTRAINT``; SQLite rebuilds the table.
    """
    meta = migrator.orm[table]._meta
    meta.constraints = [*(meta.constraints or []), check_constraint(name, expression, sqlite=sqlite)]
    if _is_sqlite(migrator):
        clause = f", CONSTRAINT {name} CHECK ({sqlite or expression})"
        _queue_rebuild(migrator, table, lambda body: body + clause)
        return
    _sql(migrator, f"ALTER TABLE {_quote(table)} ADD CONSTRAINT {name} "
                   f"CHECK ({expression}) NOT VALID")
    _sql(migrator, f"ALTER TABLE {_quote(table)} VALIDATE CONSTRAINT {name}")


def drop_check(migrator: Any, table: str, name: str) -> None:
    """Drop CHECK constraint ``name``."""
    meta = migrator.orm[table]._meta
    meta.constraints = [c for c in meta.constraints or [] if _constraint_name(c) != name] or None
    if _is_sqlite(migrator):
        pattern = re.compile(rf",\s*CONSTRAINT\s+{re.escape(name)}\s+CHECK\s*\(", re.I)
        _queue_rebuild(migrator, table,
                     lambda body: _drop_clause(body, pattern))
        return
    _sql(migrator, f"ALTER TABLE {_quote(table)} DROP CONSTRAINT IF EXISTS {name}")


def set_default(migrator: Any, table: str, field: str, default: ServerDefault | None) -> None:
    """Set (or, with None, drop) the server-side DEFAULT of a column."""
    model = migrator.orm[table]
    column = model._meta.fields[field]
    # Any class named ServerDefault: 001 and the models each carry their own copy.
    others = [c for c in column.constraints or [] if type(c).__name__ != "ServerDefault"]
    column.constraints = [*others, default] if default is not None else (others or None)
    if _is_sqlite(migrator):  # SQLite cannot alter a default: rebuild the table
        ctx = migrator.__database__.get_sql_context()
        definition = ctx.sql(column.ddl(ctx)).query()[0]
        _queue_rebuild(migrator, table,
                     lambda body: _replace_column(body, column.column_name, definition))
        return
    what = f"SET DEFAULT {default.postgres}" if default is not None else "DROP DEFAULT"
    _sql(migrator, f"ALTER TABLE {_quote(table)} ALTER COLUMN "
                   f"{_quote(column.column_name)} {what}")


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
    for statement in trigger.sqlite if _is_sqlite(migrator) else trigger.postgres:
        migrator.sql(statement)


def drop_trigger(migrator: Any, table: str, trigger: Trigger) -> None:
    """Drop ``trigger`` from ``table`` (its drop statements for this backend)."""
    meta = migrator.orm[table]._meta
    meta.triggers = [t for t in getattr(meta, "triggers", None) or () if t.name != trigger.name]
    for statement in trigger.drop_sqlite if _is_sqlite(migrator) else trigger.drop_postgres:
        migrator.sql(statement)


def run_sql(migrator: Any, *, postgres: Iterable[str] = (), sqlite: Iterable[str] = ()) -> None:
    """Run statements written for each backend (triggers, functions, data fixes)."""
    for statement in sqlite if _is_sqlite(migrator) else postgres:
        _sql(migrator, statement)


def _split_items(body: str) -> list[str]:
    """Split a CREATE TABLE body on its top-level commas (not inside () or quotes)."""
    items, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(body):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"`[":
            quote = "]" if char == "[" else char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            items.append(body[start:i])
            start = i + 1
    return [*items, body[start:]]


def _replace_column(body: str, column: str, definition: str) -> str:
    items = _split_items(body)
    names = [item.strip().split(None, 1)[0].strip('"`[]') if item.strip() else ""
             for item in items]
    if names.count(column) != 1:
        raise ValueError(f"column {column!r} not found once in the table definition")
    items[names.index(column)] = " " + definition
    return ",".join(items)


def _drop_clause(body: str, pattern: re.Pattern[str]) -> str:
    match = pattern.search(body)
    if not match:
        return body
    depth, end = 1, match.end()
    while depth and end < len(body):
        depth += {"(": 1, ")": -1}.get(body[end], 0)
        end += 1
    return body[:match.start()] + body[end:]


class _Rebuild:
    """A queued SQLite table rebuild; ``rebuilds_table`` lets migrate announce it."""

    def __init__(self, database: Any, table: str, edit: Callable[[str], str]) -> None:
        self.database, self.rebuilds_table, self.edit = database, table, edit
        self.__name__ = f"rebuild {table}"

    def __call__(self) -> None:
        _sqlite_rebuild(self.database, self.rebuilds_table, self.edit)


def _queue_rebuild(migrator: Any, table: str, edit: Callable[[str], str]) -> None:
    migrator.__ops__.append(_Rebuild(migrator.__database__, table, edit))


def _sqlite_rebuild(database: Any, table: str, edit: Callable[[str], str]) -> None:
    """Rebuild a SQLite table with an edited column/constraint list, keeping every row.

    SQLite's documented procedure: create the new table, copy, drop, rename, recreate the
    indexes and triggers. ``datalayer migrate`` runs with foreign keys off and runs
    ``PRAGMA foreign_key_check`` before it commits.
    """
    sql = database.execute_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()[0]
    _, _, rest = sql.partition("(")
    body = rest[:rest.rindex(")")]
    extras = [row[0] for row in database.execute_sql(
        "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') "
        "AND sql IS NOT NULL", (table,))]
    temporary = f"{table}__rebuild__"
    database.execute_sql(f"CREATE TABLE {_quote(temporary)} ({edit(body)})")
    database.execute_sql(f"INSERT INTO {_quote(temporary)} SELECT * FROM {_quote(table)}")
    database.execute_sql(f"DROP TABLE {_quote(table)}")
    database.execute_sql(f"ALTER TABLE {_quote(temporary)} RENAME TO {_quote(table)}")
    for statement in extras:
        database.execute_sql(statement)
