"""`datalayer check` sees every hand-made change to a migrated schema, both ways.

Each case changes one thing in a copy of the migrated template database, inside a
transaction that is rolled back afterwards (DDL is transactional on both backends; on
SQLite the CHECK, DEFAULT and foreign-key cases rebuild the table by hand, the way
SQLite's ALTER TABLE procedure says), and compares the catalogs with check's own code:
a line must name the table, the column or the object, what it expected and what it
found. The models' schema is built once for all cases (it is the slow part). End to
end, ``datalayer check`` exits 1 naming several changes made for good, and 0 on a
freshly migrated database, or on one whose tables were rebuilt by hand identically.
"""

from __future__ import annotations

import gc
import shutil
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import peewee as pw
import pytest
from click.testing import CliRunner
from helpers import (
    IS_PG,
    create_pg_database,
    db_name,
    direct_url,
    drop_pg_database,
    pg_direct_url,
)

from datalayer.cli.main import main
from datalayer.connection.database import build_database
from datalayer.evolve import drift
from datalayer.evolve import migrate as migrations
from datalayer.evolve.catalog_form import TableCatalog
from datalayer.models import ALL_MODELS, BaseModel, find_models


@dataclass(frozen=True)
class Rebuild:
    """Rebuild a SQLite table by hand with ``old`` replaced by ``new`` in its CREATE text."""

    table: str
    old: str
    new: str


@dataclass(frozen=True)
class Case:
    postgres: tuple[str, ...]
    sqlite: tuple[str | Rebuild, ...]
    line: str  # how the reported line starts
    words: tuple[str, ...] = ()  # and what else it says


AUDIT_PERMISSIVE_PG = """CREATE OR REPLACE FUNCTION admin_audit_log_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END; $$"""

CASES = {
    "varchar length": Case(
        ("ALTER TABLE waitlist ALTER COLUMN email TYPE varchar(500)",),
        (Rebuild("waitlist", '"email" VARCHAR(255)', '"email" VARCHAR(500)'),),
        "waitlist.email: type: expected", ("255", "500")),
    "nullability": Case(
        ("ALTER TABLE todos ALTER COLUMN title DROP NOT NULL",),
        (Rebuild("todos", '"title" TEXT NOT NULL', '"title" TEXT'),),
        "todos.title: nullability: expected NOT NULL, actual NULL allowed"),
    "dropped CHECK": Case(
        ("ALTER TABLE todos DROP CONSTRAINT todos_title_length_check",),
        (Rebuild("todos", ", CONSTRAINT todos_title_length_check CHECK "
                          "(length(title) BETWEEN 1 AND 255)", ""),),
        "todos: CHECK todos_title_length_check: expected", ("255", "actual none")),
    "changed CHECK": Case(
        ("ALTER TABLE todos DROP CONSTRAINT todos_title_length_check",
         "ALTER TABLE todos ADD CONSTRAINT todos_title_length_check "
         "CHECK (length(title) BETWEEN 1 AND 500)"),
        (Rebuild("todos", "BETWEEN 1 AND 255", "BETWEEN 1 AND 500"),),
        "todos: CHECK todos_title_length_check: expected", ("255", "500")),
    "extra CHECK": Case(
        ("ALTER TABLE todos ADD CHECK (length(title) < 100)",),
        (Rebuild("todos", '"title" TEXT NOT NULL', '"title" TEXT NOT NULL CHECK (length(title) < 100)'),),
        "todos: CHECK todos_title_check: expected none" if IS_PG else
        "todos: CHECK length(title) < 100: expected none", ("100",)),
    "dropped FK": Case(
        ("ALTER TABLE todos DROP CONSTRAINT todos_user_id_fkey",),
        (Rebuild("todos", ', FOREIGN KEY ("user_id") REFERENCES "user" ("id") ON DELETE CASCADE',
                 ""),),
        "todos: foreign key (user_id): expected REFERENCES user (id) ON DELETE CASCADE",
        ("actual none",)),
    "changed ON DELETE": Case(
        ("ALTER TABLE todos DROP CONSTRAINT todos_user_id_fkey",
         'ALTER TABLE todos ADD FOREIGN KEY (user_id) REFERENCES "user" (id) ON DELETE RESTRICT'),
        (Rebuild("todos", 'REFERENCES "user" ("id") ON DELETE CASCADE',
                 'REFERENCES "user" ("id") ON DELETE RESTRICT'),),
        "todos: foreign key (user_id): expected REFERENCES user (id) ON DELETE CASCADE",
        ("actual REFERENCES user (id) ON DELETE RESTRICT",)),
    "changed default": Case(
        ("ALTER TABLE todos ALTER COLUMN completed SET DEFAULT true",),
        (Rebuild("todos", '"completed" INTEGER NOT NULL DEFAULT 0',
                 '"completed" INTEGER NOT NULL DEFAULT 1'),),
        "todos.completed: default: expected", ("false", "true") if IS_PG else ("0", "1")),
    "dropped default": Case(
        ("ALTER TABLE todos ALTER COLUMN completed DROP DEFAULT",),
        (Rebuild("todos", '"completed" INTEGER NOT NULL DEFAULT 0',
                 '"completed" INTEGER NOT NULL'),),
        "todos.completed: default: expected", ("actual none",)),
    "index made non-unique": Case(
        ("DROP INDEX waitlist_email", "CREATE INDEX waitlist_email ON waitlist (email)"),
        ("DROP INDEX waitlist_email", "CREATE INDEX waitlist_email ON waitlist (email)"),
        "waitlist: index waitlist_email: expected UNIQUE", ("(email)",)),
    "index columns": Case(
        ("DROP INDEX admin_flags_type_idx",
         "CREATE INDEX admin_flags_type_idx ON admin_flags (flag_type)"),
        ("DROP INDEX admin_flags_type_idx",
         "CREATE INDEX admin_flags_type_idx ON admin_flags (flag_type)"),
        "admin_flags: index admin_flags_type_idx: expected", ("(flag_type, created_at, id)",
                                                             "actual")),
    "partial index WHERE": Case(
        ("DROP INDEX todos_user_personal_idx",
         "CREATE INDEX todos_user_personal_idx ON todos (user_id, created_at, id) "
         "WHERE tenant_id IS NOT NULL"),
        ("DROP INDEX todos_user_personal_idx",
         "CREATE INDEX todos_user_personal_idx ON todos (user_id, created_at, id) "
         "WHERE tenant_id IS NOT NULL"),
        "todos: index todos_user_personal_idx: expected", ("WHERE", "IS NOT NULL")),
    "index order": Case(
        ("DROP INDEX admin_flags_type_idx",
         "CREATE INDEX admin_flags_type_idx ON admin_flags (flag_type, created_at DESC, id)"),
        ("DROP INDEX admin_flags_type_idx",
         "CREATE INDEX admin_flags_type_idx ON admin_flags (flag_type, created_at DESC, id)"),
        "admin_flags: index admin_flags_type_idx: expected", ("created_at DESC",)),
    "dropped index": Case(
        ("DROP INDEX admin_flags_type_idx",), ("DROP INDEX admin_flags_type_idx",),
        "admin_flags: index admin_flags_type_idx: expected", ("actual none",)),
    "extra index": Case(
        ("CREATE INDEX todos_title_idx ON todos (title)",),
        ("CREATE INDEX todos_title_idx ON todos (title)",),
        "todos: index todos_title_idx: expected none, actual", ("(title)",)),
    "audit trigger dropped": Case(
        ("DROP TRIGGER admin_audit_log_no_truncate ON admin_audit_log",),
        ("DROP TRIGGER admin_audit_log_no_delete",),
        "admin_audit_log: trigger admin_audit_log_no_", ("actual none",)),
    "audit trigger changed": Case(
        (AUDIT_PERMISSIVE_PG,),
        ("DROP TRIGGER admin_audit_log_no_update",
         "CREATE TRIGGER admin_audit_log_no_update BEFORE UPDATE ON admin_audit_log "
         "BEGIN SELECT RAISE(ABORT, 'no'); END"),
        "admin_audit_log: trigger admin_audit_log_", ("expected", "actual")),
    "extra trigger": Case(
        ("CREATE TRIGGER todos_extra BEFORE DELETE ON todos "
         "FOR EACH ROW EXECUTE FUNCTION admin_audit_log_append_only()",),
        ("CREATE TRIGGER todos_extra BEFORE DELETE ON todos BEGIN SELECT 1; END",),
        "todos: trigger todos_extra: expected none, actual"),
    "extra column": Case(
        ("ALTER TABLE todos ADD COLUMN priority integer",),
        ("ALTER TABLE todos ADD COLUMN priority INTEGER",),
        "todos.priority: column in the database is not in the models"),
    "dropped column": Case(
        ("ALTER TABLE todos DROP COLUMN due_date",), ("ALTER TABLE todos DROP COLUMN due_date",),
        "todos.due_date: column is missing from the database"),
    "extra table": Case(
        ("CREATE TABLE scratchpad (id integer)",), ("CREATE TABLE scratchpad (id INTEGER)",),
        "scratchpad: table in the database is not in the models"),
    "dropped table": Case(
        ("DROP TABLE admin_tenant_notes",), ("DROP TABLE admin_tenant_notes",),
        "admin_tenant_notes: table is missing from the database"),
}


@pytest.fixture(scope="module")
def clone_url(template_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A copy of the migrated template the cases change, each in a rolled-back transaction."""
    if IS_PG:
        name = create_pg_database(db_name(template_url))
        try:
            yield pg_direct_url(name)
        finally:
            drop_pg_database(name)
    else:
        target = tmp_path_factory.mktemp("drift") / "clone.sqlite3"
        shutil.copy(template_url.removeprefix("sqlite:///"), target)
        yield f"sqlite:///{target}"


@pytest.fixture(scope="module")
def database(clone_url: str) -> Iterator[pw.Database]:
    database = build_database(clone_url)
    database.connect()
    try:
        yield database
    finally:
        database.close()


@pytest.fixture(scope="module")
def expected(database: pw.Database) -> dict[str, TableCatalog]:
    """The models' schema, built once by check's own code (the slow part on PostgreSQL)."""
    catalog = drift.expected_catalog(database, find_models())
    assert drift.compare(catalog, drift.live_catalog(database)) == []
    return catalog


@contextmanager
def changed(database: Any, statements: tuple[str | Rebuild, ...]) -> Iterator[None]:
    """Apply hand-made changes for the block, then roll them back (DDL is transactional)."""
    sqlite = isinstance(database, pw.SqliteDatabase)
    if sqlite:  # SQLite's rebuild procedure: foreign keys off, checked before COMMIT
        database.execute_sql("PRAGMA foreign_keys = OFF")
    try:
        with database.atomic() as transaction:
            for statement in statements:
                if isinstance(statement, Rebuild):
                    rebuild(database, statement)
                else:
                    database.execute_sql(statement)
            if sqlite:
                assert database.execute_sql("PRAGMA foreign_key_check").fetchall() == []
            yield
            transaction.rollback()
    finally:
        if sqlite:
            database.execute_sql("PRAGMA foreign_keys = ON")


def commit(url: str, statements: tuple[str | Rebuild, ...]) -> None:
    """Apply hand-made changes to the database behind ``url`` for good."""
    database = build_database(direct_url(url))
    database.connect()
    try:
        if isinstance(database, pw.SqliteDatabase):
            database.execute_sql("PRAGMA foreign_keys = OFF")
        with database.atomic():
            for statement in statements:
                if isinstance(statement, Rebuild):
                    rebuild(database, statement)
                else:
                    database.execute_sql(statement)
    finally:
        database.close()


def rebuild(database: Any, how: Rebuild) -> None:
    """SQLite's 12-step ALTER TABLE, by hand: new table, copy, drop, rename, indexes,
    triggers."""
    (sql,) = database.execute_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (how.table,)
    ).fetchone()
    assert sql.count(how.old) == 1, (how.old, sql)
    extras = [row[0] for row in database.execute_sql(
        "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') "
        "AND sql IS NOT NULL", (how.table,))]
    count = database.execute_sql(f'SELECT count(*) FROM "{how.table}"').fetchone()[0]
    database.execute_sql(sql.replace(how.old, how.new).replace(f'"{how.table}"', "rebuilt", 1))
    database.execute_sql(f'INSERT INTO rebuilt SELECT * FROM "{how.table}"')
    database.execute_sql(f'DROP TABLE "{how.table}"')
    database.execute_sql(f'ALTER TABLE rebuilt RENAME TO "{how.table}"')
    for statement in extras:
        database.execute_sql(statement)
    assert database.execute_sql(f'SELECT count(*) FROM "{how.table}"').fetchone()[0] == count


def run_check(url: str) -> tuple[int, list[str]]:
    """Run ``datalayer check`` as a user does; return its exit code and output lines."""
    result = CliRunner().invoke(main, ["check", "--database", url])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.stdout.splitlines()  # stderr names the database


def named(problems: list[str], case: Case) -> str:
    """Return the line that names the case's change (failing when there is none)."""
    lines = [line for line in problems if line.startswith(case.line)]
    assert lines, f"no line starts with {case.line!r}:\n" + "\n".join(problems)
    assert all(word in lines[0] for word in case.words), lines[0]
    return lines[0]


@pytest.mark.parametrize("name", list(CASES))
def test_hand_made_change_is_named(name: str, database: pw.Database,
                                   expected: dict[str, TableCatalog]) -> None:
    case = CASES[name]
    with changed(database, case.postgres if IS_PG else case.sqlite):
        named(drift.compare(expected, drift.live_catalog(database)), case)
    assert drift.compare(expected, drift.live_catalog(database)) == []  # rolled back


def test_freshly_migrated_database_passes(fresh_db: str) -> None:
    assert run_check(fresh_db) == (0, ["The schema matches the models."])


def test_check_exits_1_naming_every_change(fresh_db: str) -> None:
    """The command end to end: several changes at once, each named, exit 1."""
    cases = [CASES[n] for n in ("changed ON DELETE", "partial index WHERE",
                                "audit trigger dropped", "varchar length", "extra table")]
    commit(fresh_db, tuple(s for c in cases for s in (c.postgres if IS_PG else c.sqlite)))
    code, lines = run_check(fresh_db)
    assert code == 1
    assert lines[0] == "The schema does not match the models (5 difference(s)):", lines
    problems = [line.strip().removeprefix("- ") for line in lines[1:]]
    for case in cases:
        named(problems, case)


@pytest.mark.skipif(IS_PG, reason="SQLite only: tables rebuilt by hand")
def test_table_rebuilt_by_hand_identically_passes(fresh_db: str) -> None:
    """Quotes and spacing differ, the schema does not: no difference is reported."""
    commit(fresh_db, (
        Rebuild("todos", '"completed" INTEGER NOT NULL DEFAULT 0',
                "completed   INTEGER NOT NULL DEFAULT 0"),
        Rebuild("waitlist", "CHECK (email = lower(email))", 'CHECK ("email" = lower( "email" ))'),
    ))
    assert run_check(fresh_db) == (0, ["The schema matches the models."])


def test_model_outside_all_models_is_found(fresh_db: str) -> None:
    """A model defined in a module of datalayer.models is seen without registration."""

    class Gadget(BaseModel):
        __module__ = "datalayer.models.features"
        label = pw.TextField()

        class Meta:
            table_name = "gadgets"

    try:
        assert Gadget in find_models() and Gadget not in ALL_MODELS
        problems = migrations.schema_drift(fresh_db)
        assert "gadgets: table is missing from the database (the models declare it)" in problems
        assert any("create_model" in p and "gadgets" in p for p in problems), problems
    finally:
        gone = weakref.ref(Gadget)
        del Gadget
        gc.collect()
    assert gone() is None, "the test model lingers and would leak into other tests"
    assert migrations.schema_drift(fresh_db) == []
