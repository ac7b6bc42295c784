"""Behind a transaction-mode PgBouncer: transaction-local state holds, session state leaks.

Each test has a database of its own (``fresh_db``) reached through a real PgBouncer with
``pool_mode = transaction`` and 3 server connections per database, shared by 8 threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from urllib.parse import urlparse

import psycopg2
import pytest
from helpers import PGBOUNCER, db_name, postgres_only

from datalayer import db, init_db
from datalayer.connection.database import build_database
from datalayer.errors import PoolerSafetyError

pytestmark = postgres_only

THREADS = 8
TRANSACTIONS = 300


def run_threads(count: int, target: Callable[[int], None]) -> list[BaseException]:
    """Run ``target(i)`` on ``count`` threads; return what they raised."""
    errors: list[BaseException] = []

    def guarded(i: int) -> None:
        try:
            target(i)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted by the caller
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_test_urls_follow_the_pgbouncer_switch(database_url, pgbouncer) -> None:
    database = build_database(database_url)
    if PGBOUNCER:  # the whole suite runs through PgBouncer, with the library's guards on
        assert urlparse(database_url).port == pgbouncer.port
        assert database.pooler_mode == "transaction"
        database.execute_sql("SELECT 1")
        assert pgbouncer.pools(db_name(database_url))["pool_mode"] == "transaction"
    else:
        assert urlparse(database_url).port != pgbouncer.port
        assert database.pooler_mode is None
    database.close()


def test_transaction_local_settings_never_cross_clients(fresh_db, pgbouncer) -> None:
    init_db(pgbouncer.url(db_name(fresh_db), pooler="transaction"))
    mismatches: list[tuple[str, str]] = []
    leaked: list[str] = []
    backends: set[int] = set()

    def work(thread: int) -> None:
        for i in range(TRANSACTIONS):
            value = f"{thread}-{i}"
            with db.atomic():
                db.execute_sql("SELECT set_config('app.v', %s, true)", (value,))
                seen, pid = db.execute_sql(
                    "SELECT current_setting('app.v'), pg_backend_pid()"
                ).fetchone()
            backends.add(pid)
            if seen != value:
                mismatches.append((value, seen))
            if i % 10 == 0:  # outside a transaction: nobody's value is left behind
                after = db.execute_sql("SELECT current_setting('app.v', true)").fetchone()[0]
                if after:
                    leaked.append(after)

    assert run_threads(THREADS, work) == []
    assert mismatches == []
    assert leaked == []
    # 8 clients really shared at most 3 server sessions.
    assert 1 <= len(backends) <= pgbouncer.pool_size < THREADS


def test_without_the_guard_session_settings_cross_clients(fresh_db, pgbouncer) -> None:
    # The control for the test above: the same traffic with session-level SET (raw
    # psycopg2, so no guard) reads back another client's value or none at all.
    url = pgbouncer.url(db_name(fresh_db))
    mismatches: list[int] = []

    def work(thread: int) -> None:
        conn = psycopg2.connect(url)
        conn.autocommit = True
        with conn.cursor() as cur:
            for i in range(TRANSACTIONS):
                cur.execute("SET app.v = %s", (f"{thread}-{i}",))
                cur.execute("SELECT current_setting('app.v', true)")
                if cur.fetchone()[0] != f"{thread}-{i}":
                    mismatches.append(i)
        conn.close()

    assert run_threads(THREADS, work) == []
    assert len(mismatches) > 0  # measured: about 9 in 10 of the 2,400 read-backs


def test_session_set_is_refused_because_it_leaks_to_other_clients(fresh_db, pgbouncer) -> None:
    name = db_name(fresh_db)
    init_db(pgbouncer.url(name, pooler="transaction"))
    for statement in ("SET app.v = 'mine'", "SELECT set_config('app.v', 'mine', false)"):
        with pytest.raises(PoolerSafetyError):
            db.execute_sql(statement)
    db.close()

    # Why: a raw session-level SET through the pooler stays on the server connection,
    # and later clients (other users of the application) run with it.
    setter = psycopg2.connect(pgbouncer.url(name))
    setter.autocommit = True
    with setter.cursor() as cur:
        cur.execute("SET app.v = 'leaked'")
    setter.close()
    seen = []
    for _ in range(20):
        other = psycopg2.connect(pgbouncer.url(name))
        other.autocommit = True
        with other.cursor() as cur:
            cur.execute("SELECT current_setting('app.v', true)")
            seen.append(cur.fetchone()[0])
        other.close()
    assert seen.count("leaked") >= 1, seen

    # The same library call without pooler=transaction would have let it through.
    unguarded = build_database(pgbouncer.url(name))
    unguarded.execute_sql("SET app.v = 'through the library'")
    unguarded.close()
    probe = build_database(pgbouncer.url(name))
    assert probe.execute_sql("SELECT current_setting('app.v', true)").fetchone()[0] == (
        "through the library"
    )
    probe.close()
