"""Read replicas: replica-safe reads go to a streaming standby, with read-your-writes.

``init_db(url, replica_urls=[...])`` (or ``DATABASE_REPLICA_URLS``, comma separated) adds
standbys. Catalog functions marked ``@replica_read`` (inboxes, lists, audit queries,
activity ranges) then run on a healthy replica: ``db`` resolves to it for the duration
of the call (by a context variable in ``datalayer.connection.context``). Everything else — every
write, every unmarked read, every read while this thread's primary connection is in a
transaction — stays on the primary.

Read-your-writes (the fence): the primary counts the writes made in the current context
(thread, or ``session()``). The next replica read of that context fetches the primary's
``pg_current_wal_insert_lsn()`` once — a position at or past the commit of those writes —
and reads from a replica only once it has replayed that far (``pg_last_wal_replay_lsn()``),
waiting at most ``replica_wait_ms``; after that it reads from the primary.

Health: a replica whose connection fails, that is no standby, or whose replay lags the
primary by more than ``replica_max_lag_ms`` is skipped for ``replica_retry_seconds``
(reads go to the primary), then checked again. A read that fails on a replica because
the replica went away is run again on the primary: callers never see the failure.

On SQLite, or without replicas, ``replica_read`` is a pass-through.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

import peewee

from datalayer.connection.context import Session, current_session, routed_database, session
from datalayer.connection.router import Replica, Router, lsn_int, replayable, route_stats
from datalayer.errors import DataLayerError

__all__ = [
    "DEFAULTS",
    "Session",
    "configure",
    "current_session",
    "lsn_int",
    "note_write",
    "replayable",
    "replica_read",
    "reset_stats",
    "session",
    "stats",
    "status",
    "take_options",
]

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger("datalayer.connection.replicas")

DEFAULTS: dict[str, Any] = {
    "replica_wait_ms": 500,  # the fence's bound, then the primary
    "replica_max_lag_ms": 2000,  # a replica further behind is skipped
    "replica_retry_seconds": 5.0,  # a skipped replica is checked again after this
    "replica_check_seconds": 1.0,  # a healthy replica's lag is re-checked this often
    "replica_read_your_writes": True,  # False: no fence (reads may miss own writes)
}


# --- read-your-writes positions ----------------------------------------------------------


def note_write() -> None:
    """Record a write in the current context (called by the primary for each write statement)."""
    current_session().writes += 1


# --- statistics --------------------------------------------------------------------------


def stats() -> dict[str, Any]:
    """Return the routing counters and the recent fence waits (seconds, newest last).

    Counters: ``replica`` / ``primary`` (reads served), ``fallback`` (a read that failed on
    a replica and ran again on the primary), ``fence_timeout`` (the replica did not catch
    up within ``replica_wait_ms``), ``fence_skipped`` (not waited for: it timed out or lagged
    by the bound since its last health check).
    """
    with route_stats.lock:
        return {**route_stats.counts, "fence_waits": list(route_stats.fence_waits)}


def reset_stats() -> None:
    """Zero the counters and forget the recorded fence waits."""
    with route_stats.lock:
        route_stats.counts.clear()
        route_stats.fence_waits.clear()


_router: Router | None = None


def replica_read(fn: Callable[P, R]) -> Callable[P, R]:
    """Mark a catalog read replica-safe: with replicas configured it may run on one."""

    @functools.wraps(fn)
    def routed(*args: P.args, **kwargs: P.kwargs) -> R:
        router = _router
        if router is None or routed_database() is not None:
            return fn(*args, **kwargs)
        return router.run(fn, *args, **kwargs)

    # A marker the tests and the EXPLAIN check read; functions take attributes at run time.
    routed.replica_read = True  # type: ignore[attr-defined]  # a marker on a function
    return routed


# --- configuration -----------------------------------------------------------------------


_URL_LIST = re.compile(r",\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)")


def take_options(options: dict[str, Any]) -> dict[str, Any]:
    """Remove the replica options from ``init_db``'s options; return them with defaults."""
    taken = {name: options.pop(name, default) for name, default in DEFAULTS.items()}
    urls = options.pop("replica_urls", None)
    if urls is None:
        urls = os.environ.get("DATABASE_REPLICA_URLS", "")
    if isinstance(urls, str):
        # Split on the commas that start another URL: a multi-host URL has commas of its own.
        # A comma that starts no URL (a trailing one) is only a separator.
        urls = [u.strip().rstrip(",").strip() for u in _URL_LIST.split(urls)]
    taken["replica_urls"] = [u for u in urls if u]
    return taken


Build = Callable[..., peewee.Database]


def _build(
    build: Build, url: str, primary: peewee.Database, options: Mapping[str, Any]
) -> peewee.Database:
    options = dict(options)
    if hasattr(primary, "close_idle") and "+pool" not in url.split(":", 1)[0]:
        options.setdefault("pool", True)  # pooled when the primary is
    if "connect_timeout" not in url:
        options.setdefault("connect_timeout", 3)  # a dead replica costs little
    return build(url, **options)


def configure(
    primary: peewee.Database,
    options: Mapping[str, Any],
    replica_urls: list[str] | None = None,
    *,
    build: Build | None = None,
    **settings: Any,
) -> None:
    """Route replica-safe reads to ``replica_urls`` (None/empty: no replicas).

    ``options`` are the primary's (pooling, pooler, timeouts), applied to each replica;
    ``build(url, **options)`` builds a replica's database (``init_db`` passes
    ``datalayer.connection.database.build_database``: this module sits below ``datalayer.connection.database``).
    """
    global _router
    old, _router = _router, None
    if old is not None:
        old.close()
    if hasattr(primary, "on_write"):
        primary.on_write = None
    if not replica_urls:
        return
    if not getattr(primary, "is_pg", False):
        log.warning("replica URLs ignored: replicas need a PostgreSQL primary")
        return
    if build is None:
        raise DataLayerError("replicas.configure() needs build= to build the replica databases")
    merged = {**DEFAULTS, **settings}
    replicas = [Replica(url, _build(build, url, primary, options)) for url in replica_urls]
    _router = Router(primary, replicas, merged)
    # The library's database classes have on_write (datalayer.connection.database); peewee.Database has not.
    primary.on_write = note_write  # type: ignore[attr-defined]  # DataLayerDatabase's (above)


def status() -> list[dict[str, Any]]:
    """Describe each configured replica: URL (password hidden), healthy, last measured lag."""
    if _router is None:
        return []
    return [
        {"url": r.url, "healthy": r.healthy, "lag_ms": r.lag_ms, "replayed": r.replayed}
        for r in _router.replicas
    ]
