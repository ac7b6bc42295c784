"""A failover under load, on real servers: the primary is killed, the standby promoted.

The test starts its own pair (``pg_replica.ReplicaPair``: ``initdb``, ``pg_basebackup -R``),
makes the standby synchronous (``synchronous_standby_names``), and points every process
at one multi-host URL (``target_session_attrs=read-write``). Two writer processes
create todos and notifications under ``retrying``; a worker process runs
``examples/delivery_worker.py``'s ``run_worker`` (wake on NOTIFY, marks fenced by lease).
Mid-load the primary is killed (``pg_ctl stop -m immediate``) and the standby promoted
(``pg_ctl promote``). Then, on the new primary: every write the library acknowledged
is there, no delivery was sent twice, writes resumed after the promotion, no error
reached a caller and no process died.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import IS_PG
from pg_replica import ReplicaPair, available

from datalayer import NotificationQueries, PreferenceQueries, TodoQueries, db, init_db, retrying
from datalayer.errors import DataLayerError
from datalayer.evolve.migrate import migrate
from datalayer.models import User
from datalayer.models.base import new_id

pytestmark = [
    pytest.mark.skipif(not IS_PG, reason="needs PostgreSQL (DATALAYER_TEST_BACKEND)"),
    pytest.mark.skipif(not available(), reason="needs the PostgreSQL server binaries"),
    pytest.mark.skipif(
        os.environ.get("DATALAYER_TEST_WORKFLOWS", "1") == "0",
        reason="the failover runs in the py311 envs (tox.ini: DATALAYER_TEST_WORKFLOWS)",
    ),
]

ROOT = Path(__file__).resolve().parent.parent
BEFORE, AFTER = 2.0, 3.0  # seconds of load before the kill, and after writes resumed
HANG = 120.0
# A generous budget: ~1 s between tries, about a minute in all (a failover takes seconds).
BUDGET = {"attempts": 60, "base_delay": 0.05, "max_delay": 1.0}


def _writer(
    url: str, kind: str, user_ids: list[str], stop: Any, out: Any, last: Any, index: int
) -> None:
    """Write until told to stop; report what was acknowledged, and any error seen."""
    init_db(url)
    acked: list[tuple[str, float]] = []
    errors: list[str] = []
    log = _remember_warnings()
    n = 0
    while not stop.is_set():
        n += 1
        user_id = user_ids[n % len(user_ids)]
        write: Any = (
            functools.partial(TodoQueries.create, user_id, {"title": f"t{n}"})
            if kind == "todos"
            else functools.partial(
                NotificationQueries.notify, user_id, type="direct_message", title=f"n{n}", body="b"
            )
        )
        try:
            row = retrying(write, **BUDGET)
            acked.append((row["id"], time.time()))
            last[index] = acked[-1][1]
        except DataLayerError as exc:  # must not happen: reported, and the test fails
            errors.append(f"{type(exc).__name__}: {exc}")
            last[index] = -1.0  # the test stops waiting for this process
        time.sleep(0.005)
    db.close()
    out.put({"kind": kind, "acked": acked, "errors": errors, "log": log})


def _remember_warnings() -> list[str]:
    """Keep this process's warnings (the retries), with the time, for the test's messages."""
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(f"{record.created:.3f} {record.name}: {record.getMessage()[:160]}")

    logging.getLogger().addHandler(Keep(logging.WARNING))
    return seen


def _worker(url: str, stop: Any, out: Any, last: Any, index: int) -> None:
    """Run the example worker, recording every delivery it sends."""
    script = ROOT / "examples" / "delivery_worker.py"
    spec = importlib.util.spec_from_file_location("delivery_worker", script)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = example
    spec.loader.exec_module(example)
    init_db(url)
    sent: list[str] = []
    log = _remember_warnings()

    def send(delivery: Any) -> str:
        sent.append(delivery["id"])
        last[index] = time.time()
        return f"provider-{delivery['id']}"

    errors: list[str] = []
    stats = None
    try:
        stats = example.run_worker("failover-1", send, batch_size=10, stop=stop.is_set)
    except DataLayerError as exc:  # must not happen
        errors.append(f"{type(exc).__name__}: {exc}")
        last[index] = -1.0
    db.close()
    out.put({"kind": "worker", "sent": sent, "errors": errors, "stats": repr(stats), "log": log})


@pytest.fixture(scope="module")
def pair() -> Iterator[ReplicaPair]:
    cluster = ReplicaPair(fsync=True)
    cluster.start()
    try:
        cluster.make_synchronous()
        conn = cluster.connect()
        try:
            conn.cursor().execute("CREATE DATABASE app")
        finally:
            conn.close()
        yield cluster
    finally:
        cluster.stop()


def _users(url: str, count: int) -> list[str]:
    init_db(url)
    ids = []
    for i in range(count):
        user = User.create(id=new_id(), email=f"failover{i}@example.com", name=f"u{i}")
        PreferenceQueries.upsert(user.id, {"email_enabled": False, "push_enabled": False})
        ids.append(user.id)
    db.close()
    return ids


def test_writers_and_a_worker_ride_through_a_failover(pair: ReplicaPair) -> None:
    url = (
        f"postgresql://postgres@127.0.0.1:{pair.primary_port},127.0.0.1:{pair.standby_port}"
        "/app?target_session_attrs=read-write&connect_timeout=2"
    )
    migrate(url)
    user_ids = _users(url, 5)
    context = multiprocessing.get_context("spawn")
    stop, out = context.Event(), context.Queue()
    last = context.Array("d", 3)  # each process's last acknowledged write (or send)
    processes = [
        context.Process(target=_writer, args=(url, "todos", user_ids, stop, out, last, 0)),
        context.Process(target=_writer, args=(url, "notifications", user_ids, stop, out, last, 1)),
        context.Process(target=_worker, args=(url, stop, out, last, 2)),
    ]
    for process in processes:
        process.start()
    try:
        _until(lambda: min(last) > 0, "every process under load", last, processes)
        time.sleep(BEFORE)
        pair.kill_primary()
        time.sleep(0.5)  # the writers' and the worker's connections are cut meanwhile
        pair.promote_standby()
        promoted = time.time()
        # writes resume (each process acknowledged one since), then go on a while
        _until(
            lambda: min(last) > promoted, "every process going on after the promotion", last, processes
        )
        time.sleep(AFTER)
        stop.set()
        results = {r["kind"]: r for r in (out.get(timeout=HANG) for _ in processes)}
        for process in processes:
            process.join(HANG)
    finally:
        stop.set()
        for process in processes:
            if process.is_alive():
                process.kill()

    assert [p.exitcode for p in processes] == [0, 0, 0]  # no process died
    assert [e for r in results.values() for e in r["errors"]] == []  # no error reached a caller
    todos, notes, worker = results["todos"], results["notifications"], results["worker"]
    for result in (todos, notes):  # writes resumed after the promotion
        assert any(at > promoted for _, at in result["acked"]), result["log"]

    init_db(pair.url("app", standby=True))  # the new primary
    try:
        assert db.execute_sql("SELECT pg_is_in_recovery()").fetchone()[0] is False
        found_todos = _ids("SELECT id FROM todos")
        found_notes = _ids("SELECT id FROM notifications")
        deliveries = db.execute_sql(
            "SELECT id, status, notification_id FROM notification_deliveries"
        ).fetchall()
    finally:
        db.close()
    # every acknowledged write is on the new primary
    assert {i for i, _ in todos["acked"]} <= found_todos
    assert {i for i, _ in notes["acked"]} <= found_notes
    # no delivery was sent twice; each one sent is recorded as sent
    sent = worker["sent"]
    assert sent and len(sent) == len(set(sent)), worker["stats"]
    statuses = {i: status for i, status, _ in deliveries}
    assert {statuses[i] for i in sent} == {"sent"}
    # the worker went on after the promotion: it sent deliveries notified after it
    later = {i for i, at in notes["acked"] if at > promoted + 1}
    assert any(note in later for i, _, note in deliveries if i in set(sent)), worker["stats"]
    print(  # the run's figures, shown with -s
        f"todos {len(todos['acked'])}, notifications {len(notes['acked'])} acknowledged;"
        f" {len(sent)} deliveries sent; worker {worker['stats']}"
    )


def _until(condition: Any, what: str, last: Any, processes: list[Any]) -> None:
    """Wait for ``condition``; fail at once when a process died or saw an error."""
    deadline = time.monotonic() + HANG
    while not condition():
        broken = min(last) < 0 or not all(p.is_alive() for p in processes)
        late = time.monotonic() > deadline
        assert not (broken or late), f"never: {what} (last progress: {list(last)})"
        time.sleep(0.05)


def _ids(sql: str) -> set[str]:
    return {row[0] for row in db.execute_sql(sql).fetchall()}
