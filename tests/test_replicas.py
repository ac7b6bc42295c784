"""Read replicas (datalayer.connection.replicas) on a real primary + streaming hot standby of their own.

The PostgreSQL tests build a private pair (tests/pg_replica.py: initdb, pg_basebackup -R
-X stream, fsync on as in production) and never use the shared test server. Both servers
log every statement with its application name, and each test connects under a name of
its own, so "served by the replica" is counted where it happened: in the standby's log.

The unit tests at the end run on both backends: without replicas (and on SQLite) nothing
changes — same statements, no write tracking.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from factories import make_user
from helpers import IS_PG, postgres_only
from pg_replica import ReplicaPair

from datalayer import (
    AccountQueries,
    AuditLogQueries,
    NotificationQueries,
    SubscriptionQueries,
    TenantActivityQueries,
    TenantMemberQueries,
    TenantQueries,
    TodoQueries,
    UserActivityQueries,
    WaitlistQueries,
    db,
    init_db,
)
from datalayer.connection import replicas
from datalayer.connection.replicas import replayable, replica_read
from datalayer.evolve.migrate import migrate

_names = itertools.count(1)
WRITES = ("INSERT", "UPDATE", "DELETE", "COPY", "MERGE", "TRUNCATE")


# --- the pair and the binding -----------------------------------------------------------


@pytest.fixture(scope="module")
def pair() -> Iterator[ReplicaPair]:
    """A primary and a streaming hot standby with the migrated schema, for this module."""
    cluster = ReplicaPair(fsync=True, log_statements=True)
    cluster.start()
    try:
        conn = cluster.connect()
        try:
            conn.cursor().execute("CREATE DATABASE dl")
        finally:
            conn.close()
        migrate(cluster.url("dl"))
        cluster.wait_replayed()  # the schema is on the standby before any test reads there
        yield cluster
    finally:
        _unbind()
        cluster.stop()


def _unbind() -> None:
    if db.obj is not None:
        replicas.configure(db.obj, {})
        db.close()
        db.obj._test_url = None


@pytest.fixture
def bind(pair: ReplicaPair) -> Iterator[Callable[..., str]]:
    """``bind(**options)``: init_db on the pair's primary with its standby as replica.

    Returns the application name the test's connections use on both servers.
    """

    def bind_(**options: Any) -> str:
        app = f"dlrep{next(_names)}"
        settings = {"replica_retry_seconds": 0.5, "replica_check_seconds": 0.2, **options}
        init_db(
            pair.url("dl", application_name=app),
            replica_urls=[pair.url("dl", standby=True, application_name=app)],
            **settings,
        )
        replicas.reset_stats()
        return app

    yield bind_
    _unbind()


def _reads(
    pair: ReplicaPair, app: str, *, standby: bool, since: int = 0, table: str = "todos"
) -> int:
    """Reads of ``table`` a server ran for ``app``."""
    return sum(
        1
        for sql in pair.statements(standby=standby, application=app, since=since)
        if sql.startswith("SELECT") and f'FROM "{table}"' in sql
    )


def _writes(pair: ReplicaPair, app: str, *, standby: bool) -> list[str]:
    statements = pair.statements(standby=standby, application=app)
    return [sql for sql in statements if sql.split(" ", 1)[0].upper() in WRITES]


def _cycle(user_id: str, n: int) -> bool:
    """Write a todo, then read the user's newest; tell whether the read missed the write."""
    todo = TodoQueries.create(user_id, {"title": f"todo {n}"})
    page = TodoQueries.list_for_user(user_id, limit=3)
    return todo["id"] not in [item["id"] for item in page["items"]]


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


# --- read-your-writes ---------------------------------------------------------------------


@postgres_only
def test_1000_writes_then_reads_are_never_stale_and_the_replica_serves_them(bind, pair) -> None:
    app = bind(replica_wait_ms=2000)
    user = make_user()
    stale = sum(_cycle(user.id, n) for n in range(1000))
    assert stale == 0
    on_replica, on_primary = _reads(pair, app, standby=True), _reads(pair, app, standby=False)
    assert on_replica + on_primary == 1000
    assert on_replica >= 950, f"only {on_replica} of 1000 reads on the replica"
    assert replicas.stats()["replica"] == on_replica
    waits = replicas.stats()["fence_waits"]
    assert len(waits) == 1000  # every read followed a write: each paid the fence once
    print(
        f"\nfence wait over 1000 write-then-read cycles: median {_ms(waits, 0.5):.2f} ms, "
        f"p99 {_ms(waits, 0.99):.2f} ms; {on_replica} reads on the replica"
    )


@postgres_only
def test_without_the_fence_the_same_loop_reads_stale_rows(bind, pair) -> None:
    """Proves the test above can see stale reads: the same loop, fence off."""
    app = bind(replica_read_your_writes=False)
    user = make_user()
    stale = sum(_cycle(user.id, n) for n in range(1000))
    print(f"\nwithout the fence: {stale} of 1000 reads missed the write just made")
    assert stale > 0
    assert _reads(pair, app, standby=True) == 1000
    assert replicas.stats().get("fence_waits") == []


@postgres_only
def test_writes_never_reach_the_replica(bind, pair) -> None:
    app = bind()
    user = make_user()
    for n in range(50):
        _cycle(user.id, n)
        NotificationQueries.unread_count(user.id)
    assert _writes(pair, app, standby=True) == []
    assert pair.statements(standby=True, application=app, kind="ERROR") == []
    inserts = [sql for sql in _writes(pair, app, standby=False) if 'INTO "todos"' in sql]
    assert len(inserts) == 50
    # Both ways queries run reach the replica: compiled statements (TodoQueries) and
    # peewee queries through the ``db`` proxy (NotificationQueries).
    assert _reads(pair, app, standby=True) == 50
    assert _reads(pair, app, standby=True, table="notifications") == 50
    assert _reads(pair, app, standby=False, table="notifications") == 0


@postgres_only
def test_reads_in_a_transaction_and_unmarked_reads_use_the_primary(bind, pair) -> None:
    app = bind()
    user = make_user()
    todo = TodoQueries.create(user.id, {"title": "committed"})
    assert [item["id"] for item in TodoQueries.list_for_user(user.id)["items"]] == [todo["id"]]
    assert _reads(pair, app, standby=True) == 1  # fenced, then on the replica
    with db.atomic():  # a read-only transaction: no pending write, still the primary
        assert TodoQueries.list_for_user(user.id)["items"]
    with db.atomic() as transaction:
        draft = TodoQueries.create(user.id, {"title": "uncommitted"})
        page = TodoQueries.list_for_user(user.id)  # sees the transaction's own write
        assert [item["id"] for item in page["items"]] == [draft["id"], todo["id"]]
        transaction.rollback()
    assert TodoQueries.find_by_id(todo["id"]) is not None  # not marked replica-safe
    assert _reads(pair, app, standby=True) == 1
    assert _reads(pair, app, standby=False) == 3


@postgres_only
def test_database_replica_urls_configures_replicas(pair, monkeypatch) -> None:
    app = f"dlrep{next(_names)}"
    monkeypatch.setenv(
        "DATABASE_REPLICA_URLS", f" {pair.url('dl', standby=True, application_name=app)} ,"
    )
    try:
        init_db(pair.url("dl", application_name=app))
        assert [r["url"] for r in replicas.status()] == [
            pair.url("dl", standby=True, application_name=app)
        ]
        user = make_user()
        assert not _cycle(user.id, 0)
        assert _reads(pair, app, standby=True) == 1
    finally:
        _unbind()


@postgres_only
def test_a_pooled_primary_gets_pooled_replicas_whose_connections_go_back_after_each_read(
    bind, pair
) -> None:
    app = bind(pool=True, max_connections=2)
    user = make_user()
    assert not any(_cycle(user.id, n) for n in range(20))
    assert _reads(pair, app, standby=True) == 20
    (status,) = replicas.status()
    replica_db = replicas._router.replicas[0].database  # type: ignore[union-attr]
    assert hasattr(replica_db, "close_idle")  # pooled, like the primary
    assert replica_db.is_closed()  # this thread holds none between reads
    assert len(replica_db._connections) == 1  # one connection, idle in the pool, reused
    assert status["healthy"] is True


# --- contexts: per thread, or carried by a token -----------------------------------------


def _in_thread(fn: Callable[[], Any]) -> Any:
    result: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # surfaced in the test's thread
            errors.append(exc)
        finally:
            db.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if errors:
        raise errors[0]
    return result[0]


@postgres_only
def test_one_context_s_writes_do_not_fence_another_s_reads_and_a_token_carries_them(
    bind, pair
) -> None:
    bind()
    user = make_user()

    def read_ids() -> list[str]:
        return [item["id"] for item in TodoQueries.list_for_user(user.id)["items"]]

    _in_thread(read_ids)  # the first read checks the replica's health
    mine = TodoQueries.create(user.id, {"title": "this thread's write"})
    replicas.reset_stats()
    _in_thread(read_ids)  # another thread, its own position: no fence for this one's write
    assert replicas.stats()["fence_waits"] == []
    with replicas.session() as token:
        todo = TodoQueries.create(user.id, {"title": "made in a request"})

    def read_with_token() -> list[str]:
        with replicas.session(token):
            return read_ids()

    assert _in_thread(read_with_token) == [todo["id"], mine["id"]]  # the request's write
    assert len(replicas.stats()["fence_waits"]) == 1
    assert read_ids()[1] == mine["id"]  # this thread pays for its own write
    assert len(replicas.stats()["fence_waits"]) == 2
    assert replicas.stats()["replica"] == 3


# --- health: a replica that goes away, or lags ------------------------------------------


def _run_cycles(user_id: str, count: int, errors: list[BaseException]) -> int:
    stale = 0
    for n in range(count):
        try:
            stale += _cycle(user_id, n)
            TodoQueries.list_for_user(user_id, limit=1)  # no new write: no fence before it
        except Exception as exc:  # counted: the test expects none
            errors.append(exc)
    return stale


def _until(condition: Callable[[], bool], seconds: float, step: Callable[[], None]) -> float:
    """Run ``step`` until ``condition`` holds; return the seconds it took (fail after ``seconds``)."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, "condition not reached in time"
        step()
    return time.monotonic() - started


@postgres_only
def test_a_stopped_standby_is_skipped_without_errors_and_used_again_once_back(bind, pair) -> None:
    # No periodic check in the way: the read right after the stop meets the dead connection.
    app = bind(replica_retry_seconds=0.3, replica_check_seconds=60)
    user = make_user()
    errors: list[BaseException] = []
    stale = _run_cycles(user.id, 30, errors)
    assert replicas.stats()["replica"] == 60
    # Stop it between a read on it and the next: that read finds its connection dead.
    _cycle(user.id, 0)
    pair.stop_standby()
    try:
        primary_before = replicas.stats().get("primary", 0)
        assert TodoQueries.list_for_user(user.id, limit=1)["items"]
        # Served by the primary: as a fallback after the dead connection failed, or routed
        # there directly when choosing the replica already found it gone.
        assert replicas.stats().get("fallback", 0) <= 1
        assert replicas.stats()["primary"] - primary_before == 1
        primary_before = replicas.stats()["primary"]
        stale += _run_cycles(user.id, 60, errors)  # down: spans several retry periods
        assert replicas.stats()["primary"] - primary_before == 120
        assert replicas.status()[0]["healthy"] is False
    finally:
        since = pair.log_size(standby=True)
        pair.start_standby()
    waited = _until(
        lambda: _reads(pair, app, standby=True, since=since) > 0,
        60,
        lambda: _run_cycles(user.id, 1, errors),
    )
    stale += _run_cycles(user.id, 30, errors)
    assert errors == []
    assert stale == 0
    assert replicas.status()[0]["healthy"] is True
    assert _reads(pair, app, standby=True, since=since) >= 30
    print(f"\nreads back on the restarted standby {waited:.2f}s after it was up")


@postgres_only
def test_a_replica_lagging_beyond_the_bound_is_skipped_then_used_again(bind, pair) -> None:
    # Without the fence, only the lag bound keeps reads fresh once replay stops.
    bind(replica_read_your_writes=False, replica_max_lag_ms=300, replica_check_seconds=0.1)
    user = make_user()
    errors: list[BaseException] = []
    _run_cycles(user.id, 3, errors)
    assert replicas.status()[0]["healthy"] is True
    standby = pair.connect("dl", standby=True)
    try:
        standby.cursor().execute("SELECT pg_wal_replay_pause()")
        took = _until(
            lambda: replicas.status()[0]["healthy"] is False,
            60,  # a hang stop: the health check runs every 0.1 s
            lambda: _run_cycles(user.id, 1, errors),
        )
        print(f"\nmarked unhealthy {took:.2f}s after replay paused (bound: 0.3 s of lag)")
        assert _run_cycles(user.id, 20, errors) == 0  # all on the primary now
    finally:
        standby.cursor().execute("SELECT pg_wal_replay_resume()")
        standby.close()
    served = replicas.stats()["replica"]
    _until(
        lambda: replicas.stats()["replica"] > served,
        60,
        lambda: _run_cycles(user.id, 1, errors),
    )
    assert errors == []


@postgres_only
def test_a_fence_that_times_out_reads_from_the_primary_and_stops_waiting(bind, pair) -> None:
    # No health check in the way: only the fence decides.
    app = bind(replica_wait_ms=100, replica_max_lag_ms=60_000, replica_check_seconds=60)
    user = make_user()
    assert not _cycle(user.id, 0)
    standby = pair.connect("dl", standby=True)
    try:
        standby.cursor().execute("SELECT pg_wal_replay_pause()")
        before = _reads(pair, app, standby=False)
        started = time.monotonic()
        assert not _cycle(user.id, 1)  # waited 100 ms, then read from the primary
        assert replicas.stats()["fence_timeout"] == 1
        assert time.monotonic() - started >= 0.1
        # Known to lag: no more waiting. The counters say so (10 skipped, no new timeout);
        # a bound on the wall time would also measure how busy the machine is.
        assert not any(_cycle(user.id, n) for n in range(10))
        assert replicas.stats()["fence_timeout"] == 1
        assert replicas.stats()["fence_skipped"] == 10
        assert _reads(pair, app, standby=False) - before == 11
    finally:
        standby.cursor().execute("SELECT pg_wal_replay_resume()")
        standby.close()


# --- nothing changes without replicas (both backends) -----------------------------------

REPLICA_SAFE = [
    NotificationQueries.inbox,
    NotificationQueries.unread_count,
    TodoQueries.list_for_user,
    WaitlistQueries.list,
    UserActivityQueries.list_range,
    TenantMemberQueries.list_for_tenant,
    TenantActivityQueries.list_range,
    TenantQueries.list_for_user,
    AuditLogQueries.list,
    AuditLogQueries.summary,
    SubscriptionQueries.list_for_tenant,
    AccountQueries.list_for_user,
]


@pytest.mark.parametrize("fn", REPLICA_SAFE, ids=lambda fn: fn.__qualname__)
def test_the_catalog_marks_its_replica_safe_reads(fn) -> None:
    assert getattr(fn, "replica_read", False) is True


@pytest.mark.usefixtures("txn")
def test_without_replicas_the_decorator_passes_through(query_counter) -> None:
    assert replicas.status() == []
    assert db.obj.on_write is None
    user = make_user()
    TodoQueries.create(user.id, {"title": "one"})
    query_counter.statements.clear()
    marked = TodoQueries.list_for_user(user.id)
    sent_marked = list(query_counter.statements)
    query_counter.statements.clear()
    plain = TodoQueries.list_for_user.__wrapped__(user.id)
    assert marked == plain
    assert sent_marked == query_counter.statements
    assert len(sent_marked) == 1


def test_sqlite_ignores_replica_urls(tmp_path, caplog) -> None:
    calls: list[str] = []

    @replica_read
    def count_one() -> int:
        calls.append(db.obj.database)
        return int(db.execute_sql("SELECT 1").fetchone()[0])

    url = f"sqlite:///{tmp_path / 'plain.sqlite3'}"
    try:
        with caplog.at_level(logging.WARNING, logger="datalayer.connection.replicas"):
            init_db(url, replica_urls=["postgresql://postgres@127.0.0.1:1/nowhere"])
        assert "replicas need a PostgreSQL primary" in caplog.text
        assert replicas.status() == []
        assert db.obj.on_write is None
        sent: list[str] = []
        db.obj.query_hooks.append(lambda event: sent.append(event.sql))
        assert count_one() == 1
        assert sent == ["SELECT 1"]
    finally:
        _unbind()


@pytest.mark.usefixtures("txn")
def test_only_write_statements_are_tracked() -> None:
    seen: list[int] = []
    db.obj.on_write = lambda: seen.append(1)
    try:
        for sql in ("SELECT 1", "  select 2", "SHOW search_path" if IS_PG else "SELECT 3"):
            db.execute_sql(sql)
        assert seen == []
        user = make_user()  # INSERT
        TodoQueries.create(user.id, {"title": "x"})  # INSERT ... RETURNING
        db.execute_sql('UPDATE "todos" SET "title" = \'y\'')
        db.execute_sql('WITH old AS (SELECT 1) DELETE FROM "todos" WHERE 1 = 0')
        assert len(seen) == 4
    finally:
        db.obj.on_write = None


def test_replica_options_and_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_REPLICA_URLS", "postgresql://a/db, postgresql://b/db,")
    options = {"replica_wait_ms": 50, "pool": True}
    taken = replicas.take_options(options)
    assert options == {"pool": True}
    assert taken["replica_urls"] == ["postgresql://a/db", "postgresql://b/db"]
    assert taken["replica_wait_ms"] == 50
    assert taken["replica_max_lag_ms"] == replicas.DEFAULTS["replica_max_lag_ms"]
    assert replicas.take_options({"replica_urls": []})["replica_urls"] == []


def test_an_insert_position_after_a_page_header_is_the_page_boundary() -> None:
    page = 8192
    assert replayable(5 * page + 24, page) == 5 * page  # short header
    assert replayable(2048 * page + 40, page) == 2048 * page  # long header (segment start)
    assert replayable(5 * page + 48, page) == 5 * page + 48
    assert replayable(5 * page, page) == 5 * page
