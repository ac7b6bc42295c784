"""Test fixtures: a real database per run (PostgreSQL or SQLite, by DATALAYER_TEST_BACKEND).

- ``txn``: the test runs inside a transaction that is rolled back afterwards.
- ``fresh_db``: a database of the test's own (cloned from a migrated template), for
  concurrency tests whose threads or processes commit on separate connections.
- ``query_counter``: counts the statements a block of code sends.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import pytest

from datalayer import db, init_db

BACKEND = os.environ.get("DATALAYER_TEST_BACKEND", "sqlite")
PG_ADMIN_URL = os.environ.get(
    "DATALAYER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IS_PG = BACKEND == "postgres"

postgres_only = pytest.mark.skipif(not IS_PG, reason="needs PostgreSQL (DATALAYER_TEST_BACKEND)")


def pg_url(name: str) -> str:
    """Return the URL of database ``name`` on the test server."""
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def _admin(sql: str) -> None:
    conn = psycopg2.connect(PG_ADMIN_URL)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def create_pg_database(template: str | None = None) -> str:
    """Create an empty (or cloned) PostgreSQL database with a unique name; return its name."""
    name = f"dltest_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return name


def drop_pg_database(name: str) -> None:
    """Drop a test database, disconnecting whoever still uses it."""
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _disconnect() -> None:
    if db.obj is not None:
        db.close()


def build_schema(url: str) -> None:
    """Build the schema the way users do: by running the migrations."""
    try:
        from datalayer.migrate import migrate
    except ImportError:  # TEMPORARY until the migration runner lands
        from datalayer.models import create_all

        init_db(url)
        create_all(db.obj)
        return
    migrate(url)


@pytest.fixture(scope="session")
def template_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database nothing stays connected to, cloned by ``fresh_db``."""
    if IS_PG:
        name = create_pg_database()
        try:
            build_schema(pg_url(name))
            _disconnect()
            yield pg_url(name)
        finally:
            drop_pg_database(name)
    else:
        path = tmp_path_factory.mktemp("template") / "template.sqlite3"
        build_schema(f"sqlite:///{path}")
        _disconnect()
        yield f"sqlite:///{path}"


@contextmanager
def _clone(template: str, tmp_dir: Path) -> Iterator[str]:
    if IS_PG:
        name = create_pg_database(template.rsplit("/", 1)[1])
        try:
            yield pg_url(name)
        finally:
            drop_pg_database(name)
    else:
        target = tmp_dir / f"db_{uuid.uuid4().hex[:8]}.sqlite3"
        shutil.copy(template.removeprefix("sqlite:///"), target)
        yield f"sqlite:///{target}"


@pytest.fixture(scope="session")
def database_url(template_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The database the rolled-back tests share."""
    with _clone(template_url, tmp_path_factory.mktemp("session")) as url:
        yield url


@pytest.fixture
def txn(database_url: str) -> Iterator[None]:
    """Run the test in a transaction that is rolled back afterwards."""
    if db.obj is None or getattr(db.obj, "_test_url", None) != database_url:
        init_db(database_url)
        db.obj._test_url = database_url
    with db.atomic() as transaction:
        yield
        transaction.rollback()


@pytest.fixture
def fresh_db(template_url: str, tmp_path: Path) -> Iterator[str]:
    """A migrated database of this test's own, bound to ``db``; its URL is yielded."""
    with _clone(template_url, tmp_path) as url:
        init_db(url)
        try:
            yield url
        finally:
            db.close()
            db.obj._test_url = None


class QueryCounter:
    """Counts statements sent through ``db`` while active."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    @property
    def count(self) -> int:
        return len(self.statements)

    def __call__(self, event) -> None:  # peewee query hook
        self.statements.append(event.sql)


@pytest.fixture
def query_counter() -> Iterator[QueryCounter]:
    """Count the statements sent while the fixture is active (clear it with ``.statements``)."""
    counter = QueryCounter()
    db.obj.query_hooks.append(counter)
    try:
        yield counter
    finally:
        db.obj.query_hooks.remove(counter)
