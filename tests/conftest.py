"""Test fixtures: a real database per run (PostgreSQL or SQLite, by DATALAYER_TEST_BACKEND).

- ``txn``: the test runs inside a transaction that is rolled back afterwards.
- ``fresh_db``: a database of the test's own (cloned from a migrated template), for
  concurrency tests whose threads or processes commit on separate connections.
- ``query_counter``: counts the statements a block of code sends.

With ``DATALAYER_TEST_PGBOUNCER=1`` (PostgreSQL), every URL handed to the library goes
through a private PgBouncer in transaction mode with ``?pooler=transaction`` (the
library's guards on); creating, cloning and dropping databases stays direct.
``direct_url(url)`` gives the direct URL for tests that need a session of their own.
"""

from __future__ import annotations

import atexit
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import psycopg2
import pytest
from pgbouncer import PgBouncer

from datalayer import db, init_db

BACKEND = os.environ.get("DATALAYER_TEST_BACKEND", "sqlite")
PG_ADMIN_URL = os.environ.get(
    "DATALAYER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IS_PG = BACKEND == "postgres"
PGBOUNCER = IS_PG and os.environ.get("DATALAYER_TEST_PGBOUNCER", "") == "1"

postgres_only = pytest.mark.skipif(not IS_PG, reason="needs PostgreSQL (DATALAYER_TEST_BACKEND)")


def pg_direct_url(name: str) -> str:
    """Return the direct URL of database ``name`` on the test server."""
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def pg_url(name: str) -> str:
    """Return the URL the library uses for database ``name`` (through PgBouncer if asked)."""
    if PGBOUNCER:
        return get_pgbouncer().url(name, pooler="transaction")
    return pg_direct_url(name)


def db_name(url: str) -> str:
    """Return the database name of a PostgreSQL URL."""
    return urlparse(url).path.lstrip("/")


def direct_url(url: str) -> str:
    """Return the direct (no PgBouncer, no pooler guards) URL of a test database."""
    return pg_direct_url(db_name(url)) if IS_PG else url


_pgbouncer: PgBouncer | None = None


def get_pgbouncer() -> PgBouncer:
    """Return the suite's PgBouncer in front of the test server, started on first use."""
    global _pgbouncer
    if _pgbouncer is None:
        _pgbouncer = PgBouncer(PG_ADMIN_URL, pool_size=3).start()
        atexit.register(_pgbouncer.stop)  # also when no test ran to stop it
    return _pgbouncer


@pytest.fixture(scope="session", autouse=True)
def _stop_pgbouncer() -> Iterator[None]:
    yield
    if _pgbouncer is not None:
        _disconnect()
        _pgbouncer.stop()


@pytest.fixture(scope="session")
def pgbouncer() -> PgBouncer:
    """A PgBouncer (transaction mode, pool of 3 per database) in front of the test server."""
    if not IS_PG:
        pytest.skip("needs PostgreSQL (DATALAYER_TEST_BACKEND)")
    return get_pgbouncer()


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


@contextmanager
def scratch_database(tmp_path: Path) -> Iterator[str]:
    """Yield the (direct) URL of a new, empty database of the caller's own; drop it after."""
    if not IS_PG:
        yield f"sqlite:///{tmp_path / f'scratch_{uuid.uuid4().hex[:8]}.sqlite3'}"
        return
    name = create_pg_database()
    try:
        yield pg_direct_url(name)
    finally:
        drop_pg_database(name)


def _disconnect() -> None:
    if db.obj is not None:
        db.close()


def build_schema(url: str) -> None:
    """Build the schema the way users do: by running the migrations."""
    from datalayer.evolve.migrate import migrate

    migrate(url)


@pytest.fixture(scope="session")
def template_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database nothing stays connected to, cloned by ``fresh_db``."""
    if IS_PG:
        name = create_pg_database()
        try:
            build_schema(pg_url(name))
            _disconnect()
            if PGBOUNCER:  # CREATE DATABASE ... TEMPLATE needs the template unconnected
                get_pgbouncer().release(name)
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
        if PGBOUNCER:
            get_pgbouncer().release(db_name(template))
        name = create_pg_database(db_name(template))
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
