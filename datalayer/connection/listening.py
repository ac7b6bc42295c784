"""LISTEN on a direct connection of its own: wait for a NOTIFY, a deadline or ``interrupt()``.

A listening session cannot be shared: LISTEN belongs to the session, and a pooled or
transaction-pooled connection is handed to other clients between transactions. So a
``Listener`` opens its own psycopg2 connection with the parameters of ``db`` (a
multi-host URL's hosts included, so after a failover it reconnects to the new primary),
in autocommit mode, one per thread. Behind a transaction-mode pooler
(``pooler="transaction"``) LISTEN would reach a server session another client gets next:
``listen_refused()`` says why, and callers fall back to polling.

``interrupt()`` (safe in a signal handler and from another thread) makes a wait in
progress, or the next one, return at once: a worker told to stop does not sleep out its
timeout.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
from collections.abc import Callable
from typing import Any

import peewee
import psycopg2
import psycopg2.extensions

from datalayer.connection.database import db
from datalayer.errors import NOT_INITIALIZED, NotInitializedError

__all__ = ["Listener", "clear_interrupt", "interrupt", "listen_refused", "listener", "pause"]

# The self-pipe ``interrupt`` writes to (created with the first listener; os.write is
# async-signal-safe, so a SIGTERM handler may call it). ``_interrupted`` covers a call
# that comes before any wait.
_pipe: tuple[int, int] | None = None
_interrupted = threading.Event()
_local = threading.local()


def interrupt() -> None:
    """Make a ``wait`` in progress, or the next one, return at once (signal-handler safe)."""
    _interrupted.set()
    if _pipe is not None:
        with contextlib.suppress(OSError):  # full pipe: a wake-up is already pending
            os.write(_pipe[1], b"!")


def clear_interrupt() -> None:
    """Forget an earlier ``interrupt()`` (a worker that starts again)."""
    _interrupted.clear()
    if _pipe is not None:
        with contextlib.suppress(BlockingIOError):
            while os.read(_pipe[0], 512):
                pass


def pause(seconds: float) -> bool:
    """Sleep ``seconds`` unless ``interrupt()`` comes first; False when interrupted."""
    if _interrupted.is_set():
        return False
    if seconds > 0:
        select.select([_wake_pipe()], [], [], seconds)
    return not _interrupted.is_set()


def _wake_pipe() -> int:
    global _pipe
    if _pipe is None:
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        os.set_blocking(write_end, False)
        _pipe = (read_end, write_end)
    return _pipe[0]


def listen_refused(database: Any) -> str | None:
    """Why LISTEN cannot work on ``database`` (None when it can)."""
    if not getattr(database, "is_pg", False):
        return "SQLite has no LISTEN/NOTIFY"
    if getattr(database, "pooler_mode", None) == "transaction":
        return (
            "LISTEN needs a session of its own, and behind a transaction-mode pooler "
            "(pooler=transaction) every transaction may get another server session"
        )
    return None


class Listener:
    """One thread's LISTEN session on ``database``: ``wait``, ``query``, ``close``."""

    def __init__(self, database: Any, channel: str) -> None:
        self.database = database
        self.channel = channel
        self.conn: Any = None

    def _connect(self) -> Any:
        if self.conn is None or self.conn.closed:
            # The database's own connect (its parameters, unicode handling), not its pool's.
            conn = peewee.PostgresqlDatabase._connect(self.database)  # type: ignore[attr-defined]  # peewee's private connect, not in its stubs
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'LISTEN "{self.channel}"')
            self.conn = conn
        return self.conn

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Run a read on the listening session (connecting, and listening, first)."""
        try:
            with self._connect().cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall())
        except psycopg2.Error:
            self.close()  # a lost session (a failover): the next call listens afresh
            raise

    def drain(self) -> bool:
        """Consume the notifications already received; tell whether there were any."""
        conn = self._connect()
        try:
            conn.poll()
        except psycopg2.Error:
            self.close()
            raise
        got = bool(conn.notifies)
        conn.notifies.clear()
        return got

    def wait(self, seconds: float, clock: Callable[[], float]) -> str:
        """Block until a NOTIFY ("notified"), ``interrupt()`` ("interrupted") or ``seconds``
        pass ("timeout"); a lost session ends the wait as "notified" (work may be due)."""
        if _interrupted.is_set():
            return "interrupted"
        conn = self._connect()
        pipe = _wake_pipe()
        deadline = clock() + max(0.0, seconds)
        while True:
            remaining = deadline - clock()
            if remaining <= 0:
                return "timeout"
            ready, _, _ = select.select([conn, pipe], [], [], remaining)
            if pipe in ready or _interrupted.is_set():
                return "interrupted"
            if ready:
                try:
                    if self.drain():
                        return "notified"
                except psycopg2.Error:
                    return "notified"

    def close(self) -> None:
        """Close the listening session (it reopens on next use)."""
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(psycopg2.Error):
                conn.close()


def listener(channel: str) -> Listener:
    """Return this thread's listener on ``channel`` for the database ``db`` is bound to."""
    database = db.obj
    if database is None:
        raise NotInitializedError(NOT_INITIALIZED)
    listeners: dict[tuple[int, str], Listener] = _local.__dict__.setdefault("listeners", {})
    key = (id(database), channel)
    found = listeners.get(key)
    if found is None or found.database is not database:
        if found is not None:
            found.close()
        found = listeners[key] = Listener(database, channel)
    return found


def _after_fork_in_child() -> None:
    """Forget (never close) the parent's listening sessions and its pipe."""
    global _local, _pipe
    _local = threading.local()
    _pipe = None
    _interrupted.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
