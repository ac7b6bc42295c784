"""Compare a live database with the schema the models make, catalog against catalog.

The expected side is built, not imagined: the models' own DDL (``create_all``: tables,
indexes, deferred foreign keys, ``Meta.triggers``) runs in a scratch place on the same
server — on PostgreSQL a schema created in a transaction that is rolled back, on SQLite
an in-memory database — and both sides are read by the same catalog reader. Every
difference is a line ``where: what: expected X, actual Y``; tables, columns, CHECKs,
foreign keys, indexes and triggers found only in the database are reported too.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

import peewee as pw

from datalayer.errors import MigrationError
from datalayer.evolve.catalog_form import ForeignKey, TableCatalog
from datalayer.evolve.catalog_postgres import read_postgres
from datalayer.evolve.catalog_sqlite import read_sqlite

__all__ = ["compare", "expected_catalog", "live_catalog", "schema_differences"]

NONE = "none"


def live_catalog(database: pw.Database) -> dict[str, TableCatalog]:
    """Return the catalog of the database's tables (its current schema on PostgreSQL)."""
    if isinstance(database, pw.SqliteDatabase):
        return read_sqlite(database)
    return read_postgres(database, None)


def expected_catalog(database: pw.Database, models: list[Any]) -> dict[str, TableCatalog]:
    """Build ``models`` in a scratch place beside ``database`` and return its catalog.

    Nothing is left behind: the SQLite copy lives in memory, the PostgreSQL schema in a
    transaction that is rolled back.
    """
    from datalayer.models import create_all

    if isinstance(database, pw.SqliteDatabase):
        scratch = pw.SqliteDatabase(":memory:")
        with scratch.connection_context():
            create_all(scratch, models)
            return read_sqlite(scratch)
    raw: Any = database  # peewee's stubs leave execute_sql untyped
    schema = f"datalayer_check_{uuid.uuid4().hex[:12]}"
    current = raw.execute_sql("SELECT current_schema()").fetchone()[0]
    with database.atomic() as transaction:
        try:
            raw.execute_sql(f'CREATE SCHEMA "{schema}"')
        except pw.PeeweeException as exc:
            raise MigrationError(
                "check builds the models' schema in a scratch schema of this database "
                f"(rolled back at once) and could not create it: {str(exc).strip()} "
                "(the user needs CREATE on the database)") from exc
        # First on the path: the models' unqualified DDL lands there, and types or
        # functions of the database's own schema (extensions) are still found.
        raw.execute_sql("SELECT set_config('search_path', %s, true)",
                        (f'"{schema}", "{current}"',))
        create_all(database, models)
        catalog = read_postgres(database, schema)
        transaction.rollback()
    return catalog


def schema_differences(database: pw.Database, models: list[Any]) -> list[str]:
    """Return every difference between the models' schema and the database's."""
    return compare(expected_catalog(database, models), live_catalog(database))


def compare(expected: Mapping[str, TableCatalog], actual: Mapping[str, TableCatalog]) -> list[str]:
    """Return one line per difference, both ways (what is missing and what is extra)."""
    problems: list[str] = []
    for table in sorted(set(expected) | set(actual)):
        if table not in actual:
            problems.append(f"{table}: table is missing from the database (the models "
                            "declare it)")
        elif table not in expected:
            problems.append(f"{table}: table in the database is not in the models")
        else:
            problems += _table(table, expected[table], actual[table])
    return problems


def _table(name: str, want: TableCatalog, have: TableCatalog) -> list[str]:
    problems: list[str] = []
    for column in sorted(set(want.columns) | set(have.columns)):
        where = f"{name}.{column}"
        if column not in have.columns:
            problems.append(f"{where}: column is missing from the database")
        elif column not in want.columns:
            problems.append(f"{where}: column in the database is not in the models")
        else:
            problems += _column(where, want.columns[column], have.columns[column])
    if want.primary_key != have.primary_key:
        problems.append(f"{name}: primary key: expected ({', '.join(want.primary_key)}), "
                        f"actual ({', '.join(have.primary_key)})")
    problems += _each(f"{name}: CHECK", want.checks, have.checks)
    problems += _each(f"{name}: constraint", want.constraints, have.constraints)
    problems += _each(f"{name}: index", want.indexes, have.indexes)
    problems += _each(f"{name}: trigger", want.triggers, have.triggers, show=_difference)
    problems += _each(f"{name}: foreign key", _keys(want.foreign_keys),
                      _keys(have.foreign_keys))
    return problems


def _column(where: str, want: Any, have: Any) -> list[str]:
    problems = []
    if want.type != have.type:
        problems.append(f"{where}: type: expected {want.type}, actual {have.type}")
    if want.not_null != have.not_null:
        problems.append(f"{where}: nullability: expected {_null(want.not_null)}, "
                        f"actual {_null(have.not_null)}")
    if want.default != have.default:
        problems.append(f"{where}: default: expected {want.default or NONE}, "
                        f"actual {have.default or NONE}")
    return problems


def _null(not_null: bool) -> str:
    return "NOT NULL" if not_null else "NULL allowed"


def _keys(keys: Mapping[tuple[str, ...], ForeignKey]) -> dict[str, str]:
    return {f"({', '.join(columns)})": key.describe() for columns, key in keys.items()}


def _each(label: str, want: Mapping[str, str], have: Mapping[str, str],
          show: Callable[[str, str], tuple[str, str]] | None = None) -> list[str]:
    problems = []
    for key in sorted(set(want) | set(have)):
        expected, actual = want.get(key), have.get(key)
        if expected == actual:
            continue
        if show is not None:  # long texts: the stretch where they part
            shown = show(expected or "", actual or "")
            expected, actual = (expected and shown[0]), (actual and shown[1])
        problems.append(f"{label} {key}: expected {expected or NONE}, actual {actual or NONE}")
    return problems


def _difference(expected: str, actual: str, context: int = 40) -> tuple[str, str]:
    """Shorten two long texts to the stretch around their first difference."""
    start = next((i for i, (a, b) in enumerate(zip(expected, actual, strict=False)) if a != b),
                 min(len(expected), len(actual)))
    begin = max(start - context, 0)

    def cut(text: str) -> str:
        piece = text[begin:start + context]
        return ("…" if begin else "") + repr(piece) + ("…" if start + context < len(text) else "")

    return cut(expected), cut(actual)
