"""Wake workers on NOTIFY: writes that make deliveries due notify in their own transaction,
and ``wait_for_work`` blocks on LISTEN until one may be due.

A write that makes deliveries due sends NOTIFY in its own statement, so in its own
transaction: ``notify``'s insert runs as ``NOTIFY datalayer_deliveries; INSERT ...``,
and ``release``, ``release_stale`` and a failed attempt going back to pending call
``pg_notify`` from the UPDATE's statement only when it changed a row. One round trip,
one transaction: a rolled-back write wakes nobody. PostgreSQL
delivers identical notifications of one transaction once, so a transaction that queues
a thousand deliveries wakes each listener once.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from typing import Any

import peewee
import psycopg2

from datalayer.connection.database import db, is_postgres
from datalayer.connection.listening import listen_refused, listener, pause
from datalayer.models.base import utcnow
from datalayer.queries.base import read
from datalayer.queries.notifications._queue import D

CHANNEL = "datalayer_deliveries"
_NOTIFY = f'NOTIFY "{CHANNEL}"; '

log = logging.getLogger("datalayer.queries.notifications")
_said: set[str] = set()


def waking_rows(query: peewee.Query) -> tuple[list[Any], bool]:
    """Run a write that returns rows, with NOTIFY in the same transaction (PostgreSQL);
    return the rows and whether they are raw driver values (PostgreSQL) or peewee's."""
    if not is_postgres():
        return list(query.tuples().execute()), False
    sql, params = query.sql()
    return list(db.execute_sql(_NOTIFY + sql, params).fetchall()), True


def waking_count(query: peewee.Query) -> int:
    """Run an UPDATE that may make deliveries due; on PostgreSQL, NOTIFY in the same
    statement only when it changed a row (an idle sweep wakes nobody). Return its count."""
    if not is_postgres():
        return int(query.execute())
    sql, params = query.returning(D.id).sql()  # type: ignore[attr-defined]  # an Update
    counted = (
        f"WITH changed AS ({sql}) SELECT count(*), CASE WHEN count(*) > 0 THEN "
        f"pg_notify('{CHANNEL}', '') END FROM changed"
    )
    return int(db.execute_sql(counted, params).fetchone()[0])


def _next_due(channels: Sequence[str] | None) -> Any:
    """The query of the earliest due time of a pending delivery (the due index's first row)."""
    query = D.select(peewee.fn.MIN(D.next_attempt_at)).where(D.status == "pending")
    if channels is not None:
        query = query.where(D.channel.in_(channels))
    return query


def _seconds_until(due: Any) -> float | None:
    """Seconds from now (the clock the claim uses) until ``due``; None: nothing pending."""
    if due is None:
        return None
    if isinstance(due, str):  # SQLite's text, when peewee did not convert it
        due = dt.datetime.fromisoformat(due)
    if due.tzinfo is None:
        due = due.replace(tzinfo=dt.UTC)
    return float((due - utcnow()).total_seconds())


def _say_once(reason: str) -> None:
    if reason not in _said:
        _said.add(reason)
        log.info("wait_for_work polls instead of listening: %s", reason)


def _poll(timeout: float, channels: Sequence[str] | None, poll_seconds: float) -> bool:
    """Without LISTEN: look for a due delivery every ``poll_seconds`` until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        with read():
            due_in = _seconds_until(_next_due(channels).scalar())
        if due_in is not None and due_in <= 0:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        step = min(remaining, poll_seconds, due_in if due_in is not None else remaining)
        if not pause(step):
            return False


def wait_for_work(timeout: float, channels: Sequence[str] | None, poll_seconds: float) -> bool:
    """Block until a delivery may be due (True), or ``timeout`` passes or ``interrupt()``
    comes (False); see ``DeliveryQueries.wait_for_work``."""
    refused = listen_refused(db.obj)
    if refused is not None:
        _say_once(refused)
        return _poll(timeout, channels, poll_seconds)
    session = listener(CHANNEL)
    try:
        session.drain()  # notifications of work claimed since: the due time below decides
        sql, params = _next_due(channels).sql()
        due_in = _seconds_until(session.query(sql, params)[0][0])
        if due_in is not None and due_in <= 0:
            return True
        until_due = due_in is not None and due_in <= timeout
        wait = due_in if due_in is not None and until_due else timeout
        outcome = session.wait(wait, time.monotonic)
    except psycopg2.Error as exc:  # no server to listen on (a failover): wait a little
        session.close()
        log.warning("wait_for_work cannot listen (%s); trying again", str(exc).strip()[:200])
        return pause(min(timeout, poll_seconds))
    if outcome == "timeout":
        return until_due
    return outcome == "notified"
