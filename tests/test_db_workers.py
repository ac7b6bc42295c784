"""Long-running workers: fork safety, recovery from a killed connection, lock timeouts."""

from __future__ import annotations

import multiprocessing
import threading
import time
from typing import Any

import peewee
import psycopg2
import pytest
from factories import make_user
from helpers import direct_url, postgres_only

from datalayer import connection_context, db, init_db, retrying
from datalayer.connection.database import build_database
from datalayer.errors import QueryTimeoutError
from datalayer.models import User
from datalayer.queries.base import write

pytestmark = postgres_only


def pool_options(pool: bool) -> dict[str, Any]:
    return {"pool": True, "max_connections": 4} if pool else {}


def backend_pid() -> int:
    return int(db.execute_sql("SELECT pg_backend_pid()").fetchone()[0])


def terminate(url: str, pid: int) -> None:
    """End a server session from outside, as a restart or an idle timeout would."""
    conn = psycopg2.connect(direct_url(url))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
    conn.close()


def _child(queue: Any) -> None:
    try:
        pids = [backend_pid() for _ in range(3)]
        db.close()
        queue.put(pids)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        queue.put(repr(exc))


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.parametrize("pool", [False, True], ids=["plain", "pooled"])
def test_forked_child_never_touches_the_parents_connections(fresh_db, pool) -> None:
    # Direct, so a backend pid identifies a session (through PgBouncer it varies).
    init_db(direct_url(fresh_db), **pool_options(pool))
    parent = backend_pid()
    held: dict[str, int] = {}
    ready, go = threading.Event(), threading.Event()

    def holder() -> None:  # another thread keeps its own connection across the fork
        held["before"] = backend_pid()
        ready.set()
        go.wait(30)
        try:
            held["after"] = backend_pid()
        finally:
            db.close()

    thread = threading.Thread(target=holder)
    thread.start()
    ready.wait(30)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=_child, args=(queue,))
    process.start()
    child = queue.get(timeout=30)
    process.join(30)
    go.set()
    thread.join(30)

    assert process.exitcode == 0
    assert isinstance(child, list), child
    assert not {parent, held["before"]} & set(child)  # the child opened its own session
    assert backend_pid() == parent  # and both parent sessions are alive and unchanged
    assert held["after"] == held["before"]
    db.close()


@pytest.mark.parametrize("pool", [False, True], ids=["plain", "pooled"])
def test_worker_recovers_after_its_connection_is_killed(fresh_db, pool) -> None:
    init_db(direct_url(fresh_db), **pool_options(pool))
    for _ in range(2):
        with connection_context():  # one unit of work
            pid = backend_pid()
            terminate(fresh_db, pid)
            with pytest.raises((peewee.OperationalError, peewee.InterfaceError)):
                db.execute_sql("SELECT 1")  # this statement learns the session is gone
            assert backend_pid() != pid  # the next one runs on a new connection
    assert db.is_closed()
    if pool:
        assert len(db.obj._in_use) == 0


def test_lock_wait_beyond_lock_timeout_is_a_datalayer_error(fresh_db) -> None:
    user = make_user(email="locked@example.com")
    blocker = psycopg2.connect(direct_url(fresh_db))
    try:
        with blocker.cursor() as cur:  # holds the row lock in an open transaction
            cur.execute('UPDATE "user" SET name = %s WHERE id = %s', ("blocker", user.id))
        init_db(fresh_db, lock_timeout=200)

        def rename() -> int:
            return User.update(name="waiter").where(User.id == user.id).execute()

        for attempt in (lambda: retrying(rename), lambda: _in_write(rename)):
            started = time.monotonic()
            with pytest.raises(QueryTimeoutError, match="lock timeout") as info:
                attempt()
            assert not isinstance(info.value, peewee.PeeweeException)
            assert time.monotonic() - started < 5
    finally:
        blocker.rollback()
        blocker.close()
    assert User.get_by_id(user.id).name != "waiter"


def test_statement_beyond_statement_timeout_is_a_datalayer_error(fresh_db) -> None:
    init_db(fresh_db, statement_timeout=200)
    with pytest.raises(QueryTimeoutError, match="statement timeout") as info:
        retrying(lambda: db.execute_sql("SELECT pg_sleep(3)"))
    assert not isinstance(info.value, peewee.PeeweeException)
    assert db.execute_sql("SELECT 1").fetchone()[0] == 1  # the connection is still fine


def _in_write(fn: Any) -> Any:
    with write():
        return fn()


def test_connect_timeout_is_an_option(fresh_db) -> None:
    assert build_database(fresh_db).connect_params["connect_timeout"] == 10
    assert build_database(fresh_db, connect_timeout=3).connect_params["connect_timeout"] == 3
    unreachable = build_database("postgresql://postgres@10.255.255.1:5432/x", connect_timeout=1)
    started = time.monotonic()
    with pytest.raises(peewee.OperationalError):
        unreachable.connect()
    # A hang stop, not a speed check: libpq waits at least 2 s (its minimum); without the
    # option the kernel's SYN retries take about 2 minutes.
    assert time.monotonic() - started < 30
