"""Day two: a maintainer changes the models, generates a migration, applies it, rolls it
back, and no row is lost on the way.

Each test works in a copy of the checkout (``datalayer/``, ``migrations/``,
``setup.cfg``) in a temporary folder, edits the copy's models the way a maintainer
would, and drives the real ``datalayer`` command in a subprocess with that copy first on
``PYTHONPATH``, against a seeded database of its own (the backend comes from
DATALAYER_TEST_BACKEND). Row counts are taken with plain SQL before and after.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import IS_PG, copy_checkout, scratch_database

from datalayer.connection.database import build_database

REPO_ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    os.environ.get("DATALAYER_TEST_WORKFLOWS", "1") == "0",
    reason="the day-two workflow runs in the py311 envs (tox.ini: DATALAYER_TEST_WORKFLOWS)")
pg_only = pytest.mark.skipif(not IS_PG, reason="PostgreSQL only (DATALAYER_TEST_BACKEND)")
# The tables that reference user, directly or not: a cascading DROP empties them.
WATCHED = ("user", "todos", "session", "tenant_members", "notifications", "account")


class Checkout:
    """A copy of the source tree whose models a test edits."""

    def __init__(self, root: Path, url: str) -> None:
        self.root, self.url = root, url

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items()
               if k not in {"DATABASE_DIRECT_URL", "DATABASE_URL"}}
        env.update(PYTHONPATH=str(self.root), DATABASE_URL=self.url)
        result = subprocess.run([sys.executable, "-m", "datalayer.cli", *args],
                                cwd=self.root, env=env, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=300)
        if ok:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    def edit(self, relative: str, old: str, new: str) -> None:
        path = self.root / relative
        text = path.read_text()
        assert text.count(old) == 1, f"{old!r} in {relative}"
        path.write_text(text.replace(old, new))

    def migrations(self) -> list[str]:
        return sorted(p.name for p in (self.root / "migrations").glob("[0-9]*.py"))

    def counts(self) -> dict[str, int]:
        database = build_database(self.url)
        database.connect()
        try:
            return {t: database.execute_sql(f'SELECT count(*) FROM "{t}"').fetchone()[0]
                    for t in database.get_tables() if t != "migratehistory"}
        finally:
            database.close()

    def execute(self, sql: str) -> None:
        database = build_database(self.url)
        database.connect()
        try:
            with database.atomic():
                database.execute_sql(sql)
        finally:
            database.close()

    def values(self, sql: str) -> list[tuple]:
        database = build_database(self.url)
        database.connect()
        try:
            return [tuple(row) for row in database.execute_sql(sql).fetchall()]
        finally:
            database.close()


@pytest.fixture
def checkout(tmp_path: Path) -> Iterator[Checkout]:
    root = copy_checkout(tmp_path / "checkout")
    with scratch_database(tmp_path) as url:
        project = Checkout(root, url)
        project.run("migrate")
        project.run("seed", "--tenants", "3", "--users-per-tenant", "3",
                    "--todos-per-user", "4", "--notifications-per-user", "2")
        yield project


def test_not_null_column_with_default_on_user_keeps_every_row(checkout: Checkout) -> None:
    """SQLite rebuilt ``user`` with foreign keys on: the DROP emptied todos, sessions,
    members and notifications. Now the rebuild runs with them off."""
    before = checkout.counts()
    assert all(before[t] > 0 for t in ("user", "todos", "tenant_members", "notifications"))
    checkout.edit("datalayer/models/auth.py", "    image = pw.TextField(null=True)\n",
                  "    image = pw.TextField(null=True)\n"
                  "    karma = pw.IntegerField(default=0, constraints=[int_default(0)])\n")
    out = checkout.run("makemigrations", "add_karma").stdout
    path = checkout.root / "migrations" / re.search(r"(\d{3}_add_karma\.py)", out).group(1)
    assert ("add_column(migrator, 'user', 'karma', "
            "pw.IntegerField(default=0, constraints=[ServerDefault('0')]))") in path.read_text()
    checkout.run("migrate")
    assert checkout.counts() == before
    assert set(checkout.values('SELECT karma FROM "user"')) == {(0,)}
    assert "matches the models" in checkout.run("check").stdout
    assert "No changes" in checkout.run("makemigrations", "again").stdout
    checkout.run("rollback")
    assert checkout.counts() == before
    checkout.run("migrate")
    assert checkout.counts() == before


def test_named_partial_index_on_todos_round_trips(checkout: Checkout) -> None:
    before = checkout.counts()
    checkout.edit("datalayer/models/features.py", "    due_date = TimestampTZField(null=True)\n",
                  "    due_date = TimestampTZField(null=True)\n"
                  "    priority = pw.IntegerField(default=0, constraints=[ZERO])\n")
    checkout.edit("datalayer/models/features.py", "class Waitlist(BaseModel):",
                  'Todo.add_index(Todo.index(Todo.user, Todo.priority, where=pw.SQL('
                  '"completed = false"), name="todos_user_priority_idx"))\n\n\n'
                  "class Waitlist(BaseModel):")
    checkout.run("makemigrations", "todo_priority")
    # the column in NNN_todo_priority.py; the index on the existing table, built
    # CONCURRENTLY, in NNN_todo_priority_online.py (docs/online-schema-changes.md)
    source = (checkout.root / "migrations").glob("*_todo_priority_online.py").__next__(
        ).read_text()
    assert ("add_index(migrator, 'todos', 'todos_user_priority_idx', ['user', 'priority'], "
            "where='completed = false', concurrently=True)") in source
    assert ("drop_index(migrator, 'todos', 'todos_user_priority_idx', concurrently=True)"
            in source)
    checkout.run("migrate")
    assert "matches the models" in checkout.run("check").stdout
    assert "No changes" in checkout.run("makemigrations", "again").stdout
    assert checkout.counts() == before
    if IS_PG:
        definition = checkout.values("SELECT indexdef FROM pg_indexes "
                                     "WHERE indexname = 'todos_user_priority_idx'")
        assert definition and "WHERE (completed = false)" in definition[0][0]
    checkout.run("rollback")
    assert checkout.counts() == before
    assert not checkout.values("SELECT 1 FROM " + (
        "pg_indexes WHERE indexname" if IS_PG else "sqlite_master WHERE name") +
        " = 'todos_user_priority_idx'")


def test_rename_keeps_the_values_and_needs_an_answer(checkout: Checkout) -> None:
    checkout.execute("INSERT INTO admin_users (id, email, avatar_url) VALUES "
                     "('a1', 'a1@x.test', 'https://x.test/a1.png'), "
                     "('a2', 'a2@x.test', 'https://x.test/a2.png')")
    expected = checkout.values("SELECT id, avatar_url FROM admin_users ORDER BY id")
    checkout.edit("datalayer/models/admin.py", "    avatar_url = pw.TextField(null=True)\n",
                  "    picture_url = pw.TextField(null=True)\n")
    schemas = checkout.root / "datalayer" / "schemas" / "admin.py"
    schemas.write_text(schemas.read_text().replace("avatar_url", "picture_url"))
    before_files = checkout.migrations()
    refused = checkout.run("makemigrations", "rename_avatar", ok=False)
    assert refused.returncode == 1
    assert "possible rename(s) admin_users.avatar_url:picture_url" in refused.stderr
    assert "--rename" in refused.stderr and "nothing was written" in refused.stderr
    assert checkout.migrations() == before_files
    checkout.run("makemigrations", "rename_avatar", "--rename",
                 "admin_users.avatar_url:picture_url")
    new = sorted(set(checkout.migrations()) - set(before_files))
    source = (checkout.root / "migrations" / new[0]).read_text()
    assert "migrator.rename_field('admin_users', 'avatar_url', 'picture_url')" in source
    assert "remove_fields" not in source and "add_fields" not in source
    checkout.run("migrate")
    assert checkout.values("SELECT id, picture_url FROM admin_users ORDER BY id") == expected
    assert "matches the models" in checkout.run("check").stdout
    checkout.run("rollback")
    assert checkout.values("SELECT id, avatar_url FROM admin_users ORDER BY id") == expected


def test_dropping_a_column_with_data_needs_a_yes(checkout: Checkout) -> None:
    checkout.execute("INSERT INTO admin_users (id, email, avatar_url) VALUES "
                     "('a1', 'a1@x.test', 'https://x.test/a1.png'), "
                     "('a2', 'a2@x.test', 'https://x.test/a2.png'), ('a3', 'a3@x.test', NULL)")
    before = checkout.counts()
    checkout.edit("datalayer/models/admin.py", "    avatar_url = pw.TextField(null=True)\n", "")
    schemas = checkout.root / "datalayer" / "schemas" / "admin.py"
    text = schemas.read_text().replace(', "avatar_url"', "")
    schemas.write_text("".join(line for line in text.splitlines(keepends=True)
                               if "avatar_url" not in line))
    checkout.run("makemigrations", "drop_avatar")
    source = next((checkout.root / "migrations").glob("*_drop_avatar.py")).read_text()
    assert "column admin_users.avatar_url (its values)" in source  # the review note
    refused = checkout.run("migrate", ok=False)
    assert refused.returncode == 1
    assert "drops column admin_users.avatar_url (2 non-null value(s))" in refused.stderr
    assert "--allow-data-loss" in refused.stderr
    assert checkout.values("SELECT count(avatar_url) FROM admin_users") == [(2,)]
    pending = checkout.run("status", ok=False)  # exits 1 while pending
    assert pending.returncode == 1 and "1 pending" in pending.stdout
    checkout.run("migrate", "--allow-data-loss")
    assert checkout.counts() == before
    assert "matches the models" in checkout.run("check").stdout
    checkout.run("rollback")  # the column comes back, empty: its values were given up
    assert checkout.counts() == before
    assert checkout.values("SELECT count(avatar_url) FROM admin_users") == [(0,)]


def test_generated_migrations_pass_ruff_and_never_import_the_models(checkout: Checkout) -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.fail("ruff is not installed in the test environment (the test extra has it)")
    checkout.edit("datalayer/models/features.py", "    due_date = TimestampTZField(null=True)\n",
                  "    due_date = TimestampTZField(null=True)\n"
                  "    done_at = TimestampTZField(null=True)\n")
    checkout.run("makemigrations", "done_at")
    path = next((checkout.root / "migrations").glob("*_done_at.py"))
    assert "add_column(migrator, 'todos', 'done_at', TimestampTZField(null=True))" \
        in path.read_text()
    assert "datalayer.models" not in path.read_text()
    shutil.copy(REPO_ROOT / "pyproject.toml", checkout.root / "pyproject.toml")
    result = subprocess.run([ruff, "check", str(path)], cwd=checkout.root,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    checkout.run("migrate")
    assert "matches the models" in checkout.run("check").stdout
    if IS_PG:
        assert checkout.values(
            "SELECT data_type FROM information_schema.columns WHERE table_name = 'todos' "
            "AND column_name = 'done_at'") == [("timestamp with time zone",)]


def test_makemigrations_refuses_a_not_null_column_without_a_default(checkout: Checkout) -> None:
    before = checkout.migrations()
    checkout.edit("datalayer/models/features.py", "    due_date = TimestampTZField(null=True)\n",
                  "    due_date = TimestampTZField(null=True)\n    rank = pw.IntegerField()\n")
    refused = checkout.run("makemigrations", "rank", ok=False)
    assert refused.returncode == 1
    assert "todos.rank is NOT NULL with no default: existing rows need one value" \
        in refused.stderr
    assert "--fill todos.rank=VALUE" in refused.stderr
    assert checkout.migrations() == before


def test_pw_migrate_rollback_of_an_index_on_todos(checkout: Checkout) -> None:
    """peewee_migrate's own generator and runner on the same folder: its rollback used to
    crash on the tables that carry a named index (TypeError: cannot unpack non-iterable
    ModelIndex object); migrations/conf.py installs the fix."""
    before = checkout.counts()
    checkout.edit("datalayer/models/features.py",
                  "    completed = pw.BooleanField(default=False, constraints=[FALSE])\n",
                  "    completed = pw.BooleanField(default=False, constraints=[FALSE], "
                  "index=True)\n")
    env = {**os.environ, "PYTHONPATH": str(checkout.root)}
    pw_migrate = [sys.executable, "-m", "peewee_migrate"]
    common = ["--database", checkout.url, "--directory", str(checkout.root / "migrations")]
    for args in (["create", "--auto", "--auto-source", "datalayer.models", "index"],
                 ["migrate"], ["rollback"]):
        result = subprocess.run([*pw_migrate, args[0], *common, *args[1:]],
                                cwd=checkout.root, env=env, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Traceback" not in result.stderr, result.stderr
    source = next((checkout.root / "migrations").glob("*_index.py")).read_text()
    # conf.py routes create --auto to makemigrations: datalayer's index steps
    assert "drop_index(migrator, 'todos', 'todos_completed'" in source
    assert checkout.counts() == before
    checkout.run("migrate")
    checkout.run("rollback")  # and the datalayer command rolls the same file back
    assert checkout.counts() == before


HAND_WRITTEN_KARMA = '''"""Add user.karma, written the way peewee_migrate's docs show it."""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.add_fields("user", karma=pw.IntegerField(default=0))


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_fields("user", "karma")
'''

ORPHANING = '''"""Delete the users under their todos: leaves rows pointing nowhere."""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.sql('DELETE FROM "user"')


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    pass
'''


def _add_migration(checkout: Checkout, name: str, source: str) -> None:
    number = len(checkout.migrations()) + 1
    (checkout.root / "migrations" / f"{number:03d}_{name}.py").write_text(source)


def test_a_table_rebuild_keeps_the_rows_that_reference_it(checkout: Checkout) -> None:
    """peewee rebuilds a SQLite table to add NOT NULL (create, copy, DROP, rename); with
    foreign keys on, the DROP cascaded: todos 5 -> 0. The run now keeps them off."""
    before = checkout.counts()
    _add_migration(checkout, "karma", HAND_WRITTEN_KARMA)
    checkout.run("migrate")
    assert checkout.counts() == before
    assert set(checkout.values('SELECT karma FROM "user"')) == {(0,)}
    checkout.run("rollback")
    assert checkout.counts() == before


@pytest.mark.skipif(IS_PG, reason="SQLite: PostgreSQL keeps its foreign keys on during a "
                    "migration (the DELETE cascades, as the schema says)")
def test_a_migration_that_orphans_rows_is_rolled_back(checkout: Checkout) -> None:
    """Foreign keys are off while SQLite migrates; the check before COMMIT catches a
    migration that leaves rows pointing nowhere, and the whole run is rolled back."""
    before = checkout.counts()
    _add_migration(checkout, "orphans", ORPHANING)
    result = checkout.run("migrate", ok=False)
    assert result.returncode == 1
    assert "foreign key points nowhere" in result.stderr
    assert "rolled back, nothing changed" in result.stderr
    assert checkout.counts() == before
    pending = checkout.run("status", ok=False)  # exits 1 while pending
    assert pending.returncode == 1 and "1 pending" in pending.stdout


CONCURRENT_INDEX = '''"""An index built without blocking writes."""

import peewee as pw
from peewee_migrate import Migrator

from datalayer.migration_ops import add_index, drop_index


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    add_index(migrator, "todos", "todos_title_idx", ["title"], concurrently=True)


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    drop_index(migrator, "todos", "todos_title_idx", concurrently=True)
'''

ADD_COLUMN_TO_TODOS = '''"""Needs todos' ACCESS EXCLUSIVE lock."""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.add_fields("todos", label=pw.TextField(null=True))


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_fields("todos", "label")
'''


@pg_only
def test_an_index_built_concurrently_outside_the_transaction(checkout: Checkout) -> None:
    before = checkout.counts()
    _add_migration(checkout, "title_index", CONCURRENT_INDEX)
    checkout.run("migrate")
    assert checkout.values("SELECT i.indisvalid FROM pg_index i JOIN pg_class c "
                           "ON c.oid = i.indexrelid WHERE c.relname = 'todos_title_idx'") == [
        (True,)]
    assert "0 pending" in checkout.run("status").stdout
    checkout.run("rollback")
    assert checkout.values("SELECT 1 FROM pg_class WHERE relname = 'todos_title_idx'") == []
    assert checkout.counts() == before


@pg_only
def test_a_held_lock_times_out_and_the_run_is_retried(checkout: Checkout) -> None:
    import threading

    import psycopg2

    _add_migration(checkout, "todo_label", ADD_COLUMN_TO_TODOS)
    blocker = psycopg2.connect(checkout.url)
    with blocker.cursor() as cursor:  # a long transaction reading todos
        cursor.execute("SELECT count(*) FROM todos")
    refused = checkout.run("migrate", "--lock-timeout", "0.2", ok=False)
    assert refused.returncode == 1
    assert "gave up after 5 lock timeouts" in refused.stderr
    pending = checkout.run("status", ok=False)  # exits 1 while pending
    assert pending.returncode == 1 and "1 pending" in pending.stdout
    # Released while the run backs off: a later attempt takes the lock and applies it.
    threading.Timer(1.0, blocker.rollback).start()
    applied = checkout.run("migrate", "--lock-timeout", "0.2")
    assert "Applied" in applied.stdout and "todo_label" in applied.stdout
    blocker.close()
    assert "0 pending" in checkout.run("status").stdout


TODO_TRIGGER = '''
REFUSE_FORBIDDEN = Trigger(
    "todos_refuse_forbidden",
    postgres=(
        """CREATE OR REPLACE FUNCTION todos_refuse_forbidden() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.title = 'forbidden' THEN
                RAISE EXCEPTION 'forbidden title';
            END IF;
            RETURN NEW;
        END;
        $$""",
        """CREATE TRIGGER todos_refuse_forbidden BEFORE INSERT ON todos
        FOR EACH ROW EXECUTE FUNCTION todos_refuse_forbidden()""",
    ),
    sqlite=(
        """CREATE TRIGGER todos_refuse_forbidden BEFORE INSERT ON todos
        WHEN NEW.title = 'forbidden'
        BEGIN SELECT RAISE(ABORT, 'forbidden title'); END""",
    ),
    drop_postgres=("DROP TRIGGER IF EXISTS todos_refuse_forbidden ON todos",
                   "DROP FUNCTION IF EXISTS todos_refuse_forbidden()"),
    drop_sqlite=("DROP TRIGGER IF EXISTS todos_refuse_forbidden",),
)


class Todo(BaseModel):'''


def test_a_trigger_the_model_declares_is_generated_and_rolled_back(checkout: Checkout) -> None:
    before = checkout.counts()
    user = checkout.values('SELECT id FROM "user" LIMIT 1')[0][0]
    forbidden = f"INSERT INTO todos (id, user_id, title) VALUES ('t-x', '{user}', 'forbidden')"
    checkout.edit("datalayer/models/features.py", "\n\nclass Todo(BaseModel):", TODO_TRIGGER)
    checkout.edit("datalayer/models/features.py", "from datalayer.models.auth import User\n",
                  "from datalayer.migration_ops import Trigger\n"
                  "from datalayer.models.auth import User\n")
    checkout.edit("datalayer/models/features.py", '        table_name = "todos"\n',
                  '        table_name = "todos"\n        triggers = [REFUSE_FORBIDDEN]\n')
    checkout.run("makemigrations", "todo_trigger")
    source = next((checkout.root / "migrations").glob("*_todo_trigger.py")).read_text()
    assert "add_trigger(migrator, 'todos', Trigger('todos_refuse_forbidden'" in source
    assert "drop_trigger(migrator, 'todos', Trigger('todos_refuse_forbidden'" in source
    checkout.run("migrate")
    with pytest.raises(Exception, match="forbidden title"):
        checkout.execute(forbidden)
    assert "matches the models" in checkout.run("check").stdout
    assert "No changes" in checkout.run("makemigrations", "again").stdout
    assert checkout.counts() == before
    checkout.run("rollback")
    checkout.execute(forbidden)  # the trigger is gone
    checkout.execute("DELETE FROM todos WHERE id = 't-x'")
    assert checkout.counts() == before


@pg_only
def test_four_migrates_at_once_build_a_concurrent_index_once(checkout: Checkout) -> None:
    """The CONCURRENTLY step runs outside the run's transaction, under a session lock:
    the other runs wait, then find it recorded."""
    _add_migration(checkout, "title_index", CONCURRENT_INDEX)
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_DIRECT_URL"}}
    env.update(PYTHONPATH=str(checkout.root), DATABASE_URL=checkout.url)
    runs = [subprocess.Popen([sys.executable, "-m", "datalayer.cli", "migrate"],
                             cwd=checkout.root, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in runs]
    assert [code for code, _, _ in results] == [0, 0, 0, 0], results
    assert sum("_title_index" in out for _, out, _ in results) == 1, results
    names = [name for (name,) in checkout.values("SELECT name FROM migratehistory")]
    assert sum(name.endswith("_title_index") for name in names) == 1
    assert checkout.values("SELECT i.indisvalid FROM pg_index i JOIN pg_class c "
                           "ON c.oid = i.indexrelid WHERE c.relname = 'todos_title_idx'") == [
        (True,)]
