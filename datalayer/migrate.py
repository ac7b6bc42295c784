"""Run the migrations shipped with the package: migrate, rollback, status, check.

The migrations folder is resolved from the installed package (``datalayer.migrations``),
never from the working directory. The URL comes from the argument, else
``DATABASE_DIRECT_URL`` (migrations only: lets them bypass a transaction-mode pooler),
else ``DATABASE_URL``, else the SQLite default.

Every run that writes holds one transaction from start to end. On PostgreSQL its first
statement takes a transaction-level advisory lock, so concurrent runs (several replicas
starting at once) queue up and each migration is applied exactly once; a transaction
lock also works behind a transaction-mode pooler, where a session lock would not. On
SQLite the transaction starts with ``BEGIN IMMEDIATE``, which takes the write lock.
peewee_migrate's own per-migration transactions nest inside it.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import peewee
from peewee_migrate import Router
from peewee_migrate.auto import diff_many
from peewee_migrate.models import MIGRATE_TABLE

from datalayer.db import build_database
from datalayer.errors import DataLayerError

__all__ = [
    "LOCK_KEY",
    "MigrationError",
    "PendingMigrationsError",
    "check",
    "migrate",
    "migrations_dir",
    "resolve_url",
    "rollback",
    "status",
]

# pg_advisory_xact_lock key: the bytes of "datalayr" read as a (positive) bigint.
LOCK_KEY = int.from_bytes(b"datalayr", "big")

# information_schema spellings of the types peewee writes in DDL (PostgreSQL).
_PG_TYPE_ALIASES = {
    "timestamptz": "timestamp with time zone",
    "timestamp": "timestamp without time zone",
    "varchar": "character varying",
    "char": "character",
    "bool": "boolean",
    "int": "integer",
    "serial": "integer",
    "bigserial": "bigint",
    "decimal": "numeric",
    "real": "real",
    "double precision": "double precision",
    "blob": "bytea",
    "time": "time without time zone",
}


class MigrationError(DataLayerError):
    """Migrations could not run: no database, a bad URL, a failed or missing migration."""


class PendingMigrationsError(MigrationError):
    """The database has migrations left to apply."""


def resolve_url(url: str | None = None) -> str | None:
    """Return the URL migrations use; None means ``DATABASE_URL``, else the SQLite default."""
    return url or os.environ.get("DATABASE_DIRECT_URL") or None


def migrations_dir() -> Path:
    """Return the folder holding the shipped migrations."""
    spec = importlib.util.find_spec("datalayer.migrations")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if Path(location).is_dir():
            return Path(location)
    source_tree = Path(__file__).resolve().parent.parent / "migrations"
    if source_tree.is_dir():
        return source_tree
    raise MigrationError("cannot find the migrations: datalayer.migrations is not installed")


def migrate(url: str | None = None) -> list[str]:
    """Apply every pending migration; return the names applied."""
    with _locked(url) as database:
        return list(_router(database).run())


def rollback(url: str | None = None, count: int = 1) -> list[str]:
    """Roll back the last ``count`` applied migrations; return their names, newest first."""
    if count < 1:
        raise MigrationError(f"count must be at least 1, not {count}")
    with _locked(url) as database:
        router = _router(database)
        done = router.done
        if len(done) < count:
            raise MigrationError(
                f"cannot roll back {count} migration(s): only {len(done)} applied")
        for _ in range(count):
            router.rollback()
        return done[::-1][:count]


def status(url: str | None = None) -> tuple[list[str], list[str]]:
    """Return the applied and the pending migration names (changes nothing)."""
    with _connected(url) as database:
        return _status(database, _router(database, strict=False))


def check(url: str | None = None) -> list[str]:
    """Return the differences between the models and the migrated schema, one per line.

    Raises ``PendingMigrationsError`` when migrations are left to apply.
    """
    from datalayer.models import ALL_MODELS

    with _connected(url) as database:
        router = _router(database)
        _, pending = _status(database, router)
        if pending:
            raise PendingMigrationsError(
                f"{len(pending)} pending migration(s) ({', '.join(pending)}): "
                "run `datalayer migrate` first")
        models: list[Any] = list(ALL_MODELS)
        changes = diff_many(models, list(router.migrator.orm), router.migrator)
        problems = [
            "models and migrations differ (write a migration): " + _one_line(change)
            for change in changes
        ]
        return problems + _live_differences(database, models)


def _status(database: peewee.Database, router: Router) -> tuple[list[str], list[str]]:
    done = router.done if database.table_exists(router.migrate_table) else []
    applied = set(done)
    return done, [name for name in router.todo if name not in applied]


def _router(database: peewee.Database, *, strict: bool = True) -> Router:
    router = Router(database, migrate_dir=migrations_dir(), migrate_table=MIGRATE_TABLE)
    if strict and database.table_exists(router.migrate_table):
        # peewee_migrate replays every applied migration from its file; name the problem.
        unknown = sorted(set(router.done) - set(router.todo))
        if unknown:
            raise MigrationError(
                f"the database has migration(s) this datalayer does not ship: "
                f"{', '.join(unknown)} (was it migrated by a newer release?)")
    return router


@contextmanager
def _connected(url: str | None) -> Iterator[peewee.Database]:
    database = build_database(resolve_url(url))
    try:
        database.connect()
    except Exception as exc:  # the driver's own error types vary; all mean "no database"
        raise MigrationError(
            f"cannot connect to the database ({_describe(database)}): {_first_line(exc)}"
        ) from exc
    try:
        yield database
    except DataLayerError:
        raise
    except peewee.PeeweeException as exc:
        raise MigrationError(f"database error: {_first_line(exc)}") from exc
    finally:
        database.close()


@contextmanager
def _locked(url: str | None) -> Iterator[peewee.Database]:
    """Hold the migration lock for one transaction around the whole run."""
    with _connected(url) as database:
        if isinstance(database, peewee.SqliteDatabase):
            with database.atomic():  # BEGIN IMMEDIATE: build_database sets lock_type
                yield database
            return
        # READ COMMITTED whatever the server default: once the lock is ours, the next
        # statement must see the history a previous holder committed.
        with database.atomic(isolation_level="READ COMMITTED"):
            database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            yield database


def _live_differences(database: peewee.Database, models: list[Any]) -> list[str]:
    """Compare the database's tables, columns and indexes with the models."""
    problems: list[str] = []
    tables = set(database.get_tables())
    for model in models:
        table, name = model._meta.table_name, model.__name__
        if table not in tables:
            problems.append(f"{table}: table of model {name} is missing from the database")
            continue
        columns = {c.name: c for c in database.get_columns(table)}
        for field in model._meta.sorted_fields:
            column = columns.pop(field.column_name, None)
            where = f"{table}.{field.column_name}"
            if column is None:
                problems.append(f"{where}: column of {name}.{field.name} is missing "
                                "from the database")
                continue
            if column.null != field.null:
                model_says = "allows NULL" if field.null else "is NOT NULL"
                problems.append(f"{where}: {name}.{field.name} {model_says} but the "
                                "database column does not")
            if field.default is not None and not field.primary_key and column.default is None:
                problems.append(f"{where}: {name}.{field.name} has a default but the "
                                "database column has no server-side DEFAULT")
            wanted = _pg_type(database, field)
            if wanted and wanted != column.data_type.lower():
                problems.append(f"{where}: {name}.{field.name} is {wanted} but the "
                                f"database column is {column.data_type}")
        problems.extend(f"{table}.{c}: database column is not in model {name}" for c in columns)
        problems.extend(_index_differences(database, model))
    return problems


def _index_differences(database: peewee.Database, model: Any) -> list[str]:
    table = model._meta.table_name
    wanted = {index._name for index in model._meta.fields_to_index()}
    present = {
        index.name for index in database.get_indexes(table)
        if index.name != f"{table}_pkey" and not index.name.startswith("sqlite_autoindex_")
    }
    return [f"{table}: index {n} of model {model.__name__} is missing from the database"
            for n in sorted(wanted - present)] + [
        f"{table}: database index {n} is not in model {model.__name__}"
        for n in sorted(present - wanted)]


def _pg_type(database: peewee.Database, field: peewee.Field) -> str | None:
    """Return the information_schema type of a field on PostgreSQL (None on SQLite)."""
    if isinstance(database, peewee.SqliteDatabase):
        return None
    ctx = database.get_sql_context()
    ddl = ctx.sql(field.ddl_datatype(ctx)).query()[0].lower()
    base = re.sub(r"\s*\(.*\)$", "", ddl)
    return _PG_TYPE_ALIASES.get(base, base)


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).replace("( ", "(").replace(" )", ")").strip()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _describe(database: peewee.Database) -> str:
    """Name the database without its password."""
    if isinstance(database, peewee.SqliteDatabase):
        return f"sqlite file {database.database}"
    params = database.connect_params
    host = params.get("host", "localhost")
    port = f":{params['port']}" if params.get("port") else ""
    return f"postgresql {params.get('user', '')}@{host}{port}/{database.database}"
