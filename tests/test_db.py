"""The connection module: init_db, pooling, SQL logging, transactions, pooler guards, retrying."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading

import peewee
import pytest
from factories import make_user
from helpers import IS_PG, direct_url, postgres_only

from datalayer import ConflictError, atomic, db, init_db, retrying
from datalayer.connection.database import (
    PooledPostgresDB,
    PooledSqliteDB,
    SqliteDB,
    build_database,
    driver_url,
)
from datalayer.errors import ConnectionLostError, DataLayerError, PoolerSafetyError
from datalayer.models import User


def test_nothing_connects_at_import() -> None:
    code = "import datalayer, datalayer.queries, datalayer.models; print(datalayer.db.obj)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None"


def test_default_is_sqlite_file_in_working_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    database = build_database()
    try:
        assert isinstance(database, SqliteDB)
        assert database.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
        assert database.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert (tmp_path / "datalayer.sqlite3").exists()
    finally:
        database.close()


def test_database_url_is_read_at_call_time(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/from-env.sqlite3")
    database = build_database()
    assert database.database == f"{tmp_path}/from-env.sqlite3"


def test_pool_urls_and_option() -> None:
    assert isinstance(build_database("postgresql+pool://u@h/d"), PooledPostgresDB)
    pooled = build_database("postgresql://u@h/d", pool=True, max_connections=4)
    assert isinstance(pooled, PooledPostgresDB) and pooled._max_connections == 4
    assert isinstance(build_database("sqlite+pool:///x.db"), PooledSqliteDB)
    assert build_database("postgresql://u@h/d?pooler=transaction").pooler_mode == "transaction"
    with pytest.raises(DataLayerError, match="unsupported database URL scheme"):
        build_database("mysql://u@h/d")
    assert (
        driver_url("postgresql://u@h:6543/d?pooler=transaction&sslmode=require&lock_timeout=9")
        == "postgresql://u@h:6543/d?sslmode=require"
    )
    with pytest.raises(DataLayerError, match="need pool=True"):
        build_database("postgresql://u@h/d", max_connections=4)


def test_sql_logging(database_url, monkeypatch, caplog) -> None:
    monkeypatch.setenv("DATALAYER_LOG_SQL", "1")
    init_db(database_url)
    with caplog.at_level(logging.DEBUG, logger="datalayer.sql"):
        User.select().where(User.email == "nobody@example.com").count()
    records = [r.getMessage() for r in caplog.records if r.name == "datalayer.sql"]
    assert any("nobody@example.com" in m and " ms) SELECT" in m for m in records)
    monkeypatch.delenv("DATALAYER_LOG_SQL")
    init_db(database_url)
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="datalayer.sql"):
        User.select().count()
    assert not [r for r in caplog.records if r.name == "datalayer.sql"]


def test_atomic_nests_as_savepoint(txn) -> None:
    with atomic():
        make_user(email="outer@example.com")
        with pytest.raises(RuntimeError), atomic():
            make_user(email="inner@example.com")
            raise RuntimeError("roll back the savepoint only")
    emails = {u.email for u in User.select(User.email)}
    assert "outer@example.com" in emails and "inner@example.com" not in emails


def test_unique_violation_becomes_conflict(txn) -> None:
    from datalayer.errors import translate_errors

    make_user(email="dup@example.com")
    with pytest.raises(ConflictError), translate_errors(), atomic():
        make_user(email="dup@example.com")


@postgres_only
def test_pooler_mode_refuses_session_state(database_url) -> None:
    init_db(database_url, pooler="transaction")
    for statement in (
        "SET statement_timeout = 1000",
        "RESET ALL",
        "LISTEN jobs",
        "SELECT pg_advisory_lock(1)",
        "SELECT pg_try_advisory_lock_shared(1)",
        "SELECT set_config('app.v', 'x', false)",
        "PREPARE q AS SELECT 1",
        "CREATE TEMP TABLE scratch (x int)",
        "DECLARE c0 CURSOR FOR SELECT 1",
    ):
        with pytest.raises(PoolerSafetyError):
            db.execute_sql(statement)
    with pytest.raises(PoolerSafetyError):
        db.obj.named_cursor("c1")
    with db.atomic():
        db.execute_sql("SET LOCAL statement_timeout = 1000")
        db.execute_sql("SELECT set_config('app.v', 'x', true)")
        db.execute_sql("SELECT pg_advisory_xact_lock(1)")
        db.execute_sql("CREATE TEMP TABLE scratch (x int) ON COMMIT DROP")
        db.execute_sql("DECLARE c3 CURSOR FOR SELECT 1")
        with pytest.raises(PoolerSafetyError):
            db.execute_sql("DECLARE c4 CURSOR WITH HOLD FOR SELECT 1")
        assert db.execute_sql("SHOW statement_timeout").fetchone()[0] == "1s"
        db.obj.named_cursor("c2").close()
    init_db(direct_url(database_url))
    db.execute_sql("SELECT pg_advisory_lock(2), pg_advisory_unlock(2)")  # allowed when direct
    init_db(database_url)


@postgres_only
def test_timeouts_are_transaction_local(database_url) -> None:
    init_db(database_url, statement_timeout=1234, lock_timeout=567)
    default = db.execute_sql("SHOW statement_timeout").fetchone()[0]
    with db.atomic():
        assert db.execute_sql("SHOW statement_timeout").fetchone()[0] == "1234ms"
        assert db.execute_sql("SHOW lock_timeout").fetchone()[0] == "567ms"
    assert db.execute_sql("SHOW statement_timeout").fetchone()[0] == default
    with pytest.raises(peewee.DatabaseError), db.atomic():
        db.execute_sql("SELECT pg_sleep(2)")
    init_db(database_url)


@postgres_only
def test_retrying_recovers_from_serialization_failure_and_lost_connection(fresh_db) -> None:
    attempts = []

    def unit() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            db.execute_sql("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$")
        if len(attempts) == 2:
            db.execute_sql("SELECT pg_terminate_backend(pg_backend_pid())")
        return make_user(email="retried@example.com").id

    user_id = retrying(unit, base_delay=0.01)
    assert len(attempts) == 3
    assert User.select().where(User.email == "retried@example.com").count() == 1
    assert User.get_by_id(user_id)


def test_retrying_gives_up_and_does_not_retry_other_errors(fresh_db) -> None:
    calls = []

    def duplicate() -> None:
        calls.append(1)
        make_user(email="same@example.com")

    retrying(duplicate)
    with pytest.raises(ConflictError):
        retrying(duplicate)
    assert len(calls) == 2  # a unique violation is not retried

    def always_lost() -> None:
        calls.append(1)
        raise ConnectionLostError("gone")

    calls.clear()
    with pytest.raises(ConnectionLostError):
        retrying(always_lost, attempts=3, base_delay=0.001)
    assert len(calls) == 3


@postgres_only
def test_pool_leaks_no_slots_with_many_threads(database_url) -> None:
    init_db(database_url, pool=True, max_connections=4, timeout=30)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                with db.connection_context():
                    db.execute_sql("SELECT pg_sleep(0.001)")
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(db.obj._in_use) == 0
    assert len(db.obj._connections) <= 4
    db.obj.close_all()
    init_db(database_url)


def test_backend_is_what_the_tests_asked_for(database_url) -> None:
    init_db(database_url)
    assert isinstance(db.obj, peewee.PostgresqlDatabase) == IS_PG
