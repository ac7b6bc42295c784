"""Writers' worst latency while a schema change runs on a big table (PostgreSQL).

    python -m benchmarks.migrations                    # 1,000,000 todos
    python -m benchmarks.migrations --rows 200000 --json out.json
    python -m benchmarks.migrations --kinds "int -> bigint,text -> varchar(255)"

For each change kind, on a table of ``--rows`` todos, with four writer processes each
inserting a todo and updating another about 40 times a second, three ways in the same
run, each applied and then undone while the writers run:

- ``plain``: the form a generator writes without the online operations (peewee_migrate's
  ``add_fields`` / ``change_fields`` / ``add_not_null``, ``add_index`` in the
  transaction, ``migration_ops.add_check``), through ``datalayer migrate``;
- ``online``: ``datalayer.migration_ops.online`` operations through ``datalayer migrate``;
- ``by hand``: the online DDL an expert types in psql (raw psycopg2, autocommit).

It prints each way's worst and 99th-percentile writer latency and how long the change
took. Nothing here is a test: the numbers go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from online_helpers import Project, Writers, hold_todos, make_project  # noqa: E402

from datalayer.evolve import migrate as migrations  # noqa: E402
from datalayer.migration_ops import steps  # noqa: E402

ADMIN_URL = os.environ.get(
    "DATALAYER_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

SETUP = [
    "INSERT INTO \"user\" (id, name, email) VALUES ('u-1', 'Writer', 'writer@example.com')",
    "INSERT INTO todos (id, user_id, title) SELECT 't-' || lpad(i::text, 8, '0'), 'u-1', "
    "'todo ' || i FROM generate_series(0, {rows} - 1) i",
    "UPDATE todos SET score = length(id), note = title, memo = title",
    "VACUUM ANALYZE todos",
    # the setup's WAL would start checkpoints during the first measurements: their
    # sync phase (0.3 s here) shows up as writer latency in whichever way runs then
    "CHECKPOINT",
]
# the columns the type-change kinds start from (not in the models)
# (memo has a server default: the writers, which never set it, keep it non-null)
COLUMNS = ('migrator.add_fields("todos", score=pw.IntegerField(null=True), '
           'note=pw.TextField(null=True), memo=pw.TextField(null=True, '
           'constraints=[ServerDefault("\'\'")]))',
           'migrator.remove_fields("todos", "score", "note", "memo")')


@dataclass
class Kind:
    """A change: its plain and online migration bodies (up, down), and the hand DDL."""

    name: str
    plain: tuple[str, str] | None
    online: list[tuple[str, str]]
    hand: list[str]
    hand_undo: list[str]
    prepare: tuple[str, ...] = ()  # run before each way, outside the measurement
    blocker: float = 0.0  # seconds a transaction reading todos is held open as it starts


FK = ('pw.ForeignKeyField(migrator.orm["user"], column_name="reviewer_id", null=True, '
      'index=False)')
KINDS = [
    Kind("nullable column",
         ('migrator.add_fields("todos", extra=pw.TextField(null=True))',
          'migrator.remove_fields("todos", "extra")'),
         [('add_column(migrator, "todos", "extra", pw.TextField(null=True))',
           'drop_column(migrator, "todos", "extra")')],
         ["ALTER TABLE todos ADD COLUMN extra text"],
         ["ALTER TABLE todos DROP COLUMN extra"]),
    Kind("NOT NULL + constant default",
         ('migrator.add_fields("todos", karma=pw.IntegerField(default=0))',
          'migrator.remove_fields("todos", "karma")'),
         [('add_column(migrator, "todos", "karma", pw.IntegerField(default=0, '
           'constraints=[ServerDefault("0")]))', 'drop_column(migrator, "todos", "karma")')],
         ["ALTER TABLE todos ADD COLUMN karma integer NOT NULL DEFAULT 0"],
         ["ALTER TABLE todos DROP COLUMN karma"]),
    Kind("index",
         ('add_index(migrator, "todos", "todos_title_idx", ["title"])',
          'drop_index(migrator, "todos", "todos_title_idx")'),
         [('add_index(migrator, "todos", "todos_title_idx", ["title"], concurrently=True)',
           'drop_index(migrator, "todos", "todos_title_idx", concurrently=True)')],
         ["CREATE INDEX CONCURRENTLY todos_title_idx ON todos (title)"],
         ["DROP INDEX CONCURRENTLY todos_title_idx"]),
    Kind("unique index",
         ('add_index(migrator, "todos", "todos_user_id_key", ["user", "id"], unique=True)',
          'drop_index(migrator, "todos", "todos_user_id_key")'),
         [('add_index(migrator, "todos", "todos_user_id_key", ["user", "id"], unique=True, '
           'concurrently=True)',
           'drop_index(migrator, "todos", "todos_user_id_key", concurrently=True)')],
         ["CREATE UNIQUE INDEX CONCURRENTLY todos_user_id_key ON todos (user_id, id)"],
         ["DROP INDEX CONCURRENTLY todos_user_id_key"]),
    Kind("nullable FK column + index",
         (f'migrator.add_fields("todos", reviewer={FK.replace(", index=False", "")})',
          'migrator.remove_fields("todos", "reviewer")'),
         [(f'add_column(migrator, "todos", "reviewer", {FK}, on_delete="SET NULL")',
           'drop_column(migrator, "todos", "reviewer")'),
          ('add_index(migrator, "todos", "todos_reviewer_id", ["reviewer"], concurrently=True)',
           'drop_index(migrator, "todos", "todos_reviewer_id", concurrently=True)')],
         ["ALTER TABLE todos ADD COLUMN reviewer_id text",
          "ALTER TABLE todos ADD CONSTRAINT todos_reviewer_id_fkey FOREIGN KEY (reviewer_id) "
          "REFERENCES \"user\" (id) ON DELETE SET NULL NOT VALID",
          "ALTER TABLE todos VALIDATE CONSTRAINT todos_reviewer_id_fkey",
          "CREATE INDEX CONCURRENTLY todos_reviewer_id ON todos (reviewer_id)"],
         ["DROP INDEX CONCURRENTLY todos_reviewer_id",
          "ALTER TABLE todos DROP COLUMN reviewer_id"]),
    Kind("CHECK",
         ('add_check(migrator, "todos", "todos_title_short", "length(title) < 200")',
          'drop_check(migrator, "todos", "todos_title_short")'),
         [('add_check_online(migrator, "todos", "todos_title_short", "length(title) < 200")',
           'drop_constraint(migrator, "todos", "todos_title_short")')],
         ["ALTER TABLE todos ADD CONSTRAINT todos_title_short CHECK (length(title) < 200) "
          "NOT VALID", "ALTER TABLE todos VALIDATE CONSTRAINT todos_title_short"],
         ["ALTER TABLE todos DROP CONSTRAINT todos_title_short"]),
    Kind("NOT NULL on an existing column",
         ('migrator.add_not_null("todos", "memo")',
          'migrator.drop_not_null("todos", "memo")'),
         [('set_not_null(migrator, "todos", "memo")',
           'drop_not_null(migrator, "todos", "memo")')],
         ["ALTER TABLE todos ADD CONSTRAINT d_nn CHECK (memo IS NOT NULL) NOT VALID",
          "ALTER TABLE todos VALIDATE CONSTRAINT d_nn",
          "ALTER TABLE todos ALTER COLUMN memo SET NOT NULL",
          "ALTER TABLE todos DROP CONSTRAINT d_nn"],
         ["ALTER TABLE todos ALTER COLUMN memo DROP NOT NULL"]),
    Kind("NOT NULL filling 100k NULLs",
         ('import datalayer.migration_ops as ops\n'
          'ops.add_not_null(migrator, "todos", "note", fill="")',
          'migrator.drop_not_null("todos", "note")'),
         [('set_not_null(migrator, "todos", "note", fill="")',
           'drop_not_null(migrator, "todos", "note")')],
         [*(f"UPDATE todos SET note = '' WHERE id >= 't-{i:05d}000' AND id < 't-{i + 1:05d}"
            "000' AND note IS NULL" for i in range(100)),  # batches of 1,000
          "ALTER TABLE todos ADD CONSTRAINT d_nn CHECK (note IS NOT NULL) NOT VALID",
          "ALTER TABLE todos VALIDATE CONSTRAINT d_nn",
          "ALTER TABLE todos ALTER COLUMN note SET NOT NULL",
          "ALTER TABLE todos DROP CONSTRAINT d_nn"],
         ["ALTER TABLE todos ALTER COLUMN note DROP NOT NULL"],
         # The writers never set note: it has a server default, as the generator gives a
         # NOT NULL column with a default (without one, their inserts would break the check).
         prepare=("ALTER TABLE todos ALTER COLUMN note SET DEFAULT ''",
                  "UPDATE todos SET note = NULL WHERE id < 't-00100000'",
                  "VACUUM ANALYZE todos")),
    # Done-when: a migration queued behind a long transaction keeps the writers' worst
    # latency within the lock timeout (2 s) plus 100 ms, then succeeds. By hand: the same
    # ALTER with no lock timeout, as psql runs it by default.
    Kind("nullable column behind an 8 s transaction",
         None,
         [('migrator.add_fields("todos", extra=pw.TextField(null=True))',
           'migrator.remove_fields("todos", "extra")')],
         ["SET lock_timeout = 0", "ALTER TABLE todos ADD COLUMN extra text"],
         ["ALTER TABLE todos DROP COLUMN extra"], blocker=8.0),
    Kind("int -> bigint",
         ('migrator.change_fields("todos", score=pw.BigIntegerField(null=True))',
          'migrator.change_fields("todos", score=pw.IntegerField(null=True))'),
         [('expand(migrator, "todos", "score", "bigint")', 'unexpand(migrator, "todos", "score")'),
          ('fill_expanded(migrator, "todos", "score", "bigint")', "pass"),
          ('contract(migrator, "todos", "score", pw.BigIntegerField(null=True))',
           'uncontract(migrator, "todos", "score", pw.IntegerField(null=True), "integer")')],
         [], []),
    Kind("text -> varchar(255)",
         ('migrator.change_fields("todos", note=pw.CharField(max_length=255, null=True))',
          'migrator.change_fields("todos", note=pw.TextField(null=True))'),
         [('expand(migrator, "todos", "note", "varchar(255)")',
           'unexpand(migrator, "todos", "note")'),
          ('fill_expanded(migrator, "todos", "note", "varchar(255)")', "pass"),
          ('contract(migrator, "todos", "note", pw.CharField(max_length=255, null=True))',
           'uncontract(migrator, "todos", "note", pw.TextField(null=True), "text")')],
         [], []),
]


@dataclass
class Result:
    kind: str
    way: str
    worst_ms: float
    p99_ms: float
    writes: int
    errors: int
    seconds: float
    failure: str = ""  # the change itself failed (e.g. deadlocked with the writers)


def measure(url: str, kind: str, way: str, change: Callable[[], None]) -> Result:
    """Run ``change`` (apply and undo) with the writers running; time the writers."""
    failure = ""
    with Writers(url, processes=4) as writers:
        started = time.perf_counter()
        try:
            change()
        except Exception as exc:  # noqa: BLE001 - a way that fails is a result too
            failure = str(exc).splitlines()[0][:200]
        took = time.perf_counter() - started
    latencies = sorted(writers.latencies)
    p99 = latencies[int(len(latencies) * 0.99)] if latencies else 0.0
    result = Result(kind, way, writers.worst * 1000, p99 * 1000, len(latencies),
                    len(writers.errors), took, failure)
    print(f"{kind:44} {way:8} worst {result.worst_ms:7.0f} ms  p99 {result.p99_ms:5.0f} ms  "
          f"{result.writes:5} writes  {result.errors} errors  {took:6.1f} s"
          + (f"  FAILED: {failure}" if failure else ""), flush=True)
    return result


def through_migrate(project: Project, bodies: list[tuple[str, str]]) -> Callable[[], None]:
    names = [project.add(f"bench_{uuid.uuid4().hex[:6]}", up, down) for up, down in bodies]

    def change() -> None:
        try:
            assert migrations.migrate(project.url) == names
            assert migrations.rollback(project.url, count=len(names)) == names[::-1]
        finally:
            for name in names:  # the next way starts from the same migrations
                (project.folder / f"{name}.py").unlink()
    return change


def by_hand(url: str, statements: list[str], undo: list[str]) -> Callable[[], None]:
    def change() -> None:
        connection = psycopg2.connect(url)
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")
            for statement in [*statements, *undo]:
                cursor.execute(statement)
        connection.close()
    return change


def run(rows: int, kinds: list[Kind] = KINDS, ways: set[str] | None = None) -> list[Result]:
    name = f"bench_online_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(ADMIN_URL)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    folder = Path(tempfile.mkdtemp())
    try:
        project = make_project(url, folder)
        migrations.migrations_dir = lambda: project.folder  # type: ignore[assignment]
        migrations.migrate(url)
        project.add("bench_columns", *COLUMNS)
        migrations.migrate(url)
        _setup(url, rows)
        # the writers' own noise on this machine, with no change running
        results = [measure(url, "(no change: baseline)", "-", lambda: time.sleep(3))]
        ways = ways or {"plain", "online", "by hand"}
        for kind in kinds:
            if kind.plain and "plain" in ways:
                _sql(url, kind.prepare)
                results.append(measure(url, kind.name, "plain",
                                       through_migrate(project, [kind.plain])))
            if "online" in ways:
                _sql(url, kind.prepare)
                results.append(measure(url, kind.name, "online", _behind(
                    url, kind.blocker, through_migrate(project, kind.online))))
            if kind.hand and "by hand" in ways:
                _sql(url, kind.prepare)
                results.append(measure(url, kind.name, "by hand", _behind(
                    url, kind.blocker, by_hand(url, kind.hand, kind.hand_undo))))
        return results
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _behind(url: str, seconds: float, change: Callable[[], None]) -> Callable[[], None]:
    """``change``, started while a transaction that read todos stays open ``seconds``."""
    if not seconds:
        return change

    def behind() -> None:
        blocker = hold_todos(url, seconds=seconds)
        try:
            change()
        finally:
            blocker.join()
    return behind


def _sql(url: str, statements: tuple[str, ...]) -> None:
    connection = psycopg2.connect(url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
        if statements:  # as after the setup
            cursor.execute("CHECKPOINT")
    connection.close()


def _setup(url: str, rows: int) -> None:
    connection = psycopg2.connect(url)
    connection.autocommit = True
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for statement in SETUP:
            cursor.execute(statement.format(rows=rows))
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('todos'))")
        size = cursor.fetchone()[0]
    connection.close()
    print(f"{rows} todos ({size}) in {time.perf_counter() - started:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--kinds", default="", help="comma-separated change kinds (default: "
                        "all): " + ", ".join(k.name for k in KINDS))
    parser.add_argument("--ways", default="plain,online,by hand",
                        help="comma-separated: plain, online, by hand")
    parser.add_argument("--batch-ms", type=float, default=None,
                        help="the time a backfill batch is sized to take (default: "
                        "datalayer.migration_ops.steps.settings.batch_seconds)")
    args = parser.parse_args()
    if args.batch_ms is not None:
        steps.settings.batch_seconds = args.batch_ms / 1000
    wanted = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = set(wanted) - {k.name for k in KINDS}
    if unknown:
        parser.error(f"unknown kind(s): {', '.join(sorted(unknown))}")
    kinds = [k for k in KINDS if not wanted or k.name in wanted]
    results = run(args.rows, kinds, {w.strip() for w in args.ways.split(",")})
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=2))


if __name__ == "__main__":
    main()
