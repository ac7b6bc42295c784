"""Online schema changes: migrations that change a table while writers keep writing.

Each test copies the shipped migrations into a folder of its own, points ``migrate``
there, adds migrations written with ``datalayer.migration_ops.online`` and runs them on a
database of its own holding a few hundred todos (the code paths of a big table, on a
small one: the benchmark, benchmarks/migrations.py, runs them on a million rows).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import peewee as pw
import pytest
from helpers import IS_PG, copy_checkout, scratch_database, squawk
from online_helpers import Project, Writers, connected, hold_todos, make_project, populate

from datalayer.evolve import migrate as migrations

REPO_MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"

pg_only = pytest.mark.skipif(not IS_PG, reason="PostgreSQL: online DDL")
# The tests with writer processes or a checkout driven in subprocesses take seconds each
# and do not depend on the Python version: the py311 envs run them (tox.ini:
# DATALAYER_TEST_WORKFLOWS).
workflow = pytest.mark.skipif(
    os.environ.get("DATALAYER_TEST_WORKFLOWS", "1") == "0",
    reason="runs in the py311 envs (tox.ini: DATALAYER_TEST_WORKFLOWS)")
ROWS = 300


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    with scratch_database(tmp_path) as url:
        made = make_project(url, tmp_path)
        monkeypatch.setattr(migrations, "migrations_dir", lambda: made.folder)
        migrations.migrate(url)
        populate(url, ROWS)
        yield made


def counts(project: Project) -> dict[str, int]:
    with connected(project.url) as database:
        return {t: database.execute_sql(f'SELECT count(*) FROM "{t}"').fetchone()[0]
                for t in database.get_tables() if t != "migratehistory"}


def index_state(project: Project, name: str) -> list[tuple[bool]]:
    return project.values("SELECT i.indisvalid FROM pg_index i JOIN pg_class c "
                          "ON c.oid = i.indexrelid WHERE c.relname = %s", (name,))


ADD_COLUMNS = '''
add_column(migrator, "todos", "priority", pw.IntegerField(default=0), fill="0")
add_column(migrator, "todos", "label", pw.TextField(null=True), fill="'none'")
add_column(migrator, "todos", "reviewer", pw.ForeignKeyField(
    migrator.orm["user"], column_name="reviewer_id", null=True, index=False),
    on_delete="SET NULL")
'''
DROP_COLUMNS = '''
drop_column(migrator, "todos", "reviewer")
drop_column(migrator, "todos", "label")
drop_column(migrator, "todos", "priority")
'''
CONSTRAIN = '''
add_index(migrator, "todos", "todos_priority_idx", ["priority"], concurrently=True)
add_check_online(migrator, "todos", "todos_priority_check", "priority >= 0")
set_not_null(migrator, "todos", "label")
backfill(migrator, "todos", "priority = length(title)", where="priority = 0", batch_size=40)
'''
UNCONSTRAIN = '''
drop_not_null(migrator, "todos", "label")
drop_constraint(migrator, "todos", "todos_priority_check")
drop_index(migrator, "todos", "todos_priority_idx", concurrently=True)
'''


def test_online_operations_apply_roll_back_and_apply_again(
        project: Project, caplog: pytest.LogCaptureFixture) -> None:
    before = counts(project)
    names = [project.add("add_columns", ADD_COLUMNS, DROP_COLUMNS),
             project.add("constrain", CONSTRAIN, UNCONSTRAIN)]
    for _ in range(2):
        with caplog.at_level(logging.INFO, logger="datalayer.migrate"):
            assert migrations.migrate(project.url) == names
        assert counts(project) == before
        assert project.values("SELECT count(*) FROM todos WHERE priority = length(title) "
                              "AND label = 'none' AND reviewer_id IS NULL") == [(ROWS,)]
        assert "backfill todos: done" in caplog.text  # a log line: no terminal here
        if IS_PG:
            assert index_state(project, "todos_priority_idx") == [(True,)]
            assert project.values(
                "SELECT conname, convalidated FROM pg_constraint WHERE conname IN "
                "('todos_priority_check', 'todos_reviewer_id_fkey') ORDER BY 1") == [
                ("todos_priority_check", True), ("todos_reviewer_id_fkey", True)]
            assert project.values("SELECT is_nullable, column_default FROM "
                                  "information_schema.columns WHERE table_name = 'todos' "
                                  "AND column_name = 'label'") == [("NO", None)]
        with pytest.raises(migrations.DataLossError, match="todos.priority"):
            migrations.rollback(project.url, count=2)  # the guard sees online drops too
        assert migrations.rollback(project.url, count=2, allow_data_loss=True) == names[::-1]
        assert counts(project) == before
        assert "priority" not in {c.name for c in _columns(project)}


def _columns(project: Project) -> list[object]:
    with connected(project.url) as database:
        return list(database.get_columns("todos"))


@pg_only
def test_a_failed_concurrent_index_leaves_no_invalid_index(project: Project) -> None:
    """The unique build fails on duplicated titles; the INVALID index it leaves is
    dropped and the migration is pending. A leftover from a killed run is dropped too."""
    project.values("UPDATE todos SET title = 'same' WHERE id IN ('t-00000001', 't-00000002') "
                   "RETURNING id")
    name = project.add("unique_title", 'add_index(migrator, "todos", "todos_title_key", '
                       '["title"], unique=True, concurrently=True)',
                       'drop_index(migrator, "todos", "todos_title_key", concurrently=True)')
    with pytest.raises(migrations.MigrationError, match="todos_title_key"):
        migrations.migrate(project.url)
    assert index_state(project, "todos_title_key") == []
    assert project.pending() == [name]
    # A run killed mid-build leaves an INVALID index of that name: IF NOT EXISTS alone
    # would then skip the build and record the migration over a useless index.
    with connected(project.url) as database, pytest.raises(Exception, match="duplicate"):
        database.execute_sql('CREATE UNIQUE INDEX CONCURRENTLY "todos_title_key" '
                             "ON todos (title)")
    assert index_state(project, "todos_title_key") == [(False,)]
    project.values("UPDATE todos SET title = 'other' WHERE id = 't-00000002' RETURNING id")
    assert migrations.migrate(project.url) == [name]
    assert index_state(project, "todos_title_key") == [(True,)]


@pg_only
def test_a_failed_validation_leaves_no_constraint(project: Project) -> None:
    before = counts(project)
    name = project.add("title_check", 'add_check_online(migrator, "todos", '
                       '"todos_short_title", "length(title) < 7")',
                       'drop_constraint(migrator, "todos", "todos_short_title")')
    with pytest.raises(migrations.MigrationError, match="todos_short_title"):
        migrations.migrate(project.url)
    assert project.values("SELECT 1 FROM pg_constraint WHERE conname = 'todos_short_title'"
                          ) == []
    assert project.pending() == [name]
    assert counts(project) == before


@pg_only
def test_a_backfill_commits_each_batch_and_resumes(project: Project) -> None:
    """A row in the fourth batch makes the UPDATE fail: the three batches before it are
    committed, the migration is pending, and once the row is fixed the run resumes."""
    name = project.add("fill", ADD_COLUMNS.splitlines()[1] + "\n" + (
        'backfill(migrator, "todos", "priority = 100 / (length(title) - 4)", '
        'where="priority = 0", batch_size=50)'), 'drop_column(migrator, "todos", "priority")')
    # ids sort as t-00000000 …; the row t-00000175 is in the fourth batch; a title of length 4 divides by 0
    project.values("UPDATE todos SET title = 'four' WHERE id = 't-00000175' RETURNING id")
    with pytest.raises(migrations.MigrationError, match="division by zero"):
        migrations.migrate(project.url)
    assert project.values("SELECT count(*) FROM todos WHERE priority <> 0") == [(150,)]
    assert project.pending() == [name]
    project.values("UPDATE todos SET title = 'fixed title' WHERE id = 't-00000175' "
                   "RETURNING id")
    assert migrations.migrate(project.url) == [name]
    assert project.values("SELECT count(*) FROM todos WHERE priority = 0") == [(0,)]


def test_set_not_null_fills_the_nulls_in_batches_first(
        project: Project, caplog: pytest.LogCaptureFixture) -> None:
    """NOT NULL on a column holding NULLs, with a fill: the NULLs are filled (batched
    on PostgreSQL), the rest keep their values, and the column is NOT NULL; rolled back,
    it takes NULL again."""
    before = counts(project)
    project.add("label", 'add_column(migrator, "todos", "label", pw.TextField(null=True))',
                'drop_column(migrator, "todos", "label")')
    migrations.migrate(project.url)
    project.values("UPDATE todos SET label = id WHERE id > 't-00000199' RETURNING id")
    name = project.add("label_required", 'set_not_null(migrator, "todos", "label", '
                       'fill="unlabelled")', 'drop_not_null(migrator, "todos", "label")')
    with caplog.at_level(logging.DEBUG, logger="datalayer.migrate"):
        assert migrations.migrate(project.url) == [name]
    assert counts(project) == before
    assert project.values("SELECT label = 'unlabelled', count(*) FROM todos GROUP BY 1 "
                          "ORDER BY 1") == [(False, ROWS - 200), (True, 200)]
    assert project.values("SELECT count(*) FROM todos WHERE label = id") == [(ROWS - 200,)]
    if IS_PG:
        assert "backfill todos: done (200 rows selected)" in caplog.text
        assert project.values("SELECT is_nullable FROM information_schema.columns WHERE "
                              "table_name = 'todos' AND column_name = 'label'") == [("NO",)]
        assert project.values("SELECT conname FROM pg_constraint WHERE conname LIKE "
                              "'todos_label%%'") == []
    with pytest.raises(Exception, match="(?i)null"):
        project.values("UPDATE todos SET label = NULL WHERE id = 't-00000000' RETURNING id")
    assert migrations.rollback(project.url) == [name]
    project.values("UPDATE todos SET label = NULL WHERE id = 't-00000000' RETURNING id")


@pg_only
def test_backfill_batches_shrink_to_the_time_a_writer_may_wait(
        project: Project, caplog: pytest.LogCaptureFixture) -> None:
    """A batch locks its rows until it commits: a writer updating one waits for it. On a
    slow table (here a trigger sleeping 2 ms a row: 10,000 rows would hold their locks
    for 20 s) the batches shrink to about ``batch_seconds``' worth. The sleep sets a
    floor on each batch's time, so the sizes do not depend on the machine's speed."""
    project.values("CREATE FUNCTION todos_slow() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN PERFORM pg_sleep(0.002); RETURN NEW; END $$; "
                   "CREATE TRIGGER todos_slow BEFORE UPDATE ON todos FOR EACH ROW "
                   "EXECUTE FUNCTION todos_slow(); SELECT 1")
    name = project.add("fill", ADD_COLUMNS.splitlines()[1] + "\n" + (
        'backfill(migrator, "todos", "priority = length(title)", where="priority = 0")'),
        'drop_column(migrator, "todos", "priority")')
    with caplog.at_level(logging.DEBUG, logger="datalayer.migrate"):
        assert migrations.migrate(project.url) == [name]
    sizes = [int(r.getMessage().split()[2]) for r in caplog.records
             if r.getMessage().startswith("backfill todos: ") and " rows in " in r.getMessage()]
    # the first batch is small; from its time (at least 200 ms) the next ones are sized to
    # 50 ms: at most 25 rows, and never more than twice the one before
    assert sizes[0] == 100 and sum(sizes) == ROWS, sizes
    assert max(sizes[1:]) <= 25, sizes
    assert project.values("SELECT count(*) FROM todos WHERE priority = length(title)"
                          ) == [(ROWS,)]


@pg_only
@workflow
def test_writers_wait_at_most_the_lock_timeout_behind_a_long_transaction(
        project: Project) -> None:
    """A long transaction reads todos; a migration needing todos' ACCESS EXCLUSIVE lock
    queues behind it, and every writer queues behind the migration. The lock timeout
    bounds that queue: migrate gives up and backs off (writers go on), again and again,
    and fails cleanly, pending. Without it the writers would wait for the long
    transaction, held here for 8 s."""
    name = project.add("plain_column", 'migrator.add_fields("todos", '
                       'plain=pw.TextField(null=True))', 'migrator.remove_fields("todos", "plain")')
    with Writers(project.url) as writers:
        blocker = hold_todos(project.url, seconds=8)
        started = time.perf_counter()
        with pytest.raises(migrations.MigrationError, match="gave up after 3 lock timeouts"):
            migrations.migrate(project.url, lock_timeout=0.3, retries=2)
        took = time.perf_counter() - started
    blocker.join()
    assert not writers.errors and writers.latencies
    print(f"\nplain migration behind a long transaction: gave up after {took:.2f}s; "
          f"writers' worst latency {writers.worst * 1000:.0f} ms over "
          f"{len(writers.latencies)} writes (lock timeout 300 ms)")
    assert writers.worst < 3.0  # 8 s without the timeout; 0.3 s plus scheduling with it
    assert project.pending() == [name]


@pg_only
@workflow
def test_an_online_step_retries_behind_a_long_transaction_then_succeeds(
        project: Project) -> None:
    # Nullable: these writers are the code of before, which never sets the column.
    name = project.add("online_column", ADD_COLUMNS.splitlines()[2], 'drop_column('
                       'migrator, "todos", "label")')
    with Writers(project.url) as writers:
        blocker = hold_todos(project.url, seconds=1.5)
        assert migrations.migrate(project.url, lock_timeout=0.3, retries=8) == [name]
    blocker.join()
    assert not writers.errors and writers.latencies
    print(f"\nonline step behind a 1.5 s transaction: writers' worst latency "
          f"{writers.worst * 1000:.0f} ms over {len(writers.latencies)} writes "
          "(lock timeout 300 ms)")
    assert writers.worst < 3.0
    assert project.values("SELECT count(*) FROM todos WHERE label IS NULL AND id LIKE 't-%%'") == [(0,)]


EXPAND = '''
expand(migrator, "todos", "priority", "bigint")
expand(migrator, "todos", "label", "varchar(255)")
'''
UNEXPAND = '''
unexpand(migrator, "todos", "label")
unexpand(migrator, "todos", "priority")
'''
FILL = '''
fill_expanded(migrator, "todos", "priority", "bigint", batch_size=40)
fill_expanded(migrator, "todos", "label", "varchar(255)", batch_size=40)
'''
CONTRACT = '''
contract(migrator, "todos", "priority", pw.BigIntegerField(
    default=0, constraints=[ServerDefault("0")]))
contract(migrator, "todos", "label", pw.CharField(max_length=255, null=True))
'''
UNCONTRACT = '''
uncontract(migrator, "todos", "label", pw.TextField(null=True), "text")
uncontract(migrator, "todos", "priority", pw.IntegerField(
    default=0, constraints=[ServerDefault("0")]), "integer")
'''


def _types(project: Project) -> list[tuple[object, ...]]:
    return project.values(
        "SELECT column_name, data_type, character_maximum_length, is_nullable, "
        "column_default FROM "
        "information_schema.columns WHERE table_name = 'todos' AND column_name IN "
        "('priority', 'label') ORDER BY 1")


@pg_only
@workflow
def test_int_to_bigint_and_text_to_varchar_online_with_writers_running(
        project: Project) -> None:
    """expand (a shadow column kept in sync by a trigger), backfill, contract (swap by
    renames): three migrations, applied and rolled back while writers write."""
    # A server default: the writers are the code of before, which never sets priority.
    project.add("add_columns", ADD_COLUMNS.replace(
        'pw.IntegerField(default=0), fill="0"',
        'pw.IntegerField(default=0, constraints=[ServerDefault("0")])'), DROP_COLUMNS)
    migrations.migrate(project.url)
    project.values("UPDATE todos SET priority = length(id), label = title RETURNING id")
    rows = "SELECT id, priority, label FROM todos WHERE id LIKE 't-%%' ORDER BY id"
    before = project.values(rows)
    names = [project.add("expand", EXPAND, UNEXPAND), project.add("fill", FILL),
             project.add("contract", CONTRACT, UNCONTRACT)]
    with Writers(project.url) as writers:  # they change titles, never these columns
        assert migrations.migrate(project.url) == names
        after, swapped = _types(project), project.values(rows)
        assert migrations.rollback(project.url, count=3, allow_data_loss=True) == names[::-1]
    assert not writers.errors and writers.latencies
    print(f"\nexpand/backfill/contract and back with writers: worst latency "
          f"{writers.worst * 1000:.0f} ms over {len(writers.latencies)} writes")
    assert after == [("label", "character varying", 255, "YES", None),
                     ("priority", "bigint", None, "NO", "0")]
    assert _types(project) == [("label", "text", None, "YES", None),
                               ("priority", "integer", None, "NO", "0")]
    # every row kept its values through both swaps; the writers' rows are all there
    assert len(before) == ROWS and swapped == before and project.values(rows) == before
    present = {r[0] for r in project.values("SELECT id FROM todos WHERE id LIKE 'w-%%'")}
    missing = sorted((writers.written[k], k) for k in set(writers.written) - present)
    lost = project.values("SELECT count(*) FROM todos WHERE title LIKE 'written %%'")
    assert not missing, (len(present), lost, missing[:3])
    assert project.values("SELECT count(*) FROM pg_trigger WHERE tgname LIKE '%%__sync'"
                          ) == [(0,)]


# An indexed column and a unique one, each with the index its field declares
# (index=True / unique=True: named todos_rank, todos_seq as peewee names them).
ADD_INDEXED = '''
add_column(migrator, "todos", "rank", pw.IntegerField(
    default=0, index=True, constraints=[ServerDefault("0")]))
add_column(migrator, "todos", "seq", pw.IntegerField(null=True, unique=True))
add_index(migrator, "todos", "todos_rank", ["rank"], concurrently=True)
add_index(migrator, "todos", "todos_seq", ["seq"], unique=True, concurrently=True)
'''
DROP_INDEXED = '''
drop_column(migrator, "todos", "seq")
drop_column(migrator, "todos", "rank")
'''
EXPAND_INDEXED = '''
expand(migrator, "todos", "rank", "bigint")
expand(migrator, "todos", "seq", "bigint")
'''
UNEXPAND_INDEXED = '''
unexpand(migrator, "todos", "seq")
unexpand(migrator, "todos", "rank")
'''
FILL_INDEXED = '''
fill_expanded(migrator, "todos", "rank", "bigint", batch_size=40)
fill_expanded(migrator, "todos", "seq", "bigint", batch_size=40)
'''
CONTRACT_INDEXED = '''
contract(migrator, "todos", "rank", pw.BigIntegerField(
    default=0, index=True, constraints=[ServerDefault("0")]))
contract(migrator, "todos", "seq", pw.BigIntegerField(null=True, unique=True))
'''
UNCONTRACT_INDEXED = '''
uncontract(migrator, "todos", "seq", pw.IntegerField(null=True, unique=True), "integer")
uncontract(migrator, "todos", "rank", pw.IntegerField(
    default=0, index=True, constraints=[ServerDefault("0")]), "integer")
'''


def _indexed_project(project: Project) -> list[str]:
    """Add the indexed columns (migrated, values set) and the three type-change
    migrations (pending); return the latter's names."""
    project.add("add_indexed", ADD_INDEXED, DROP_INDEXED)
    migrations.migrate(project.url)
    project.values("UPDATE todos SET rank = length(title), seq = CAST(substr(id, 3) AS "
                   "integer) RETURNING id")  # rank repeats, seq is unique
    return [project.add("expand", EXPAND_INDEXED, UNEXPAND_INDEXED),
            project.add("fill", FILL_INDEXED),
            project.add("contract", CONTRACT_INDEXED, UNCONTRACT_INDEXED)]


def _indexes(project: Project) -> list[tuple[object, ...]]:
    """The todos indexes on rank and seq, as the catalog has them: name, definition,
    valid, unique."""
    if IS_PG:
        return project.values(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisvalid, i.indisunique "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = 'todos'::regclass AND (c.relname LIKE 'todos_rank%%' "
            "OR c.relname LIKE 'todos_seq%%') ORDER BY 1")
    return [(name, sql, True, project.values(
        "SELECT \"unique\" FROM pragma_index_list('todos') WHERE name = ?", (name,))[0][0] == 1)
        for name, sql in project.values(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'todos' "
            "AND (name LIKE 'todos_rank%' OR name LIKE 'todos_seq%') ORDER BY 1")]


def _drift(project: Project) -> list[str]:
    """What `datalayer check` would say against the schema the migrations make (the
    package's models do not have these test columns)."""
    from peewee_migrate import Migrator, Router

    from datalayer.evolve.drift import schema_differences

    replay = pw.SqliteDatabase(":memory:")
    migrator = Migrator(replay)
    for name in migrations.status(project.url)[0]:  # the applied ones, as migrate replays
        Router(replay, migrate_dir=project.folder).run_one(name, migrator, fake=True)
    models = [m for m in migrator.orm if m._meta.table_name != "migratehistory"]
    with connected(project.url) as database:
        return schema_differences(database, models)


def _column_types(project: Project) -> list[tuple[object, ...]]:
    if IS_PG:
        return project.values("SELECT column_name, data_type FROM information_schema.columns "
                              "WHERE table_name = 'todos' AND column_name IN ('rank', 'seq') "
                              "ORDER BY 1")
    return project.values("SELECT name, lower(type) FROM pragma_table_info('todos') "
                          "WHERE name IN ('rank', 'seq') ORDER BY 1")


@workflow
def test_an_indexed_and_a_unique_column_change_type_online_with_writers_running(
        project: Project) -> None:
    """int -> bigint on a column with its own index and on one with its own unique index,
    writers running (PostgreSQL): contract builds each index on the new column
    CONCURRENTLY and gives it the original name in the swap; uncontract does the same
    back. The indexes keep their names, validity and uniqueness, the schema matches the
    migrations' at every stop, and every value is kept. On SQLite the rebuild keeps them."""
    names = _indexed_project(project)
    rows = "SELECT id, rank, seq FROM todos WHERE id LIKE 't-%%' ORDER BY id"
    before, indexes = project.values(rows), _indexes(project)
    assert [(name, valid, unique) for name, _, valid, unique in indexes] == [
        ("todos_rank", True, False), ("todos_seq", True, True)]
    assert _drift(project) == []
    with Writers(project.url) if IS_PG else contextlib.nullcontext() as writers:
        assert migrations.migrate(project.url) == names
        swapped, swapped_indexes = project.values(rows), _indexes(project)
        swapped_types, swapped_drift = _column_types(project), _drift(project)
        assert migrations.rollback(project.url, count=3, allow_data_loss=True) == names[::-1]
    if writers is not None:
        assert not writers.errors and writers.latencies
        print(f"\nindexed expand/backfill/contract and back with writers: worst latency "
              f"{writers.worst * 1000:.0f} ms over {len(writers.latencies)} writes")
    wide = "bigint" if IS_PG else "integer"  # SQLite's BigIntegerField is an INTEGER
    assert swapped_types == [("rank", wide), ("seq", wide)]
    assert swapped_drift == []
    # the same indexes, by name, definition, validity and uniqueness: nothing else left
    assert swapped_indexes == indexes and _indexes(project) == indexes
    assert _column_types(project) == [("rank", "integer"), ("seq", "integer")]
    assert _drift(project) == []
    assert len(before) == ROWS and swapped == before and project.values(rows) == before
    with pytest.raises(pw.IntegrityError):  # still unique
        project.values("UPDATE todos SET seq = 1 WHERE id = 't-00000002' RETURNING id")


@pg_only
def test_a_unique_index_that_fails_to_build_on_the_new_column_leaves_it_pending(
        project: Project) -> None:
    """A cast that collapses values (here a hand-written ``using`` dividing by 1000) makes
    the new column's unique index fail to build: contract fails, no INVALID index is left,
    the migration is pending, the old column and its index untouched; the expand and fill
    roll back cleanly."""
    collapse = ', using="{old} / 1000"'
    project.add("add_indexed", ADD_INDEXED, DROP_INDEXED)
    migrations.migrate(project.url)
    project.values("UPDATE todos SET seq = CAST(substr(id, 3) AS integer) RETURNING id")
    rows = project.values("SELECT id, rank, seq FROM todos ORDER BY id")
    indexes = _indexes(project)
    seq = [[line for line in code.splitlines() if '"seq"' in line][0]
           for code in (EXPAND_INDEXED, UNEXPAND_INDEXED, FILL_INDEXED, CONTRACT_INDEXED,
                        UNCONTRACT_INDEXED)]
    names = [project.add("expand", seq[0].replace('"bigint")', f'"bigint"{collapse})'), seq[1]),
             project.add("fill", seq[2].replace("batch_size=40", f"batch_size=40{collapse}")),
             project.add("contract", seq[3], seq[4])]
    with pytest.raises(migrations.MigrationError, match="todos_seq__new"):
        migrations.migrate(project.url)
    assert project.pending() == [names[2]]
    assert _indexes(project) == indexes  # no todos_seq__new, valid or not
    assert project.values("SELECT id, rank, seq FROM todos ORDER BY id") == rows
    assert migrations.rollback(project.url, count=2) == names[1::-1]
    assert project.values("SELECT id, rank, seq FROM todos ORDER BY id") == rows
    assert _drift(project) == []


@pg_only
def test_contract_runs_again_after_a_killed_build_and_after_its_swap(project: Project) -> None:
    """A run killed while building the new column's index leaves it INVALID: the next run
    drops it and builds it again. A run that stopped after the swap, before recording
    the migration, runs again without touching anything."""
    names = _indexed_project(project)
    indexes = _indexes(project)
    assert migrations.migrate(project.url, to=names[1]) == names[:2]
    # what a run killed mid-build leaves: an INVALID index of the name the build uses
    with connected(project.url) as database, pytest.raises(Exception, match="duplicate"):
        database.execute_sql('CREATE UNIQUE INDEX CONCURRENTLY "todos_seq__new" ON todos '
                             "(user_id)")
    assert [row[2] for row in _indexes(project) if row[0] == "todos_seq__new"] == [False]
    assert migrations.migrate(project.url) == [names[2]]
    assert _indexes(project) == indexes  # todos_seq: unique, valid, on seq; nothing else
    assert _column_types(project) == [("rank", "bigint"), ("seq", "bigint")]
    # stopped after the swap, before it was recorded: it runs again and changes nothing
    project.values("DELETE FROM migratehistory WHERE name = %s RETURNING name", (names[2],))
    assert migrations.migrate(project.url) == [names[2]]
    assert _indexes(project) == indexes and _drift(project) == []


@pytest.mark.skipif(IS_PG, reason="SQLite: a rebuild write-locks the database")
def test_migrate_says_which_tables_a_sqlite_rebuild_will_lock(project: Project) -> None:
    project.add("add_columns", ADD_COLUMNS.splitlines()[2], 'drop_column(migrator, '
                '"todos", "label")')
    name = project.add("label_required", 'set_not_null(migrator, "todos", "label")',
                       'drop_not_null(migrator, "todos", "label")')
    heard: list[str] = []
    migrations.migrate(project.url, notify=heard.append)
    assert heard[-1:] == [f"{name} rebuilds todos ({ROWS} rows): SQLite copies every row into a "
                     "new table, and the database is write-locked until the migration "
                     "commits"]
    assert project.values("SELECT count(*) FROM todos WHERE label = 'none'") == [(ROWS,)]


# Rules the online forms are exempt from, each with its reason; the project's own
# (.squawk.toml) apply too.
SQUAWK_EXEMPT = {
    # contract swaps the filled copy in by renames, then drops the old column (its data
    # is in the copy); drop_column is the rollback of add_column
    "renaming-column", "ban-drop-column",
    # contract renames the index it built on the copy to the name of the old column's
    # index, dropped with it in the same transaction: clients see the name they knew
    "renaming-object",
    # the issue's own example: text -> varchar(255), done online
    "prefer-text-field",
    # set_not_null's helper CHECK and contract's sync trigger function are temporary:
    # dropped once SET NOT NULL holds / the swap is done; rollbacks drop what they added
    "ban-drop-constraint", "ban-drop-function", "ban-drop-not-null",
    # add_column(fill=...) drops the default that filled the existing rows when the model
    # has no server default (the model and the database then agree). squawk is right that
    # code still running without the column then fails to insert on a NOT NULL one:
    # docs/changing-the-schema.md says to give such a column a ServerDefault.
    "ban-drop-default",
}


@pg_only
def test_the_online_forms_pass_squawk(project: Project, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Every online operation's SQL, as it reaches PostgreSQL, linted with squawk."""
    statements: list[str] = []
    original = pw.Database.execute_sql

    def recording(self: pw.Database, sql: str, params: object = None) -> object:
        statements.append(sql if not params else self.cursor().mogrify(sql, params).decode())
        return original(self, sql, params)

    project.add("add_columns", ADD_COLUMNS, DROP_COLUMNS)
    project.add("constrain", CONSTRAIN, UNCONSTRAIN)
    project.add("fk", 'add_foreign_key(migrator, "todos", "todos_tenant_fk", "tenant_id", '
                '"tenants", on_delete="CASCADE")',
                'drop_constraint(migrator, "todos", "todos_tenant_fk")')
    project.add("expand", EXPAND, UNEXPAND)
    project.add("fill", FILL)
    project.add("contract", CONTRACT, UNCONTRACT)
    # the same with indexed columns: contract builds their indexes CONCURRENTLY
    project.add("add_indexed", ADD_INDEXED, DROP_INDEXED)
    project.add("expand_indexed", EXPAND_INDEXED, UNEXPAND_INDEXED)
    project.add("fill_indexed", FILL_INDEXED)
    project.add("contract_indexed", CONTRACT_INDEXED, UNCONTRACT_INDEXED)
    monkeypatch.setattr(pw.Database, "execute_sql", recording)
    migrations.migrate(project.url)
    migrations.rollback(project.url, count=10, allow_data_loss=True)
    monkeypatch.undo()
    ddl = [s for s in statements if s.lstrip().split(None, 1)[0].upper()
           in {"CREATE", "ALTER", "DROP"} and "migratehistory" not in s]
    assert len(ddl) > 30 and sum("CONCURRENTLY" in s and "__new" in s for s in ddl) == 4
    problems = squawk(tmp_path / "online.sql", ddl, exempt=SQUAWK_EXEMPT)
    assert not problems, problems


def test_split_moves_the_online_forms_and_their_rollbacks() -> None:
    """What makemigrations does with a plan (evolve.online_plan), on its own."""
    from datalayer.evolve.diff import Plan
    from datalayer.evolve.online_plan import split

    forward, backward = Plan(), Plan()
    forward.add("add_column(migrator, 'todos', 'rank', pw.IntegerField(null=True))",
                "add_column")
    forward.add("add_index(migrator, 'todos', 'todos_rank', ['rank'], unique=True)",
                "add_index")
    forward.add("add_index(migrator, 'fresh', 'fresh_x', ['x'])", "add_index")
    forward.add("add_check(migrator, 'todos', 'todos_rank_check', 'rank > 0')", "add_check")
    forward.add("add_not_null(migrator, 'todos', 'description')", "add_not_null")
    forward.add("add_not_null(migrator, 'todos', 'label', fill=ServerDefault(\"'none'\"))",
                "add_not_null", "ServerDefault")
    forward.add("add_column(migrator, 'todos', 'reviewer', pw.ForeignKeyField(migrator.orm["
                "'user'], column_name='reviewer_id', field='id', on_delete='SET NULL', "
                "backref='+', null=True))", "add_column")
    backward.add("drop_column(migrator, 'todos', 'reviewer')", "drop_column")
    backward.add("drop_not_null(migrator, 'todos', 'label')", "drop_not_null")
    backward.add("drop_not_null(migrator, 'todos', 'description')", "drop_not_null")
    backward.add("drop_check(migrator, 'todos', 'todos_rank_check')", "drop_check")
    backward.add("drop_index(migrator, 'todos', 'todos_rank')", "drop_index")
    backward.add("drop_column(migrator, 'todos', 'rank')", "drop_column")
    parts = split(forward, backward, created={"fresh"})
    assert parts.forward.steps == [forward.steps[0], forward.steps[2]]
    assert parts.forward.helpers == {"add_column", "add_index"}
    assert parts.backward.steps == [backward.steps[5]] and parts.backward.helpers == {
        "drop_column"}
    assert parts.online_forward.steps == [
        "add_index(migrator, 'todos', 'todos_rank', ['rank'], unique=True, concurrently=True)",
        "add_check_online(migrator, 'todos', 'todos_rank_check', 'rank > 0')",
        "set_not_null(migrator, 'todos', 'description')",
        "set_not_null(migrator, 'todos', 'label', fill=ServerDefault(\"'none'\"))",
        "add_column_online(migrator, 'todos', 'reviewer', pw.ForeignKeyField(migrator.orm["
        "'user'], column_name='reviewer_id', field='id', on_delete='SET NULL', backref='+', "
        "null=True))\nadd_index(migrator, 'todos', 'todos_reviewer_id', ['reviewer'], "
        "concurrently=True)"]
    assert parts.online_forward.helpers == {"add_index", "add_check_online", "set_not_null",
                                            "add_column_online", "ServerDefault"}
    assert parts.online_backward.steps == [
        "drop_column_online(migrator, 'todos', 'reviewer')",
        "drop_not_null_online(migrator, 'todos', 'label')",
        "drop_not_null_online(migrator, 'todos', 'description')",
        "drop_constraint(migrator, 'todos', 'todos_rank_check')",
        "drop_index(migrator, 'todos', 'todos_rank', concurrently=True)"]


def test_split_drops_indexes_concurrently_unless_a_column_of_the_table_changes() -> None:
    """An index dropped from a table whose columns the migration also changes stays in
    the transaction: its column may go with it, and the rollback re-adds the column (in
    the transactional file, undone after the online one) before the index."""
    from datalayer.evolve.diff import Plan
    from datalayer.evolve.online_plan import split

    forward, backward = Plan(), Plan()
    forward.add("drop_index(migrator, 'todos', 'todos_title_idx')", "drop_index")
    forward.add("drop_index(migrator, 'waitlist', 'waitlist_rank')", "drop_index")
    forward.add("drop_column(migrator, 'waitlist', 'rank')", "drop_column")
    backward.add("add_column(migrator, 'waitlist', 'rank', pw.IntegerField(null=True))",
                 "add_column")
    backward.add("add_index(migrator, 'waitlist', 'waitlist_rank', ['rank'])", "add_index")
    backward.add("add_index(migrator, 'todos', 'todos_title_idx', ['title'])", "add_index")
    parts = split(forward, backward, created=set())
    assert parts.online_forward.steps == [
        "drop_index(migrator, 'todos', 'todos_title_idx', concurrently=True)"]
    assert parts.online_backward.steps == [
        "add_index(migrator, 'todos', 'todos_title_idx', ['title'], concurrently=True)"]
    assert parts.forward.steps == forward.steps[1:]
    assert parts.backward.steps == backward.steps[:2]


@workflow
def test_makemigrations_writes_the_online_forms_for_existing_tables(tmp_path: Path) -> None:
    """A new column and, on the existing todos, an index, a CHECK and a nullable FK
    column: the plain column in NNN_x.py; the index (CONCURRENTLY), the CHECK (NOT VALID,
    VALIDATE) and the FK column (its constraint NOT VALID then validated, its index
    CONCURRENTLY) in NNN_x_online.py; the cycle goes through on a seeded database."""
    from test_day_two import Checkout

    root = copy_checkout(tmp_path / "checkout")
    with scratch_database(tmp_path) as url:
        checkout = Checkout(root, url)
        checkout.run("migrate")
        checkout.run("seed", "--tenants", "2", "--users-per-tenant", "2",
                     "--todos-per-user", "3", "--notifications-per-user", "1")
        before = checkout.counts()
        models = "datalayer/models/features.py"
        checkout.edit(models, "    due_date = TimestampTZField(null=True)\n",
                      "    due_date = TimestampTZField(null=True)\n"
                      "    rank = pw.IntegerField(null=True)\n"
                      "    reviewer = pw.ForeignKeyField(User, column_name='reviewer_id', "
                      "null=True, on_delete='SET NULL', backref='reviewed_todos')\n")
        checkout.edit(models, '"length(title) BETWEEN 1 AND 255"),',
                      '"length(title) BETWEEN 1 AND 255"),\n'
                      '            check_constraint("todos_title_trimmed", '
                      '"title = trim(title)"),')
        checkout.edit(models, "class Waitlist(BaseModel):",
                      'Todo.add_index(Todo.index(Todo.title, name="todos_title_idx"))\n\n\n'
                      "class Waitlist(BaseModel):")
        written = checkout.run("makemigrations", "ranked").stdout
        assert written.count("Wrote") == 2, written
        first, online = [(root / "migrations").glob(f"*_{n}.py").__next__().read_text()
                         for n in ("ranked", "ranked_online")]
        assert "add_column(migrator, 'todos', 'rank'" in first and "add_index" not in first
        assert "add_index(migrator, 'todos', 'todos_title_idx', ['title'], concurrently=True)" \
            in online
        assert "add_check_online(migrator, 'todos', 'todos_title_trimmed'" in online
        # the FK column: constraint NOT VALID then validated, its index CONCURRENTLY
        assert "add_column_online(migrator, 'todos', 'reviewer'" in online
        assert "add_index(migrator, 'todos', 'todos_reviewer_id', ['reviewer'], " \
            "concurrently=True)" in online
        assert "drop_column_online(migrator, 'todos', 'reviewer')" in online
        assert "from datalayer.migration_ops.online import" in online
        checkout.run("migrate")
        assert "matches the models" in checkout.run("check").stdout
        assert "No changes" in checkout.run("makemigrations", "again").stdout
        checkout.run("rollback", "--count", "2")
        assert checkout.counts() == before
        checkout.run("migrate")
        assert "matches the models" in checkout.run("check").stdout
        if IS_PG:
            assert checkout.values("SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON "
                                   "c.oid = i.indexrelid WHERE c.relname = 'todos_title_idx'"
                                   ) == [(True,)]


def _checkout(tmp_path: Path, url: str) -> object:
    from test_day_two import Checkout

    root = copy_checkout(tmp_path / "checkout")
    return Checkout(root, url)


@workflow
def test_a_rewrite_is_sized_refused_above_the_threshold_or_written_online(
        tmp_path: Path) -> None:
    """int -> bigint rewrites tenant_activity_daily: makemigrations says so with its size,
    refuses above --rewrite-threshold, and with --online writes expand / fill / contract,
    which go through the cycle keeping every value."""
    with scratch_database(tmp_path) as url:
        checkout: Any = _checkout(tmp_path, url)
        checkout.run("migrate")
        checkout.execute("INSERT INTO tenants (id, name) VALUES ('t1', 'T')")
        checkout.execute("INSERT INTO tenant_activity_daily (id, tenant_id, date, "
                         "event_count) VALUES ('a1', 't1', '2026-01-01', 7), "
                         "('a2', 't1', '2026-01-02', 2147483647)")
        checkout.edit("datalayer/models/tenant.py",
                      "    event_count = pw.IntegerField(default=0, constraints=[ZERO])",
                      "    event_count = pw.BigIntegerField(default=0, constraints=[ZERO])")
        refused = checkout.run("makemigrations", "wide", "--database", url,
                               "--rewrite-threshold", "1", ok=False)
        assert refused.returncode == 1
        assert "tenant_activity_daily.event_count: INTEGER -> BIGINT rewrites table " \
               "tenant_activity_daily (~2 rows" in refused.stderr
        assert "writers are blocked" in refused.stderr and "--online" in refused.stderr
        assert len(checkout.migrations()) == len(list((REPO_MIGRATIONS).glob("[0-9]*.py")))
        made = checkout.run("makemigrations", "wide", "--online").stdout
        assert made.count("Wrote") == 3, made
        names = checkout.migrations()[-3:]
        assert [n.split("_", 1)[1] for n in names] == ["wide.py", "wide_fill.py",
                                                        "wide_contract.py"]
        sources = [(checkout.root / "migrations" / n).read_text() for n in names]
        assert "expand(migrator, 'tenant_activity_daily', 'event_count', 'BIGINT')" \
            in sources[0]
        assert "fill_expanded(" in sources[1] and "contract(" in sources[2]
        before = checkout.values("SELECT id, event_count FROM tenant_activity_daily ORDER BY 1")
        checkout.run("migrate")
        assert "matches the models" in checkout.run("check").stdout
        assert "No changes" in checkout.run("makemigrations", "again").stdout
        assert checkout.values("SELECT id, event_count FROM tenant_activity_daily ORDER BY 1"
                               ) == before
        checkout.run("rollback", "--count", "3")
        assert checkout.values("SELECT id, event_count FROM tenant_activity_daily ORDER BY 1"
                               ) == before
        checkout.run("migrate")
        assert "matches the models" in checkout.run("check").stdout
        if IS_PG:
            assert checkout.values(
                "SELECT data_type, column_default FROM information_schema.columns WHERE "
                "table_name = 'tenant_activity_daily' AND column_name = 'event_count'") == [
                ("bigint", "0")]


def _field_indexes(checkout: Any) -> list[tuple[object, ...]]:
    """user.email's and verification.identifier's indexes, as the catalog has them."""
    if IS_PG:
        return checkout.values(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisvalid, i.indisunique "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname IN "
            "('user_email', 'verification_identifier') OR right(c.relname, 5) = '__new' "
            "ORDER BY 1")
    return checkout.values(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name IN "
        "('user_email', 'verification_identifier') OR substr(name, -5) = '__new' ORDER BY 1")


@workflow
def test_makemigrations_online_takes_a_column_with_its_own_index(tmp_path: Path) -> None:
    """text -> varchar(255) on user.email (unique=True) and verification.identifier
    (index=True): --online writes expand / fill / contract, whose contract rebuilds each
    field's index on the new column; applied, check is clean and makemigrations finds
    nothing; rolled back, the rows, values and indexes are as before. A column in a
    two-column index is still refused, saying why."""
    with scratch_database(tmp_path) as url:
        checkout: Any = _checkout(tmp_path, url)
        checkout.run("migrate")
        checkout.run("seed", "--tenants", "2", "--users-per-tenant", "2",
                     "--todos-per-user", "1", "--notifications-per-user", "1")
        checkout.execute("INSERT INTO verification (id, identifier, value, expires_at) "
                         "VALUES ('v1', 'a@example.com', 'x', '2026-01-01'), "
                         "('v2', 'a@example.com', 'y', '2026-01-02')")
        shipped = len(checkout.migrations())
        checkout.edit("datalayer/models/auth.py", "    provider_id = pw.TextField()",
                      "    provider_id = pw.CharField(max_length=255)")
        refused = checkout.run("makemigrations", "wide", "--online", ok=False)
        assert refused.returncode == 1 and len(checkout.migrations()) == shipped
        assert "account.provider_id is in index account_provider_id_account_id (with " \
               "other columns" in refused.stderr, refused.stderr
        checkout.edit("datalayer/models/auth.py", "    provider_id = pw.CharField(max_length=255)",
                      "    provider_id = pw.TextField()")
        checkout.edit("datalayer/models/auth.py", "    email = pw.TextField(unique=True)",
                      "    email = pw.CharField(max_length=255, unique=True)")
        checkout.edit("datalayer/models/auth.py", "    identifier = pw.TextField(index=True)",
                      "    identifier = pw.CharField(max_length=255, index=True)")
        made = checkout.run("makemigrations", "wide", "--online").stdout
        assert made.count("Wrote") == 3, made
        contract = (checkout.root / "migrations" / checkout.migrations()[-1]).read_text()
        assert "contract(migrator, 'user', 'email', pw.CharField(max_length=255, " \
               "unique=True))" in contract
        assert "contract(migrator, 'verification', 'identifier', pw.CharField(" \
               "max_length=255, index=True))" in contract
        assert "uncontract(migrator, 'user', 'email', pw.TextField(unique=True), 'TEXT')" \
            in contract
        rows = ('SELECT id, email FROM "user" UNION ALL SELECT id, identifier FROM '
                "verification ORDER BY 1")
        before, counts, indexes = checkout.values(rows), checkout.counts(), \
            _field_indexes(checkout)
        assert [r[0] for r in indexes] == ["user_email", "verification_identifier"]
        checkout.run("migrate")
        assert "matches the models" in checkout.run("check").stdout
        assert "No changes" in checkout.run("makemigrations", "again").stdout
        assert checkout.values(rows) == before and checkout.counts() == counts
        if IS_PG:
            assert [r[1:] for r in _field_indexes(checkout)] == [
                ('CREATE UNIQUE INDEX user_email ON public."user" USING btree (email)', True,
                 True),
                ("CREATE INDEX verification_identifier ON public.verification USING btree "
                 "(identifier)", True, False)]
            assert checkout.values(
                "SELECT table_name, data_type, character_maximum_length FROM "
                "information_schema.columns WHERE (table_name, column_name) IN "
                "(('user', 'email'), ('verification', 'identifier')) ORDER BY 1") == [
                ("user", "character varying", 255), ("verification", "character varying", 255)]
        checkout.run("rollback", "--count", "3")
        assert checkout.values(rows) == before and checkout.counts() == counts
        assert _field_indexes(checkout) == indexes
        checkout.run("migrate")
        assert "matches the models" in checkout.run("check").stdout


def _rewrite_models(kind: Any) -> dict[str, Any]:
    """Tables whose int columns become ``kind``: one per case the online path judges."""
    from datalayer.evolve.state import states_of

    class Parent(pw.Model):
        code = kind(unique=True)  # referenced by child.parent_id
        own = kind(index=True)  # its own index: taken
        solo = kind(unique=True)  # its own unique index: taken
        pair = kind()
        other = pw.IntegerField()
        expr = kind()
        part = kind()
        named = kind()
        checked = kind()
        flagged = kind(index=kind is pw.IntegerField)

        class Meta:
            table_name = "parent"
            indexes = ((("pair", "other"), False),)
            constraints = [pw.SQL("CONSTRAINT parent_checked CHECK (checked > 0)")]

    Parent.add_index(Parent.index(pw.fn.abs(Parent.expr), name="parent_expr_abs"))
    Parent.add_index(Parent.index(Parent.other, where=pw.SQL("part > 0"), name="parent_part"))
    Parent.add_index(Parent.index(Parent.named, name="parent_named_idx"))

    class Child(pw.Model):
        parent = pw.ForeignKeyField(Parent, field=Parent.code)

        class Meta:
            table_name = "child"

    class Keyed(pw.Model):
        key = kind(primary_key=True)

        class Meta:
            table_name = "keyed"

    return states_of([Parent, Child, Keyed])


def test_the_online_path_takes_a_fields_own_index_and_refuses_the_rest() -> None:
    """int -> bigint: a column with its own index (index=True / unique=True) goes online;
    a key, a foreign key (either side), a column in another index (two columns, an
    expression, a WHERE, a name of its own), in a CHECK, or whose index changes too, is
    refused, each saying why."""
    from datalayer.evolve import rewrites
    from datalayer.evolve.diff import Plan

    found = rewrites.find(_rewrite_models(pw.IntegerField), _rewrite_models(pw.BigIntegerField))
    why = {f"{r.table}.{r.old.name}": r.online_ok for r in found}
    assert why.pop("parent.own") is None and why.pop("parent.solo") is None
    expected = {
        "keyed.key": "keyed.key is (in) the primary key",
        "child.parent": "child.parent_id is a foreign key",
        "parent.code": "parent.code is referenced by child.parent_id",
        "parent.pair": "parent.pair is in index parent_pair_other (with other columns",
        "parent.expr": "parent.expr is in index parent_expr_abs",
        "parent.part": "parent.part is in index parent_part",
        "parent.named": "parent.named is in index parent_named_idx",
        "parent.checked": "parent.checked is in a CHECK",
        "parent.flagged": "parent.flagged's index changes with its type",
    }
    assert set(why) == set(expected)
    for column, start in expected.items():
        assert (why[column] or "").startswith(start), (column, why[column])
    with pytest.raises(rewrites.RewriteRefusedError, match="nothing was written"):
        rewrites.RewritePolicy(online=True).apply(found, Plan(), Plan())
