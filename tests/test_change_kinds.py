"""Every change kind round-trips on a seeded database: generated, applied, checked clean,
generated again to nothing, rolled back and applied again, with every table's rows
counted and every untouched table's content checksummed at each step.

Each case edits a copy of the checkout's models (as test_day_two.py does) and runs the
whole cycle through ``tests/change_kinds_driver.py`` in one subprocess. The seeded
database is built once per module and copied per case (PostgreSQL: CREATE DATABASE ...
TEMPLATE; SQLite: a file copy). py311 envs only (DATALAYER_TEST_WORKFLOWS).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    IS_PG,
    copy_checkout,
    create_pg_database,
    db_name,
    drop_pg_database,
    pg_direct_url,
    squawk,
)

from datalayer.connection.database import build_database

REPO_ROOT = Path(__file__).resolve().parents[1]
DRIVER = Path(__file__).with_name("change_kinds_driver.py")
pytestmark = pytest.mark.skipif(
    os.environ.get("DATALAYER_TEST_WORKFLOWS", "1") == "0",
    reason="the change-kind matrix runs in the py311 envs (tox.ini: DATALAYER_TEST_WORKFLOWS)")
# the rollback undoes every file the change was written as (a second, online one too)
CYCLE = [["snapshot"], ["migrate"], ["snapshot"], ["check"], ["makemigrations", "again"],
         ["rollback", "--count", "{made}"], ["snapshot"], ["migrate"], ["snapshot"], ["check"]]


def _cli(url: str, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_DIRECT_URL",
                                                             "DATABASE_URL"}}
    env["PYTHONPATH"] = str(REPO_ROOT)
    result = subprocess.run([sys.executable, "-m", "datalayer.cli", *args, "--database", url],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated and seeded database per module, copied by each case."""
    if IS_PG:
        name = create_pg_database()
        url = pg_direct_url(name)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('seeded') / 'seeded.sqlite3'}"
    try:
        _cli(url, "migrate")
        _cli(url, "seed", "--tenants", "2", "--users-per-tenant", "3", "--todos-per-user", "3",
             "--notifications-per-user", "2", "--waitlist", "20", "--admins", "2")
        yield url
    finally:
        if IS_PG:
            drop_pg_database(name)


class Checkout:
    """A copy of the source tree whose models a case edits, with its own database."""

    def __init__(self, root: Path, url: str) -> None:
        self.root, self.url = root, url

    def edit(self, relative: str, old: str, new: str) -> None:
        path = self.root / relative
        text = path.read_text()
        assert text.count(old) == 1, f"{old!r} in {relative}"
        path.write_text(text.replace(old, new))

    def steps(self, *steps: list[str]) -> list[dict[str, Any]]:
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_DIRECT_URL",
                                                                 "DATABASE_URL"}}
        env["PYTHONPATH"] = str(self.root)
        result = subprocess.run([sys.executable, str(DRIVER), self.url, json.dumps(steps)],
                                cwd=self.root, env=env, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr
        return list(json.loads(result.stdout))

    def source(self, name: str) -> str:
        """The migration generated as ``name`` (with its ``_online`` part, if any)."""
        folder = self.root / "migrations"
        paths = sorted([*folder.glob(f"[0-9]*_{name}.py"),
                        *folder.glob(f"[0-9]*_{name}_online.py")])
        assert paths, name
        return "\n".join(p.read_text() for p in paths)

    def migrations(self) -> list[str]:
        return sorted(p.name for p in (self.root / "migrations").glob("[0-9]*.py"))

    def sql(self, statement: str) -> list[tuple[Any, ...]]:
        database = build_database(self.url)
        database.connect()
        try:
            with database.atomic():
                cursor = database.execute_sql(statement)
                return [tuple(r) for r in cursor.fetchall()] if cursor.description else []
        finally:
            database.close()


@pytest.fixture
def checkout(seeded: str, tmp_path: Path) -> Iterator[Checkout]:
    root = copy_checkout(tmp_path / "checkout")
    if IS_PG:
        name = create_pg_database(db_name(seeded))
        try:
            yield Checkout(root, pg_direct_url(name))
        finally:
            drop_pg_database(name)
    else:
        target = tmp_path / f"db_{uuid.uuid4().hex[:8]}.sqlite3"
        shutil.copy(seeded.removeprefix("sqlite:///"), target)
        yield Checkout(root, f"sqlite:///{target}")


def ok(result: dict[str, Any]) -> str:
    assert result["exit"] == 0, result
    return str(result["output"])


# Rules a rollback is exempt from: it undoes its migration once the code that needed it
# is gone, so dropping what the migration added (a column, a table, a NOT NULL, a
# constraint) breaks no client still running; `datalayer rollback` refuses to drop rows
# without --allow-data-loss. The project's rules (.squawk.toml) and the locking rules
# still apply.
ROLLBACK_SQUAWK_EXEMPT = {"ban-drop-column", "ban-drop-table", "ban-drop-not-null",
                          "ban-drop-constraint"}


def cycle(checkout: Checkout, name: str, touched: set[str], *args: str,
          restored: bool = True, renamed: dict[str, str] | None = None,
          squawk_exempt: Collection[str] = (), rollback_squawk_exempt: Collection[str] = ()
          ) -> str:
    """Generate ``name``, then migrate, check, generate again, roll back, migrate again;
    return the generated source. Rows are counted at every step; every table not in
    ``touched`` keeps its content; with ``restored`` the touched ones get theirs back
    on rollback. ``renamed`` (old -> new) maps the tables the migration renames.
    PostgreSQL: the DDL that migrate sent passes squawk under the project's rules
    (.squawk.toml) less ``squawk_exempt``; the DDL that rollback sent, less
    ``rollback_squawk_exempt`` and ROLLBACK_SQUAWK_EXEMPT."""
    results = checkout.steps(["makemigrations", name, *args], *CYCLE)
    made, before, applied, after, checked, again, back, rolled, reapplied, after2, checked2 \
        = results
    assert "Wrote" in ok(made), made
    ok(applied), ok(back), ok(reapplied)
    if IS_PG:  # (the second migrate sends what the first did)
        assert applied["ddl"] and back["ddl"], (applied, back)
        problems = [squawk(checkout.root / f"{name}.sql", applied["ddl"], exempt=squawk_exempt),
                    squawk(checkout.root / f"{name}_rollback.sql", back["ddl"],
                           exempt={*rollback_squawk_exempt, *ROLLBACK_SQUAWK_EXEMPT})]
        assert not any(problems), "\n".join(problems)
    assert "matches the models" in ok(checked) and "matches the models" in ok(checked2)
    assert "No changes" in ok(again), again
    for snap, names in ((after, renamed or {}), (rolled, {}), (after2, renamed or {})):
        counts = {names.get(t, t): n for t, n in before["counts"].items()}
        assert {t: snap["counts"].get(t) for t in counts} == counts
        assert not any(n for t, n in snap["counts"].items() if t not in counts)  # new: empty
        for table, digest in before["checksums"].items():
            if table not in touched:
                assert snap["checksums"][names.get(table, table)] == digest, table
    if restored:
        assert rolled["checksums"] == before["checksums"]
    return checkout.source(name)


def fails_cleanly(checkout: Checkout, name: str, *details: str,
                  args: tuple[str, ...] = ()) -> None:
    """Generate ``name``; migrating it fails naming the file and ``details``, with every
    row and the schema unchanged and the migration still pending."""
    made, before, applied, after, status = checkout.steps(
        ["makemigrations", name, *args], ["snapshot"], ["migrate"], ["snapshot"], ["status"])
    assert "Wrote" in ok(made)
    assert applied["exit"] == 1, applied
    message = applied["output"]
    assert re.search(rf"\d{{3}}_{name}(_online)?\.py failed", message), message
    # In the run's transaction: rolled back. Online (CREATE INDEX CONCURRENTLY, outside
    # it): the index it was building is dropped, nothing else had run.
    assert "rolled back, nothing changed" in message or "an index it was building is " \
        "dropped" in message, message
    assert "still pending" in message, message
    for detail in details:
        assert detail in message, message
    assert "Traceback" not in message
    assert after == before
    assert re.search(rf"\[ \] \d{{3}}_{name}\n", status["output"]), status  # still pending


def test_int_to_bigint(checkout: Checkout) -> None:
    checkout.edit("datalayer/models/features.py",
                  "    event_count = pw.IntegerField(default=0, constraints=[ZERO])",
                  "    event_count = pw.BigIntegerField(default=0, constraints=[ZERO])")
    # A rewrite, both ways: the table is below the rewrite threshold (evolve/rewrites.py),
    # so makemigrations writes the plain ALTER ... TYPE and says it blocks writers.
    rewrite = {"changing-column-type"}
    source = cycle(checkout, "event_count_bigint", {"user_activity_daily"},
                   squawk_exempt=rewrite, rollback_squawk_exempt=rewrite)
    assert "alter_column(migrator, 'user_activity_daily', 'event_count', pw.BigIntegerField(" \
        in source
    if IS_PG:
        assert checkout.sql("SELECT data_type FROM information_schema.columns WHERE "
                            "table_name = 'user_activity_daily' AND column_name = "
                            "'event_count'") == [("bigint",)]


def test_varchar_widened_keeps_its_unique_index(checkout: Checkout) -> None:
    checkout.edit("datalayer/models/features.py",
                  "    email = pw.CharField(max_length=255, unique=True)",
                  "    email = pw.CharField(max_length=500, unique=True)")
    # The model's column is varchar(n) (the spec's). Widening it is binary-compatible: a
    # catalog change under a brief lock, no rewrite; the rollback narrows it back, which
    # checks every row (waitlist is below the rewrite threshold).
    varchar = {"changing-column-type", "prefer-text-field"}
    source = cycle(checkout, "waitlist_email_500", {"waitlist"},
                   squawk_exempt=varchar, rollback_squawk_exempt=varchar)
    assert "max_length=500, unique=True" in source
    assert "drop_index" not in source and "add_index" not in source
    duplicate = checkout.sql("SELECT email FROM waitlist LIMIT 1")[0][0]
    with pytest.raises(Exception, match="(?i)unique"):
        checkout.sql(f"INSERT INTO waitlist (id, email) VALUES ('w-dup', '{duplicate}')")


def test_constant_python_default_fills_existing_rows(checkout: Checkout) -> None:
    checkout.edit("datalayer/models/auth.py", "    image = pw.TextField(null=True)\n",
                  "    image = pw.TextField(null=True)\n    karma = pw.IntegerField(default=0)\n")
    # The default that filled the existing rows is dropped: the model has no server
    # default, so the database then agrees with it (docs/online-schema-changes.md: give
    # the column a ServerDefault if code without it still inserts during the deploy).
    source = cycle(checkout, "add_karma", {"user"}, squawk_exempt={"ban-drop-default"})
    assert "add_column(migrator, 'user', 'karma', pw.IntegerField(default=0), fill=0)" in source
    assert set(checkout.sql('SELECT karma FROM "user"')) == {(0,)}


def test_callable_default_is_refused_unless_given_a_value(checkout: Checkout) -> None:
    checkout.edit("datalayer/models/features.py", "    title = pw.TextField()\n",
                  "    title = pw.TextField()\n    token = pw.TextField(default=new_id)\n")
    checkout.edit("datalayer/models/features.py", "    id_field,\n", "    id_field,\n    new_id,\n")
    before = checkout.migrations()
    refused, = checkout.steps(["makemigrations", "todo_token"])
    assert refused["exit"] == 1
    assert "todos.token is NOT NULL with a default computed when a row is saved (new_id)" \
        in refused["output"]
    assert "server default" in refused["output"] and "--fill todos.token=VALUE" \
        in refused["output"] and "nothing was written" in refused["output"]
    assert checkout.migrations() == before
    made, applied, checked, back, back_anyway = checkout.steps(
        ["makemigrations", "todo_token", "--fill", "todos.token=legacy"], ["migrate"],
        ["check"], ["rollback"], ["rollback", "--allow-data-loss"])
    assert "fill='legacy'" in checkout.source("todo_token")
    ok(made), ok(applied)
    assert "matches the models" in ok(checked)
    assert back["exit"] == 1 and "drops column todos.token" in back["output"]
    ok(back_anyway)


def test_not_null_with_a_default_fills_the_nulls(checkout: Checkout) -> None:
    checkout.sql('UPDATE "user" SET preferred_language = NULL WHERE id IN '
                 '(SELECT id FROM "user" ORDER BY id LIMIT 2)')
    checkout.edit("datalayer/models/auth.py",
                  '    preferred_language = pw.TextField(null=True, default="en", ',
                  '    preferred_language = pw.TextField(default="en", ')
    # set_not_null's helper CHECK is temporary: dropped once SET NOT NULL holds (and by
    # the rollback, if a half-done run left it)
    helper = {"ban-drop-constraint"}
    source = cycle(checkout, "language_required", {"user"}, restored=False,
                   squawk_exempt=helper, rollback_squawk_exempt=helper)
    # online: the NULLs filled by a batched backfill, then a validated check, SET NOT NULL
    assert "set_not_null(migrator, 'user', 'preferred_language', fill=ServerDefault(\"'en'\"))" \
        in source and "add_not_null" not in source
    assert "drop_not_null_online(migrator, 'user', 'preferred_language')" in source
    assert checkout.sql('SELECT count(*) FROM "user" WHERE preferred_language IS NULL') == [(0,)]


ASSIGNEE = ('    assignee = pw.ForeignKeyField(User, column_name="assignee_id", null=True, '
            'on_delete="SET NULL", backref="assigned_todos")\n')


def test_nullable_fk_column_added_then_dropped(checkout: Checkout) -> None:
    checkout.edit("datalayer/models/features.py", "    title = pw.TextField()\n",
                  "    title = pw.TextField()\n" + ASSIGNEE)
    source = cycle(checkout, "todo_assignee", {"todos"})
    assert re.search(r"add_column(_online)?\(migrator, 'todos', 'assignee', pw.ForeignKeyField\(",
                     source)
    assert re.search(r"drop_column(_online)?\(migrator, 'todos', 'assignee'\)", source)
    checkout.edit("datalayer/models/features.py", ASSIGNEE, "")
    # Dropping the field is the change asked for (code that reads it goes first). Its
    # rollback adds the column back online: the key NOT VALID, then validated, the index
    # built CONCURRENTLY.
    source = cycle(checkout, "drop_assignee", {"todos"}, squawk_exempt={"ban-drop-column"})
    assert "drop_column_online(migrator, 'todos', 'assignee')" in source
    assert re.search(r"add_column_online\(migrator, 'todos', 'assignee', pw.ForeignKeyField\(",
                     source)
    assert "add_index(migrator, 'todos', 'todos_assignee_id', ['assignee'], concurrently=True)" \
        in source


def test_fk_put_onto_an_existing_column(checkout: Checkout) -> None:
    checkout.edit("datalayer/models/admin.py",
                  "    impersonation_session_id = pw.TextField(null=True)\n",
                  '    impersonation_session = pw.DeferredForeignKey("AdminImpersonationSession", '
                  'column_name="impersonation_session_id", null=True, on_delete="SET NULL", '
                  # SQLite cannot add a deferred key later: inline (as User.active_tenant)
                  'constraints=[Dialect("", \'REFERENCES "admin_impersonation_sessions" ("id") '
                  'ON DELETE SET NULL\')])\n')
    checkout.edit("datalayer/models/admin.py", "    BaseModel,\n", "    BaseModel,\n    Dialect,\n")
    source = cycle(checkout, "audit_session_fk", set())
    assert "alter_column(migrator, 'admin_audit_log', 'impersonation_session', " \
        "pw.ForeignKeyField(" in source
    assert "add_column" not in source and "drop_column" not in source


def test_expression_and_partial_indexes_unique_or_not(checkout: Checkout) -> None:
    checkout.edit("datalayer/models/features.py", "\n\nclass Waitlist(BaseModel):",
                  '\nTodo.add_index(Todo.index(Todo.user, pw.fn.lower(Todo.title), '
                  'name="todos_user_title_idx"))\n\n\nclass Waitlist(BaseModel):')
    checkout.edit("datalayer/models/features.py", "\n\nclass UserActivityDaily(BaseModel):",
                  '\nWaitlist.add_index(Waitlist.index(pw.fn.lower(Waitlist.email), unique=True, '
                  'where=pw.SQL("email <> \'\'"), name="waitlist_email_lower_idx"))\n\n\n'
                  "class UserActivityDaily(BaseModel):")
    checkout.edit("datalayer/models/features.py", 'where=pw.SQL("tenant_id IS NULL")',
                  'where=pw.SQL("tenant_id IS NULL AND completed = false")')
    # The replaced index (a new WHERE) is dropped and built again, both CONCURRENTLY.
    source = cycle(checkout, "expression_indexes", set())
    assert "add_index(migrator, 'todos', 'todos_user_title_idx', ['user', 'lower(\"title\")']" \
        in source
    assert ("add_index(migrator, 'waitlist', 'waitlist_email_lower_idx', ['lower(\"email\")'], "
            "unique=True, where=\"email <> ''\"") in source
    # the WHERE alone changed: dropped and built again, both CONCURRENTLY
    assert "drop_index(migrator, 'todos', 'todos_user_personal_idx', concurrently=True)" \
        in source
    assert "drop_index(migrator, 'todos', 'todos_user_personal_idx')" not in source


def test_table_rename_keeps_rows_and_indexes(checkout: Checkout) -> None:
    checkout.edit("datalayer/models/features.py", '        table_name = "todos"\n',
                  '        table_name = "tasks"\n')
    refused, = checkout.steps(["makemigrations", "rename_todos"])
    assert refused["exit"] == 1 and "possible rename(s) todos:tasks" in refused["output"]
    # Renaming is the change asked for (--rename), with the table's indexes and
    # constraints named after it, as the models name them.
    renames = {"renaming-table", "renaming-object"}
    source = cycle(checkout, "rename_todos", set(), "--rename", "todos:tasks",
                   renamed={"todos": "tasks"}, squawk_exempt=renames,
                   rollback_squawk_exempt=renames)
    assert "rename_table(migrator, 'todos', 'tasks')" in source
    assert "rename_table(migrator, 'tasks', 'todos')" in source
    assert "remove_model" not in source and "create_model" not in source


LIFECYCLE = "LIFECYCLE_STAGES: tuple[LifecycleStage, ...] = get_args(LifecycleStage)"


def test_check_widened_applies(checkout: Checkout) -> None:
    checkout.edit("datalayer/models/auth.py", LIFECYCLE,
                  'LIFECYCLE_STAGES = (*get_args(LifecycleStage), "dormant")')
    # A replaced CHECK is dropped and added under its name in one transaction: no
    # client sees the table without it (online_plan.split keeps the pair together).
    replaced = {"ban-drop-constraint"}
    source = cycle(checkout, "lifecycle_dormant", set(), squawk_exempt=replaced,
                   rollback_squawk_exempt=replaced)
    assert re.search(r"add_check(_online)?\(migrator, 'user', 'user_lifecycle_stage_check'",
                     source)


def test_check_narrowed_fails_cleanly(checkout: Checkout) -> None:
    assert checkout.sql("SELECT count(*) FROM \"user\" WHERE lifecycle_stage = 'new'")[0][0]
    checkout.edit("datalayer/models/auth.py", LIFECYCLE,
                  'LIFECYCLE_STAGES = ("activated", "engaged", "at_risk", "churned")')
    # Generated the default way: a replaced CHECK is not split into the online file (its
    # drop would commit before the add failed), so the whole change fails and rolls back.
    fails_cleanly(checkout, "lifecycle_without_new", "user_lifecycle_stage_check")


def test_unique_on_duplicated_values_fails_cleanly(checkout: Checkout) -> None:
    checkout.sql("UPDATE todos SET title = 'same title' WHERE id IN "
                 "(SELECT id FROM todos ORDER BY id LIMIT 2)")
    checkout.edit("datalayer/models/features.py", "    title = pw.TextField()\n",
                  "    title = pw.TextField(unique=True)\n")
    detail = "Key (title)=(same title) is duplicated" if IS_PG else "todos.title"
    fails_cleanly(checkout, "unique_title", detail)


COMMENTS = '''

class TodoComment(BaseModel):
    id = id_field()
    todo = pw.ForeignKeyField(Todo, column_name="todo_id", on_delete="CASCADE",
                              backref="comments")
    author = pw.ForeignKeyField(User, column_name="author_id", on_delete="CASCADE",
                                backref="todo_comments")
    parent = pw.ForeignKeyField("self", column_name="parent_id", null=True,
                                on_delete="CASCADE", backref="replies")
    body = pw.TextField()
    created_at = created_at()

    class Meta:
        table_name = "todo_comments"


class TodoCommentVote(BaseModel):
    id = id_field()
    comment = pw.ForeignKeyField(TodoComment, column_name="comment_id", on_delete="CASCADE",
                                 backref="votes")
    voter = pw.ForeignKeyField(User, column_name="voter_id", on_delete="CASCADE",
                               backref="todo_comment_votes")

    class Meta:
        table_name = "todo_comment_votes"
'''


def test_new_table_with_cascading_fks_and_the_rollback_guard(checkout: Checkout) -> None:
    path = checkout.root / "datalayer" / "models" / "features.py"
    path.write_text(path.read_text() + COMMENTS)
    # The new tables' indexes are built while they are empty, in the same transaction.
    source = cycle(checkout, "todo_comments", set(),
                   squawk_exempt={"require-concurrent-index-creation"})
    # failure mode 16: a self-reference, and a key to a table created in the same migration
    assert source.index("class TodoComment(pw.Model):") < \
        source.index("class TodoCommentVote(pw.Model):")
    assert "parent = pw.ForeignKeyField('self'" in source and "on_delete='CASCADE'" in source
    todo, user = checkout.sql('SELECT id, user_id FROM todos ORDER BY id LIMIT 1')[0]
    checkout.sql("INSERT INTO todo_comments (id, todo_id, author_id, body) VALUES "
                 f"('c1', '{todo}', '{user}', 'a'), ('c2', '{todo}', '{user}', 'b')")
    before, refused, after, allowed = checkout.steps(
        ["snapshot"], ["rollback"], ["snapshot"], ["rollback", "--allow-data-loss"])
    assert refused["exit"] == 1
    assert "rolling back" in refused["output"] and \
        "drops table todo_comments (2 row(s))" in refused["output"]
    assert after == before
    ok(allowed)
    assert "todo_comments" not in checkout.steps(["snapshot"])[0]["counts"]


@pytest.mark.skipif(not IS_PG, reason="PostgreSQL casts; SQLite stores any value in any column")
def test_type_change_that_cannot_cast_fails_cleanly(checkout: Checkout) -> None:
    """Failure mode 3: text -> integer needs USING; a value that does not convert fails
    the migration, nothing changed."""
    checkout.edit("datalayer/models/auth.py", "    name = pw.TextField()\n",
                  "    name = pw.IntegerField()\n")
    fails_cleanly(checkout, "user_name_number", "invalid input syntax for type integer")


def _pw_migrate(checkout: Checkout, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_DIRECT_URL",
                                                             "DATABASE_URL"}}
    env["PYTHONPATH"] = str(checkout.root)
    return subprocess.run([sys.executable, "-m", "peewee_migrate", *args, "--directory",
                           "migrations", "--database", checkout.url], cwd=checkout.root,
                          env=env, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)


def test_pw_migrate_create_auto_writes_what_makemigrations_writes(checkout: Checkout) -> None:
    """peewee_migrate's own generator dropped server defaults and renamed indexes; through
    migrations/conf.py it writes datalayer's file, after which check is clean."""
    checkout.edit("datalayer/models/auth.py", "    image = pw.TextField(null=True)\n",
                  "    image = pw.TextField(null=True)\n"
                  "    karma = pw.IntegerField(default=0, constraints=[int_default(0)])\n")
    checkout.edit("datalayer/models/features.py", "\n\nclass Waitlist(BaseModel):",
                  '\nTodo.add_index(Todo.index(Todo.user, Todo.due_date, where=pw.SQL('
                  '"completed = false"), name="todos_user_due_idx"))\n\n\n'
                  "class Waitlist(BaseModel):")
    made, = checkout.steps(["makemigrations", "karma"])
    ok(made)
    folder = checkout.root / "migrations"
    expected = {p.name: p.read_text() for p in folder.glob("[0-9]*_karma*.py")}
    assert expected and "ServerDefault('0')" in "".join(expected.values())
    for name in expected:
        (folder / name).unlink()
    for source in ([], ["--auto-source", "datalayer.models"]):
        created = _pw_migrate(checkout, "create", "--auto", *source, "karma")
        assert created.returncode == 0, created.stdout + created.stderr
        written = {p.name: p.read_text() for p in folder.glob("[0-9]*_karma*.py")}
        assert written == expected
        if not source:
            for name in written:
                (folder / name).unlink()
    applied = _pw_migrate(checkout, "migrate")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    checked, again = checkout.steps(["check"], ["makemigrations", "again"])
    assert "matches the models" in ok(checked)
    assert "No changes" in ok(again)
