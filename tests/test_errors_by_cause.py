"""Errors by cause: what went wrong decides the class, and the message says what to do.

- ``ConnectionLostError`` (retryable) only for a dropped or unreachable server;
- ``ConfigurationError`` (never retried) for a wrong URL, credentials or database name,
  a call before ``init_db()``, an unmigrated or outdated schema;
- ``PoolExhaustedError`` when no pooled connection frees up in time.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
from helpers import IS_PG, PG_ADMIN_URL, scratch_database

from datalayer import (
    DataLayerError,
    TodoQueries,
    UserQueries,
    connection_context,
    db,
    init_db,
    retrying,
)
from datalayer.errors import ConfigurationError, ConnectionLostError, PoolExhaustedError


def _server(path: str) -> str:
    """A URL on the test server (direct, never through PgBouncer) with another user/db."""
    return PG_ADMIN_URL.split("://", 1)[0] + "://" + path


def _no_retry(caplog: pytest.LogCaptureFixture, fn) -> ConfigurationError:  # noqa: ANN001
    calls = []

    def unit() -> None:
        calls.append(1)
        fn()

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="datalayer.connection.retrying"), pytest.raises(
        ConfigurationError
    ) as info:
        retrying(unit, attempts=5, base_delay=0.001)
    assert not [r for r in caplog.records if r.name == "datalayer.connection.retrying"], "it was retried"
    assert len(calls) <= 1
    return info.value


@pytest.fixture
def unbound():
    """Leave ``db`` bound to nothing (or something broken) for the test; rebind after."""
    previous = db.obj
    yield
    if db.obj is not None and db.obj is not previous:
        db.obj.close()
    db.initialize(None)  # the next txn/fresh_db fixture binds again


def test_wrong_role_is_configuration_not_connection_lost(unbound, caplog) -> None:
    if not IS_PG:
        pytest.skip("credentials are a PostgreSQL matter")
    init_db(_server("no_such_role_dl@127.0.0.1:5432/postgres"))
    with pytest.raises(ConfigurationError) as info:
        UserQueries.find_by_id("u1")
    assert not isinstance(info.value, ConnectionLostError)
    assert "no_such_role_dl" in str(info.value) and "DATABASE_URL" in str(info.value)
    error = _no_retry(caplog, lambda: UserQueries.find_by_id("u1"))
    assert not isinstance(error, ConnectionLostError)


def test_missing_database_is_configuration(unbound, tmp_path, caplog) -> None:
    if IS_PG:
        init_db(_server("postgres@127.0.0.1:5432/no_such_database_dl"))
    else:
        init_db(f"sqlite:///{tmp_path}/no/such/dir/db.sqlite3")
    with pytest.raises(ConfigurationError) as info:
        TodoQueries.find_by_id("t1")
    assert "DATABASE_URL" in str(info.value)
    _no_retry(caplog, lambda: TodoQueries.find_by_id("t1"))


def test_unreachable_server_is_connection_lost_and_retried(unbound, caplog) -> None:
    init_db(_server("postgres@127.0.0.1:1/postgres"), connect_timeout=2)
    with pytest.raises(ConnectionLostError):
        UserQueries.find_by_id("u1")
    with caplog.at_level(logging.WARNING, logger="datalayer.connection.retrying"), pytest.raises(
        ConnectionLostError
    ):
        retrying(lambda: UserQueries.find_by_id("u1"), attempts=3, base_delay=0.001)
    assert len([r for r in caplog.records if r.name == "datalayer.connection.retrying"]) == 2


def test_call_before_init_db_is_configuration(unbound) -> None:
    db.initialize(None)
    for call in (
        lambda: UserQueries.find_by_id("u1"),
        lambda: TodoQueries.find_by_id("t1"),
        lambda: TodoQueries.list_for_user("u1"),
        lambda: UserQueries.create({"name": "N", "email": "n@example.com"}),
    ):
        with pytest.raises(ConfigurationError, match=r"init_db\(\)"):
            call()


def test_unmigrated_database_says_run_migrate(unbound, tmp_path, caplog) -> None:
    with scratch_database(tmp_path) as url:
        init_db(url)
        for call in (
            lambda: UserQueries.find_by_id("u1"),
            lambda: TodoQueries.find_by_id("t1"),
            lambda: UserQueries.create({"name": "N", "email": "n@example.com"}),
        ):
            with pytest.raises(ConfigurationError, match="run `datalayer migrate`"):
                call()
        _no_retry(caplog, lambda: UserQueries.find_by_id("u1"))
        db.close()


def test_outdated_schema_says_run_migrate(fresh_db) -> None:
    db.execute_sql('ALTER TABLE "todos" RENAME COLUMN "description" TO "old_description"')
    with pytest.raises(ConfigurationError, match="run `datalayer migrate`"):
        TodoQueries.find_by_id("t1")


def test_sqlite_url_with_two_slashes_is_configuration(unbound) -> None:
    with pytest.raises(ConfigurationError, match="sqlite:///relative.db"):
        init_db("sqlite://relative.db")


@pytest.mark.parametrize(
    "bad",
    [
        {"url": 5},
        {"statement_timeout": "soon"},
        {"lock_timeout": -5},
        {"slow_query_ms": "slow"},
        {"query": "?slow_query_ms=-1"},
    ],
    ids=repr,
)
def test_bad_options_are_configuration(unbound, tmp_path, bad: dict[str, Any]) -> None:
    options = dict(bad)
    url = options.pop("url", f"sqlite:///{tmp_path}/options.sqlite3" + options.pop("query", ""))
    with pytest.raises(ConfigurationError):
        init_db(url, **options)


def test_bad_urls_are_configuration(unbound, tmp_path) -> None:
    with pytest.raises(ConfigurationError):
        init_db("mysql://u@h/d")
    with pytest.raises(ConfigurationError) as info:
        init_db("postgresql://u:hunter2@h:5432/")
    assert "hunter2" not in str(info.value)
    if IS_PG:
        init_db(_server("postgres@127.0.0.1:5432/postgres?no_such_option=1"))
        with pytest.raises(ConfigurationError):
            UserQueries.find_by_id("u1")


def test_exhausted_pool_is_pool_exhausted(database_url, unbound) -> None:
    init_db(database_url, pool=True, max_connections=1, timeout=0.2)
    holding, done = threading.Event(), threading.Event()

    def hold() -> None:
        with db.connection_context():
            db.execute_sql("SELECT 1")
            holding.set()
            done.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        with pytest.raises(PoolExhaustedError) as info, connection_context():
            UserQueries.find_by_id("u1")
        assert time.monotonic() - started < 5
        assert isinstance(info.value, DataLayerError)
        assert "max_connections" in str(info.value)
        with pytest.raises(PoolExhaustedError):
            UserQueries.find_by_id("u1")
    finally:
        done.set()
        thread.join()
        db.obj.close_all()
