"""Helpers for the online-migration tests and benchmark: a migrations folder of one's
own, a populated todos table, and writer threads that time every write."""

from __future__ import annotations

import multiprocessing
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import peewee as pw

from datalayer.connection.database import build_database
from datalayer.evolve import migrate as migrations

HEADER = '''"""{doc}"""

import peewee as pw
from peewee_migrate import Migrator

from datalayer.migration_ops import ServerDefault, add_check, add_index, drop_check, drop_index
from datalayer.migration_ops.online import *  # noqa: F403


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
{up}


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
{down}
'''


@contextmanager
def connected(url: str) -> Iterator[Any]:
    database = build_database(url)
    database.connect()
    try:
        yield database
    finally:
        database.close()


class Project:
    """A copy of the shipped migrations that a test adds migrations to."""

    def __init__(self, url: str, folder: Path) -> None:
        self.url, self.folder = url, folder

    def add(self, name: str, up: str, down: str = "pass", doc: str = "test") -> str:
        number = len(list(self.folder.glob("[0-9][0-9][0-9]_*.py"))) + 1
        stem = f"{number:03d}_{name}"
        indent = lambda code: "\n".join("    " + line for line in code.strip().splitlines())  # noqa: E731
        (self.folder / f"{stem}.py").write_text(
            HEADER.format(doc=doc, up=indent(up), down=indent(down)))
        return stem

    def values(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with connected(self.url) as database:
            return [tuple(r) for r in database.execute_sql(sql, params or None).fetchall()]

    def pending(self) -> list[str]:
        return migrations.status(self.url)[1]


def make_project(url: str, tmp_path: Path) -> Project:
    """Copy the shipped migrations into ``tmp_path`` (the caller points migrate there)."""
    folder = tmp_path / "migrations"
    shutil.copytree(migrations.migrations_dir(), folder,
                    ignore=shutil.ignore_patterns("__pycache__"))
    return Project(url, folder)


def populate(url: str, todos: int) -> None:
    """Give one user ``todos`` todos, titled ``todo 0`` … (a bulk INSERT)."""
    with connected(url) as database:
        p = database.param
        with database.atomic():
            database.execute_sql(f'INSERT INTO "user" (id, name, email) VALUES ({p}, {p}, {p})',
                                 ("u-1", "Writer", "writer@example.com"))
            rows = [(f"t-{i:08d}", "u-1", f"todo {i}") for i in range(todos)]
            for start in range(0, len(rows), 500):
                chunk = rows[start:start + 500]
                database.execute_sql(
                    "INSERT INTO todos (id, user_id, title) VALUES "
                    + ", ".join(f"({p}, {p}, {p})" for _ in chunk),
                    tuple(v for row in chunk for v in row))


class Writers:
    """Processes that each insert a todo and update another in a loop, on their own
    connections, timing every write; ``worst`` is the longest wait seen.

    Processes, not threads: peewee_migrate replays applied migrations with
    ``peewee.Database.execute_sql`` patched process-wide, which would fake their writes.
    """

    def __init__(self, url: str, *, processes: int = 2, pause: float = 0.02) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._results: Any = context.Queue()
        self._ready: Any = context.Queue()
        self._processes = [context.Process(target=_write, daemon=True, args=(
            url, pause, self._stop, self._results, self._ready))
                           for _ in range(processes)]
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.written: dict[str, int] = {}

    def __enter__(self) -> Writers:
        for process in self._processes:
            process.start()
        for _ in self._processes:  # each has written once: they are all running
            self._ready.get(timeout=120)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for _ in self._processes:
            latencies, errors, written = self._results.get(timeout=120)
            self.latencies += latencies
            self.errors += errors
            self.written.update(written)
        for process in self._processes:
            process.join(timeout=60)

    @property
    def worst(self) -> float:
        return max(self.latencies, default=0.0)


def _write(url: str, pause: float, stop: Any, results: Any, ready: Any) -> None:
    database = build_database(url)
    database.connect()
    p = database.param
    latencies: list[float] = []
    errors: list[str] = []
    written: dict[str, int] = {}
    n = 0
    try:
        while not stop.is_set():
            n += 1
            todo = f"w-{uuid.uuid4().hex}"
            started = time.perf_counter()
            inserted = database.execute_sql(
                f"INSERT INTO todos (id, user_id, title) VALUES ({p}, {p}, {p})",
                (todo, "u-1", f"written {n}")).rowcount
            database.execute_sql(f"UPDATE todos SET title = {p} WHERE id = {p}",
                                 (f"updated {n}", f"t-{n % 50:08d}"))
            latencies.append(time.perf_counter() - started)
            if inserted != 1:
                raise AssertionError(f"INSERT of {todo} inserted {inserted} rows")
            written[todo] = n
            if n == 1:
                ready.put(True)
            time.sleep(pause)
    except (pw.PeeweeException, AssertionError) as exc:
        errors.append(repr(exc))
    finally:
        database.close()
        results.put((latencies, errors, written))


def hold_todos(url: str, *, seconds: float) -> threading.Thread:
    """Start a transaction that reads todos (ACCESS SHARE) and ends after ``seconds``."""
    ready = threading.Event()

    def hold() -> None:
        with connected(url) as database, database.atomic():
            database.execute_sql("SELECT count(*) FROM todos").fetchone()
            ready.set()
            time.sleep(seconds)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert ready.wait(30)
    return thread
