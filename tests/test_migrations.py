"""The migrations build the schema create_all() builds, and the runner applies them safely.

Every test makes a database of its own (the backend comes from DATALAYER_TEST_BACKEND);
none relies on conftest fixtures (only on the scratch_database helper).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import peewee as pw
import psycopg2
import pytest
from helpers import IS_PG, scratch_database

from datalayer.connection.database import build_database
from datalayer.evolve import migrate as migrations
from datalayer.models import ALL_MODELS, Todo, User, create_all
from datalayer.models.base import ServerDefault

REPO_ROOT = Path(__file__).resolve().parents[1]
# Every migration the package ships, oldest first (the tests name none of them).
ALL = sorted(p.stem for p in migrations.migrations_dir().glob("[0-9][0-9][0-9]_*.py"))
pg_only = pytest.mark.skipif(not IS_PG, reason="PostgreSQL only (DATALAYER_TEST_BACKEND)")


@pytest.fixture
def empty_url(tmp_path: Path) -> Iterator[str]:
    with scratch_database(tmp_path) as url:
        yield url


@pytest.fixture
def migrated_url(empty_url: str) -> str:
    assert migrations.migrate(empty_url) == ALL
    return empty_url


@contextmanager
def connected(url: str) -> Iterator[pw.Database]:
    database = build_database(url)
    database.connect()
    try:
        yield database
    finally:
        database.close()


@contextmanager
def extra_field(model: type[pw.Model], name: str, field: pw.Field) -> Iterator[None]:
    """Add a field to a model class for the duration of the block."""
    model._meta.add_field(name, field)
    try:
        yield
    finally:
        model._meta.remove_field(name)
        if name in vars(model):
            delattr(model, name)


# -- the schema --------------------------------------------------------------------------

PG_CATALOG = {
    "tables": "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    "columns": """
        SELECT table_name, ordinal_position, column_name, data_type, udt_name,
               character_maximum_length, is_nullable, column_default
        FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2""",
    "constraints": """
        SELECT c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid),
               k.confdeltype, k.confupdtype, k.condeferrable
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' ORDER BY 1, 2""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = 'public' ORDER BY 1, 2""",
    "triggers": """
        SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid)
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE NOT t.tgisinternal ORDER BY 1, 2""",
    "functions": """
        SELECT p.proname, pg_get_function_result(p.oid),
               regexp_replace(p.prosrc, '\\s+', ' ', 'g')
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' ORDER BY 1""",
}


def pg_catalog(url: str) -> dict[str, list[tuple]]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            result = {}
            for name, query in PG_CATALOG.items():
                cur.execute(query)
                result[name] = [row for row in cur.fetchall() if "migratehistory" not in row[0]]
            return result
    finally:
        conn.close()


def sqlite_schema(url: str) -> list[tuple]:
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
        return sorted(row for row in rows if row[2] != "migratehistory")
    finally:
        conn.close()


def test_schema_equals_create_all(migrated_url: str, tmp_path: Path) -> None:
    with scratch_database(tmp_path) as reference_url:
        with connected(reference_url) as database:
            create_all(database)
        if IS_PG:
            migrated, reference = pg_catalog(migrated_url), pg_catalog(reference_url)
            assert len(reference["tables"]) == len(ALL_MODELS)
            assert {t[1] for t in reference["triggers"]} == {
                "admin_audit_log_append_only", "admin_audit_log_no_truncate"}
            assert any(row[1] == "fk_user_active_tenant_id_refs_tenants"
                       for row in reference["constraints"])
            for part in PG_CATALOG:
                assert migrated[part] == reference[part], part
        else:
            reference = sqlite_schema(reference_url)
            assert len([row for row in reference if row[0] == "table"]) == len(ALL_MODELS)
            assert sqlite_schema(migrated_url) == reference


def test_check_is_clean_after_migrate(migrated_url: str) -> None:
    assert migrations.schema_drift(migrated_url) == []


def test_model_change_without_migration_is_detected(migrated_url: str) -> None:
    with extra_field(User, "nickname", pw.TextField(null=True)), \
            extra_field(Todo, "priority", pw.IntegerField(default=0, index=True)):
        problems = migrations.schema_drift(migrated_url)
    text = "\n".join(problems)
    assert "add_column(migrator, 'user', 'nickname', pw.TextField(null=True))" in text
    assert "user.nickname: column is missing from the database" in text
    assert "add_column(migrator, 'todos', 'priority', pw.IntegerField(index=True, default=0), fill=0)" in text
    assert "todos.priority" in text and "index todos_priority" in text
    assert "nickname" not in User._meta.fields and not hasattr(User, "nickname")
    assert migrations.schema_drift(migrated_url) == []


def _value(field: pw.Field, ids: dict[str, str]) -> object:
    """Return a valid value for a required column (CHECKs and FKs included)."""
    if isinstance(field, pw.ForeignKeyField):
        return ids[field.rel_model._meta.table_name]
    if field.primary_key:
        return ids[field.model._meta.table_name]
    if field.choices:
        first = field.choices[0]
        return first[0] if isinstance(first, tuple | list) else first
    if isinstance(field, pw.DateTimeField):
        return "2030-01-02 03:04:05+00:00"
    if isinstance(field, pw.DateField):
        return "2030-01-02"
    if isinstance(field, pw.IntegerField):
        return 1
    if isinstance(field, pw.BooleanField):
        return True
    if isinstance(field, pw.JSONField):
        return "[]"
    return "x"


def _server_default(field: pw.Field) -> bool:
    return any(isinstance(c, ServerDefault) for c in field.constraints or ())


def test_plain_insert_of_required_columns_fills_the_rest(migrated_url: str) -> None:
    """Every default the models declare also exists on the server (any writer can insert)."""
    models = pw.sort_models(ALL_MODELS)
    ids = {model._meta.table_name: f"id-{model._meta.table_name}" for model in models}
    with connected(migrated_url) as database, database.bind_ctx(models):
        for model in models:
            table = model._meta.table_name
            required = [f for f in model._meta.sorted_fields
                        if (f.primary_key and not _server_default(f))
                        or (not f.null and f.default is None)]
            no_default = {c.name for c in database.get_columns(table)
                          if not c.null and c.default is None}
            assert {f.column_name for f in required} == no_default, table
            columns = ", ".join(f'"{f.column_name}"' for f in required)
            marks = ", ".join(database.param for _ in required)
            database.execute_sql(f'INSERT INTO "{table}" ({columns}) VALUES ({marks})',
                                 [_value(f, ids) for f in required])
            row = model.select().get()
            for field in model._meta.sorted_fields:
                stored = getattr(row, field.column_name if isinstance(
                    field, pw.ForeignKeyField) else field.name)
                if field.default is not None and not callable(field.default):
                    assert stored == field.default, f"{table}.{field.column_name}"
                elif callable(field.default):
                    assert stored is not None, f"{table}.{field.column_name}"


@pg_only
def test_audit_log_trigger_rejects_update_and_delete(migrated_url: str) -> None:
    conn = psycopg2.connect(migrated_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO admin_users (id, email) VALUES ('a', 'a@example.com')")
            cur.execute("INSERT INTO admin_audit_log (id, admin_user_id, action, target_type) "
                        "VALUES ('l', 'a', 'ADMIN_LOGIN', 'system')")
            for statement in ("UPDATE admin_audit_log SET reason = 'r'",
                              "DELETE FROM admin_audit_log"):
                with pytest.raises(psycopg2.Error, match="append-only: (UPDATE|DELETE) is not"):
                    cur.execute(statement)
    finally:
        conn.close()


def test_migrate_rollback_migrate(empty_url: str) -> None:
    assert migrations.status(empty_url) == ([], ALL)
    assert migrations.migrate(empty_url) == ALL
    assert migrations.migrate(empty_url) == []
    assert migrations.rollback(empty_url, count=len(ALL)) == ALL[::-1]
    assert migrations.status(empty_url) == ([], ALL)
    with connected(empty_url) as database:
        assert database.get_tables() == ["migratehistory"]
        if IS_PG:
            cursor = database.execute_sql(
                "SELECT count(*) FROM pg_proc WHERE proname = 'admin_audit_log_append_only'")
            assert cursor.fetchone()[0] == 0
    with pytest.raises(migrations.MigrationError, match="only 0 applied"):
        migrations.rollback(empty_url)
    assert migrations.migrate(empty_url) == ALL
    assert migrations.schema_drift(empty_url) == []
    if IS_PG:  # no session state: the run works behind a transaction-mode pooler
        behind_pooler = empty_url + "?pooler=transaction"
        assert migrations.rollback(behind_pooler, count=len(ALL)) == ALL[::-1]
        assert migrations.migrate(behind_pooler) == ALL


def test_check_refuses_pending_migrations(empty_url: str) -> None:
    with pytest.raises(migrations.PendingMigrationsError, match=ALL[0]):
        migrations.schema_drift(empty_url)


def test_unknown_applied_migration_is_refused(migrated_url: str) -> None:
    with connected(migrated_url) as database:
        database.execute_sql(
            "INSERT INTO migratehistory (name, migrated_at) VALUES ('999_future', "
            f"{database.param})", ("2030-01-01 00:00:00",))
    for run in (migrations.migrate, migrations.rollback, migrations.schema_drift):
        with pytest.raises(migrations.MigrationError, match="does not ship: 999_future"):
            run(migrated_url)
    assert migrations.status(migrated_url) == ([*ALL, "999_future"], [])


def test_migrations_folder_comes_from_the_package(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    import datalayer.migrations as package

    monkeypatch.chdir(tmp_path)
    folder = migrations.migrations_dir()
    # Installed from a wheel: the shipped package; run from a checkout: its migrations/.
    assert folder in {Path(package.__file__).parent, REPO_ROOT / "migrations"}
    assert [p.stem for p in sorted(folder.glob("[0-9][0-9][0-9]_*.py"))] == ALL
    for name in ALL:  # migrations never read the models: they must run after those move on
        imports = [line for line in (folder / f"{name}.py").read_text().splitlines()
                   if line.startswith(("import ", "from "))]
        assert not [line for line in imports if "datalayer" in line
                    and "datalayer.migration_ops" not in line], name


def test_concurrent_migrate_applies_each_migration_once(empty_url: str) -> None:
    """Four processes at once: PostgreSQL queues them on an advisory lock, SQLite on
    BEGIN IMMEDIATE; either way one applies each migration, the others find nothing to do."""
    command = [sys.executable, "-m", "datalayer.cli", "migrate", "--database", empty_url]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(4)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in processes]
    assert [code for code, _, _ in results] == [0, 0, 0, 0], results
    for name in ALL:
        assert sum(f"Applied {name}" in out for _, out, _ in results) == 1
    with connected(empty_url) as database:
        rows = database.execute_sql(
            "SELECT name, count(*) FROM migratehistory GROUP BY name ORDER BY name").fetchall()
    assert rows == [(name, 1) for name in ALL]
    assert migrations.schema_drift(empty_url) == []


@pg_only
def test_concurrent_migrate_through_a_transaction_pooler(empty_url: str, pgbouncer) -> None:
    """Only the pooled URL at hand (PgBouncer, transaction mode, 3 server connections):
    four runs at once still apply each migration exactly once — the lock is
    transaction-level."""
    pooled = pgbouncer.url(urlparse(empty_url).path.lstrip("/"), pooler="transaction")
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_DIRECT_URL"}
    command = [sys.executable, "-m", "datalayer.cli", "migrate", "--database", pooled]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=env) for _ in range(4)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in processes]
    assert [code for code, _, _ in results] == [0, 0, 0, 0], results
    for name in ALL:
        assert sum(f"Applied {name}" in out for _, out, _ in results) == 1
    with connected(empty_url) as database:
        rows = database.execute_sql(
            "SELECT name, count(*) FROM migratehistory GROUP BY name ORDER BY name").fetchall()
    assert rows == [(name, 1) for name in ALL]


def test_pw_migrate_auto_finds_no_changes(migrated_url: str, tmp_path: Path) -> None:
    # A copy of the folder: should pw_migrate find changes, it writes a file there.
    folder = tmp_path / "migrations"
    shutil.copytree(migrations.migrations_dir(), folder,
                    ignore=shutil.ignore_patterns("__pycache__"))
    before = sorted(p.name for p in folder.iterdir())
    result = subprocess.run(
        [sys.executable, "-m", "peewee_migrate", "create", "--auto",
         "--auto-source", "datalayer.models", "--database", migrated_url,
         "--directory", str(folder), "x"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "No changes found" in result.stdout + result.stderr
    assert sorted(p.name for p in folder.iterdir()) == before
