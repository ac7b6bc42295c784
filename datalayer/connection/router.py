"""The machinery behind ``datalayer.connection.replicas``: replicas, their health, the fence.

(A context's read-your-writes position, ``Session``, lives in ``datalayer.connection.context``.)

- ``Replica``: one standby's database, health, and the replay position it is known to
  have reached (replay positions only grow, so a cached one is a safe lower bound).
- ``Router``: chooses a replica for a read (none inside a transaction, none unhealthy,
  none that has not replayed the context's writes within the wait bound), measures lag
  against samples of the primary's flushed position, and runs the read, again on the
  primary if the replica fails under it.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

import peewee

from datalayer.connection.context import current_session, routed_to
from datalayer.connection.pooling import forget_connection
from datalayer.errors import DataLayerError, is_connection_error, sqlstate, translate_errors
from datalayer.redact import redact_url

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger("datalayer.connection.replicas")


def execute(database: peewee.Database, sql: str) -> Any:
    """Run ``sql`` on ``database``; return its cursor."""
    # peewee's stubs leave Database.execute_sql unannotated.
    return database.execute_sql(sql)  # type: ignore[no-untyped-call]  # unannotated in peewee's stubs


def lsn_int(text: str | None) -> int | None:
    """Return a ``pg_lsn`` text ('16/B374D848') as an integer byte position."""
    if text is None:
        return None
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


# WAL page headers: an insert position right after one means "the page boundary" to a
# standby, whose replay position stops at the end of the last record (at the boundary).
_PAGE_HEADERS = (24, 40)  # short header; long header (the first page of a segment)


def replayable(position: int, block_size: int) -> int:
    """The replay position a standby reports once it has replayed up to insert ``position``."""
    offset = position % block_size
    return position - offset if offset in _PAGE_HEADERS else position


# --- statistics --------------------------------------------------------------------------


class RouteStats:
    """The routing counters and the recent fence waits, shared by every thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: collections.Counter[str] = collections.Counter()
        self.fence_waits: collections.deque[float] = collections.deque(maxlen=100_000)

    def count(self, name: str) -> None:
        """Add one to the counter ``name``."""
        with self.lock:
            self.counts[name] += 1


route_stats = RouteStats()


# --- replicas and their health -----------------------------------------------------------


class Replica:
    """One standby: its database, its health and the WAL position it is known to have replayed."""

    def __init__(self, url: str, database: peewee.Database) -> None:
        self.url = redact_url(url)
        self.database = database
        self.pooled = hasattr(database, "close_idle")
        self.healthy = False  # unknown until the first check
        self.next_check = 0.0
        self.replayed = 0  # replay positions only grow: a cached lower bound
        self.lag_ms: float | None = None
        self.lock = threading.Lock()

    def claim_check(self, now: float, interval: float) -> bool:
        """Let one thread check this replica when a check is due."""
        with self.lock:
            if now < self.next_check:
                return False
            self.next_check = now + interval
            return True

    def query(self, sql: str) -> tuple[Any, ...]:
        """Run ``sql`` on this thread's connection to the replica; reconnect once if stale."""
        for attempt in (0, 1):
            try:
                row: tuple[Any, ...] = execute(self.database, sql).fetchone()
                return row
            except peewee.PeeweeException as exc:
                if attempt or not is_connection_error(exc) or self.database.in_transaction():
                    raise
                forget_connection(self.database)  # e.g. the server restarted since
        raise AssertionError("unreachable")

    def replay_position(self) -> int | None:
        """Ask the replica how far it has replayed (None: it is no standby)."""
        position = lsn_int(self.query("SELECT pg_last_wal_replay_lsn()::text")[0])
        if position is not None and position > self.replayed:
            self.replayed = position
        return position

    def mark_down(self, reason: str, retry_seconds: float) -> None:
        """Skip this replica for ``retry_seconds``; its idle pooled connections are dropped."""
        with self.lock:
            was_healthy, self.healthy = self.healthy, False
            self.next_check = time.monotonic() + retry_seconds
        if self.pooled:
            # A pooled database (checked by self.pooled); peewee.Database has no close_idle.
            self.database.close_idle()  # type: ignore[attr-defined]  # pooled only (checked above)
        if was_healthy:
            log.warning("replica %s skipped for %.1fs: %s", self.url, retry_seconds, reason)

    def mark_up(self, lag_ms: float) -> None:
        with self.lock:
            was_healthy, self.healthy, self.lag_ms = self.healthy, True, lag_ms
        if not was_healthy:
            log.info("replica %s in use (lag %.0f ms)", self.url, lag_ms)

    def release(self) -> None:
        """Give this thread's pooled connection back to the pool (the caller never sees it)."""
        database = self.database
        if self.pooled and not database.is_closed() and not database.in_transaction():
            database.close()


class Router:
    """The configured replicas and the rules that choose one for a read."""

    def __init__(
        self, primary: peewee.Database, replicas: list[Replica], settings: Mapping[str, Any]
    ) -> None:
        self.primary = primary
        self.replicas = replicas
        self.wait = float(settings["replica_wait_ms"]) / 1000
        self.max_lag = float(settings["replica_max_lag_ms"]) / 1000
        self.retry = float(settings["replica_retry_seconds"])
        self.check_every = float(settings["replica_check_seconds"])
        self.fence = bool(settings["replica_read_your_writes"])
        self.turn = itertools.count()
        # (monotonic time, primary flushed position) samples, to measure lag in time.
        self.samples: collections.deque[tuple[float, int]] = collections.deque(maxlen=512)
        self.samples_lock = threading.Lock()

    # Health --------------------------------------------------------------------------

    def _sample_primary(self) -> None:
        try:
            text = execute(self.primary, "SELECT pg_current_wal_flush_lsn()::text").fetchone()[0]
        except peewee.PeeweeException:  # the read itself will report a primary failure
            return
        with self.samples_lock:
            self.samples.append((time.monotonic(), lsn_int(text) or 0))

    def _lag(self, replayed: int) -> float:
        """Seconds since the primary had a position this replica has not replayed yet."""
        now = time.monotonic()
        with self.samples_lock:
            for at, position in self.samples:
                if position > replayed:
                    return now - at
        return 0.0

    def check(self, replica: Replica) -> None:
        """Measure a replica's health and lag; mark it up or down."""
        if not self.primary.in_transaction():
            self._sample_primary()
        try:
            in_recovery, text = replica.query(
                "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text"
            )
        except peewee.PeeweeException as exc:
            forget_connection(replica.database)
            replica.mark_down(f"{type(exc).__name__}: {str(exc).strip()[:200]}", self.retry)
            return
        if not in_recovery or text is None:
            replica.mark_down("not a standby (pg_is_in_recovery() is false)", self.retry)
            return
        replica.replayed = max(replica.replayed, lsn_int(text) or 0)
        lag = self._lag(replica.replayed)
        if lag > self.max_lag:
            replica.mark_down(f"replay lags {lag * 1000:.0f} ms behind the primary", self.retry)
        else:
            replica.mark_up(lag * 1000)

    def usable(self) -> list[Replica]:
        """The replicas healthy now, in turn order (checking those due for a check)."""
        now = time.monotonic()
        start = next(self.turn)
        count = len(self.replicas)
        found = []
        for offset in range(count):
            replica = self.replicas[(start + offset) % count]
            if now >= replica.next_check and replica.claim_check(now, self.check_every):
                self.check(replica)
            if replica.healthy:
                found.append(replica)
        return found

    # The fence -----------------------------------------------------------------------

    def _target(self) -> tuple[int, bool]:
        """The primary position this context's writes need, and whether it was just fetched.

        Fetched once per batch of new writes: ``pg_current_wal_insert_lsn()`` is at or past
        the commit of every write this context has made.
        """
        current = current_session()
        writes = current.writes
        if writes == current.fenced:
            return current.lsn, False
        text, block = execute(
            self.primary,
            "SELECT pg_current_wal_insert_lsn()::text, current_setting('wal_block_size')::int",
        ).fetchone()
        current.lsn = max(current.lsn, replayable(lsn_int(text) or 0, block))
        current.fenced = writes
        return current.lsn, True

    def _wait(self, replica: Replica, target: int) -> bool:
        """Poll the replica until it has replayed ``target``, at most ``wait`` seconds.

        Polls every 0.2 ms doubling to 1 ms for the first 10 ms (a healthy standby replays
        within a few), then every 5 ms. A timeout records the replica as lagging by at least
        the bound, so reads stop waiting on it until a health check measures it again.
        """
        started = time.monotonic()
        deadline = started + self.wait
        delay = 0.0002
        while True:
            try:
                position = replica.replay_position()
            except peewee.PeeweeException as exc:
                self.failed(replica, exc)
                return False
            if position is None:
                replica.mark_down("not a standby", self.retry)
                return False
            if position >= target:
                return True
            now = time.monotonic()
            if now >= deadline:
                route_stats.count("fence_timeout")
                replica.lag_ms = max(replica.lag_ms or 0.0, self.wait * 1000)
                return False
            time.sleep(min(delay, deadline - now))
            delay = min(delay * 2, 0.001 if now - started < 0.01 else 0.005)

    def choose(self) -> Replica | None:
        """The replica this read may use now, or None for the primary."""
        if self.primary.in_transaction():
            return None
        candidates = self.usable()
        if not candidates or not self.fence:
            return candidates[0] if candidates else None
        started = time.perf_counter()
        target, fetched = self._target()
        chosen = next((r for r in candidates if r.replayed >= target), None)
        if chosen is None:
            first = candidates[0]
            if (first.lag_ms or 0.0) >= self.wait * 1000:  # would time out: do not wait
                route_stats.count("fence_skipped")
            elif self._wait(first, target):
                chosen = first
        elif not fetched:
            return chosen  # no new writes, and known to be replayed: no fence to pay
        route_stats.fence_waits.append(time.perf_counter() - started)
        return chosen

    # Running a read ------------------------------------------------------------------

    def failed(self, replica: Replica, exc: BaseException) -> bool:
        """Handle a replica failure; tell whether the read may run again on the primary."""
        cause = exc.__cause__ if isinstance(exc, DataLayerError) else exc
        if is_connection_error(exc) or (cause is not None and is_connection_error(cause)):
            if not replica.database.in_transaction():
                forget_connection(replica.database)
            replica.mark_down(f"connection lost: {str(exc).strip()[:200]}", self.retry)
            return True
        # 40001 on a standby: the query was cancelled by a conflict with WAL replay.
        return cause is not None and sqlstate(cause) == "40001"

    def run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn`` with ``db`` routed to a replica when allowed, else on the primary."""
        try:
            with translate_errors():
                replica = self.choose()
            if replica is not None:
                try:
                    with routed_to(replica.database):
                        result = fn(*args, **kwargs)
                    route_stats.count("replica")
                    return result
                except Exception as exc:
                    if not self.failed(replica, exc):
                        raise
                    log.info(
                        "read %s failed on replica %s, running it on the primary: %s",
                        getattr(fn, "__qualname__", fn),
                        replica.url,
                        exc,
                    )
                    route_stats.count("fallback")
        finally:
            for each in self.replicas:
                each.release()
        route_stats.count("primary")
        return fn(*args, **kwargs)

    def close(self) -> None:
        """Close this thread's replica connections (others close when their threads do)."""
        for replica in self.replicas:
            if not replica.database.is_closed() and not replica.database.in_transaction():
                replica.database.close()
