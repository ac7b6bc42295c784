"""Test fixtures: a real database per run (PostgreSQL or SQLite, by DATALAYER_TEST_BACKEND).

- ``txn``: the test runs inside a transaction that is rolled back afterwards.
- ``fresh_db``: a database of the test's own (cloned from a migrated template), for
  concurrency tests whose threads or processes commit on separate connections.
- ``query_counter``: counts the statements a block of code sends.
- ``pgbouncer``: the suite's PgBouncer (PostgreSQL only).

Fixtures only: the helpers tests import by name (``IS_PG``, ``postgres_only``,
``scratch_database``, ``direct_url``, ``race``, ...) live in ``helpers.py``.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import (
    IS_PG,
    PGBOUNCER,
    QueryCounter,
    build_schema,
    create_pg_database,
    db_name,
    disconnect,
    drop_pg_database,
    get_pgbouncer,
    pg_url,
    stop_pgbouncer,
)
from pgbouncer import PgBouncer

from datalayer import db, init_db

# A user's suite, run in a subprocess by test_user_suite.py against the installed plugin.
collect_ignore = ["user_suite"]

@pytest.fixture(scope="session", autouse=True)
def _stop_pgbouncer() -> Iterator[None]:
    yield
    stop_pgbouncer()


@pytest.fixture(scope="session")
def pgbouncer() -> PgBouncer:
    """A PgBouncer (transaction mode, pool of 3 per database) in front of the test server."""
    if not IS_PG:
        pytest.skip("needs PostgreSQL (DATALAYER_TEST_BACKEND)")
    return get_pgbouncer()


@pytest.fixture(scope="session")
def template_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database nothing stays connected to, cloned by ``fresh_db``."""
    if IS_PG:
        name = create_pg_database()
        try:
            build_schema(pg_url(name))
            disconnect()
            if PGBOUNCER:  # CREATE DATABASE ... TEMPLATE needs the template unconnected
                get_pgbouncer().release(name)
            yield pg_url(name)
        finally:
            drop_pg_database(name)
    else:
        path = tmp_path_factory.mktemp("template") / "template.sqlite3"
        build_schema(f"sqlite:///{path}")
        disconnect()
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


@pytest.fixture
def query_counter() -> Iterator[QueryCounter]:
    """Count the statements sent while the fixture is active (clear it with ``.statements``)."""
    counter = QueryCounter()
    db.obj.query_hooks.append(counter)
    try:
        yield counter
    finally:
        db.obj.query_hooks.remove(counter)
