"""Connection safety for production: transaction-pooler guards, broken connections, fork().

- ``check_pooler_safe``: behind a transaction-mode pooler (PgBouncer ``pool_mode =
  transaction``, Supabase's port 6543) consecutive transactions of one client run on
  different server connections, so anything that outlives a transaction — session SET,
  LISTEN, session advisory locks, prepared statements, WITH HOLD cursors, temporary
  tables — leaks to another client or is lost. Those statements are refused.
- ``forget_connection``: drop this thread's connection without returning it to a pool,
  after the driver reported it broken.
- fork(): a child process inherits the parent's sockets. Using them, or merely closing
  them (libpq sends a Terminate message on close), breaks the parent's sessions. After a
  fork, the child points the inherited PostgreSQL sockets at /dev/null, forgets every
  connection and pool slot, and opens its own connections on first use.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import weakref
from typing import Any

from datalayer.errors import PoolerSafetyError

__all__ = ["check_pooler_safe", "forget_connection", "is_broken", "track"]

_SESSION_SET = re.compile(r"^\s*(SET|RESET)\s+(?!LOCAL\b|TRANSACTION\b|CONSTRAINTS\b)", re.I)
_LISTEN = re.compile(r"^\s*(LISTEN|UNLISTEN)\b", re.I)
_SESSION_LOCK = re.compile(r"\bpg_(try_)?advisory_(un)?lock(_shared)?(_all)?\s*\(", re.I)
_SESSION_SET_CONFIG = re.compile(r"\bset_config\s*\([^)]*,\s*false\s*\)", re.I)
_PREPARE = re.compile(r"^\s*(PREPARE|DEALLOCATE)\b", re.I)
_TEMP_TABLE = re.compile(
    r"^\s*CREATE\s+(TEMP|TEMPORARY)\s+TABLE\b(?!.*\bON\s+COMMIT\s+DROP\b)", re.I | re.S
)
_DECLARE = re.compile(r"^\s*DECLARE\b", re.I)
_WITH_HOLD = re.compile(r"\bWITH\s+HOLD\b", re.I)

_SESSION_HINT = "use SET LOCAL / set_config(..., true) inside a transaction"


def check_pooler_safe(sql: str, in_transaction: bool) -> None:
    """Raise ``PoolerSafetyError`` if ``sql`` relies on session state."""
    refusal = None
    if _SESSION_SET.match(sql) or _SESSION_SET_CONFIG.search(sql):
        refusal = f"a session-level setting would leak to other clients or be lost; {_SESSION_HINT}"
    elif _LISTEN.match(sql):
        refusal = "LISTEN needs a session of its own: use a direct connection for listeners"
    elif _SESSION_LOCK.search(sql):
        refusal = (
            "session advisory locks are not held across transactions; "
            "use pg_advisory_xact_lock inside a transaction"
        )
    elif _PREPARE.match(sql):
        refusal = "prepared statements live in a session another client may get"
    elif _TEMP_TABLE.match(sql):
        refusal = "a temporary table outlives the transaction: add ON COMMIT DROP"
    elif _DECLARE.match(sql) and (_WITH_HOLD.search(sql) or not in_transaction):
        refusal = "cursors only work inside a transaction (and never WITH HOLD)"
    if refusal:
        raise PoolerSafetyError(f"refused behind a transaction-mode pooler: {refusal}")


def is_broken(conn: Any) -> bool:
    """Tell whether the driver has marked ``conn`` closed or broken (psycopg2 ``closed``)."""
    return bool(getattr(conn, "closed", 0))


def forget_connection(database: Any) -> None:
    """Close and forget this thread's connection; a pool does not get it back.

    Open ``connection_context()`` blocks stay open: the next statement connects afresh.
    """
    conn, ctx = database._state.conn, list(database._state.ctx)
    if conn is not None and hasattr(database, "_in_use"):
        with database._pool_lock:
            database._in_use.pop(database.conn_key(conn), None)
            database._pool_available.notify()
    if conn is not None:
        with contextlib.suppress(Exception):  # already broken; nothing more to release
            conn.close()
    database._state.reset()
    database._state.ctx.extend(ctx)


# --- fork safety --------------------------------------------------------------------------

_databases: weakref.WeakSet[Any] = weakref.WeakSet()
_connections: weakref.WeakSet[Any] = weakref.WeakSet()
_inherited: list[Any] = []
_track_lock = threading.Lock()


def track(database: Any, conn: Any = None) -> None:
    """Remember a database (and a driver connection it opened) for the fork handlers."""
    with _track_lock:
        _databases.add(database)
        if conn is not None:
            # sqlite3 connections are not weak-referenceable (and have no socket): skipped.
            with contextlib.suppress(TypeError):
                _connections.add(conn)


def _before_fork() -> None:
    # Strong references, so the child cannot close (and so terminate) a parent's session
    # while Python discards the other threads' thread-local state, before our handler runs.
    with _track_lock:
        _inherited[:] = list(_connections)


def _after_fork_in_parent() -> None:
    _inherited.clear()


def _after_fork_in_child() -> None:
    global _track_lock
    _track_lock = threading.Lock()
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        for conn in _inherited:
            if not is_broken(conn):
                with contextlib.suppress(Exception):  # no socket to detach
                    os.dup2(devnull, conn.fileno())  # its Terminate now goes nowhere
    finally:
        os.close(devnull)
    for database in list(_databases):
        _reset(database)
    _inherited.clear()  # the detached connections are freed here, harmlessly


def _reset(database: Any) -> None:
    """Forget every connection ``database`` had in the parent, and renew its locks."""
    if database.thread_safe:
        database._lock = threading.Lock()
    database._state.reset()
    if hasattr(database, "_pool_lock"):
        database._pool_lock = threading.RLock()
        database._pool_available = threading.Condition(database._pool_lock)
        database._connections = []
        database._in_use = {}


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)
