"""Connection safety for production: transaction-pooler guards, broken connections, fork().

- ``check_pooler_safe``: behind a transaction-mode pooler (PgBouncer ``pool_mode =
  transaction``, Supabase's port 6543) consecutive transactions of one client run on
  different server connections, so anything that outlives a transaction — session SET,
  LISTEN, session advisory locks, prepared statements, WITH HOLD cursors, temporary
  tables — leaks to another client or is lost. Those statements are refused.
- ``forget_connection``: drop this thread's connection without returning it to a pool,
  after the driver reported it broken.
- fork(): a child process inherits the parent's sockets. Using them, or closing them
  (libpq sends a Terminate message), breaks the parent's sessions. After a fork, the
  child forgets every connection and pool slot (without closing them) and opens its own
  connections on first use.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import weakref
from typing import Any

from datalayer.errors import PoolerSafetyError

__all__ = ["check_pooler_safe", "condemn", "forget_connection", "is_broken", "track"]

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


# Connections that still work but must not be used again: after a failover, a session on
# the demoted primary (now a read-only standby) refuses every write (SQLSTATE 25006).
_condemned: weakref.WeakSet[Any] = weakref.WeakSet()


def condemn(conn: Any) -> None:
    """Mark ``conn`` unusable: the next unit of work, and a pool, open a fresh one instead."""
    with contextlib.suppress(TypeError):  # a connection object that takes no weak reference
        _condemned.add(conn)


def is_broken(conn: Any) -> bool:
    """Tell whether the driver has marked ``conn`` closed or broken (psycopg2 ``closed``),
    or the library condemned it (``condemn``)."""
    return bool(getattr(conn, "closed", 0)) or conn in _condemned


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


def track(database: Any) -> None:
    """Remember a database so a forked child resets it."""
    _databases.add(database)


def _after_fork_in_child() -> None:
    for database in list(_databases):
        _reset(database)


def _reset(database: Any) -> None:
    """Forget (never close) every connection ``database`` had in the parent; renew its locks.

    Closing an inherited connection would send the server a Terminate message on the
    parent's socket. Forgetting is safe: psycopg2 does not close a connection when it
    is freed in a process other than the one that opened it.
    """
    if database.thread_safe:
        database._lock = threading.Lock()
    database._state.reset()
    if hasattr(database, "_pool_lock"):
        database._pool_lock = threading.RLock()
        database._pool_available = threading.Condition(database._pool_lock)
        database._connections = []
        database._in_use = {}


os.register_at_fork(after_in_child=_after_fork_in_child)
