"""The units online migration operations are made of, and how each one runs.

An online operation (see ``datalayer.migration_ops.online``) queues a ``Step``: a list of
units, each a statement or a batched backfill. On PostgreSQL ``datalayer migrate`` runs
a migration made of steps outside its transaction, unit by unit, each unit in a
transaction of its own: a unit that needs a lock writers also need waits for it at most
``lock_timeout`` and is tried again with backoff, a bounded number of times, so a
migration queued behind a long transaction never holds writers up for longer than that.
Every unit can run twice (``IF NOT EXISTS``, or a guard query): a migration that failed
half-way is still pending and runs again from its start.

Inside a transaction (SQLite, or ``pw_migrate migrate``) the same units run as plain
statements, without ``CONCURRENTLY``. This module imports nothing of the package.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

__all__ = ["Backfill", "RunSettings", "Statement", "Step", "settings", "sqlstate_in"]

logger = logging.getLogger("datalayer.migrate")

_CONCURRENTLY = re.compile(r"\s+CONCURRENTLY\b", re.IGNORECASE)
LOCK_NOT_AVAILABLE = "55P03"


class RunSettings:
    """How steps run: set by ``datalayer migrate`` for the length of a run."""

    def __init__(self) -> None:
        self.lock_timeout = 2.0
        self.retries = 4
        # A backfill batch holds its rows' locks until it commits: a writer updating one
        # of them waits for the batch. Batches are sized to take about this long.
        self.batch_seconds = 0.05
        self.stream: TextIO | None = None  # progress goes here; None: sys.stderr

    @contextmanager
    def use(self, *, lock_timeout: float, retries: int) -> Iterator[RunSettings]:
        """Apply these settings while the block runs."""
        saved = (self.lock_timeout, self.retries)
        self.lock_timeout, self.retries = lock_timeout, retries
        try:
            yield self
        finally:
            self.lock_timeout, self.retries = saved


settings = RunSettings()


def sqlstate_in(exc: BaseException) -> str | None:
    """Return the SQLSTATE behind a (wrapped) driver error, if any."""
    seen: BaseException | None = exc
    while seen is not None:
        code = getattr(seen, "pgcode", None) or getattr(getattr(seen, "orig", None),
                                                         "pgcode", None)
        if code:
            return str(code)
        seen = seen.__cause__ or seen.__context__
    return None


def _is_sqlite(database: Any) -> bool:
    return type(database).__name__.startswith("Sqlite") or getattr(
        database, "param", "%s") == "?"


class Statement:
    """One statement, run when ``unless`` (a query) returns no row or a false value.

    ``blocks_writers``: the statement takes a lock writers wait for (ACCESS EXCLUSIVE,
    SHARE ROW EXCLUSIVE), so it gets the short lock timeout; the others (CONCURRENTLY,
    VALIDATE) wait as long as they must, since writers do not wait for them.
    """

    def __init__(self, postgres: str, *, sqlite: str | None = None,
                 unless: str | None = None, blocks_writers: bool = True,
                 on_error: str | None = None) -> None:
        self.postgres, self.sqlite = postgres, sqlite
        self.unless, self.blocks_writers = unless, blocks_writers
        self.on_error = on_error  # undoes what an earlier unit did, should this one fail

    def run(self, database: Any, *, outside: bool) -> None:
        """Run the statement (on SQLite its own text; ``sqlite=""`` means nothing)."""
        if _is_sqlite(database):
            if self.sqlite:
                database.execute_sql(self.sqlite)
            return
        if self.unless is not None:
            row = database.execute_sql(self.unless).fetchone()
            if row and row[0]:
                return
        text = self.postgres if outside else _CONCURRENTLY.sub("", self.postgres)
        database.execute_sql(text)

    def __repr__(self) -> str:
        return f"Statement({self.postgres!r})"


class Backfill:
    """Fill rows in batches, one transaction per batch, in key order.

    ``where`` selects the rows still to fill; a backfill that stopped resumes with the
    rows it still selects. Progress: a bar on a terminal, log lines elsewhere.

    Outside a transaction (PostgreSQL online) a batch locks its rows until it commits,
    so a writer updating one of them waits for the whole batch. Batches start small
    (``FIRST_BATCH`` rows) and are sized from the last one's time to take about
    ``settings.batch_seconds``, never more than ``batch_size`` rows: on a fast table they
    grow to ``batch_size``; on a slow one (triggers, many indexes, a loaded server) they
    shrink, so no writer waits much longer than ``batch_seconds``.
    """

    FIRST_BATCH = 100

    blocks_writers = True

    def __init__(self, table: str, assignments: str, *, where: str = "TRUE",
                 key: str = "id", batch_size: int = 10_000, sqlite: bool = True) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self.table, self.assignments, self.where = table, assignments, where
        self.key, self.batch_size, self.on_sqlite = key, batch_size, sqlite

    def run(self, database: Any, *, outside: bool) -> None:
        """Update every selected row, a batch per transaction; report progress."""
        if not self.on_sqlite and _is_sqlite(database):
            return
        table, key = _quote(self.table), _quote(self.key)
        total = database.execute_sql(
            f"SELECT count(*) FROM {table} WHERE {self.where}").fetchone()[0]
        bar = _Progress(f"backfill {self.table}", total)
        param = "?" if _is_sqlite(database) else "%s"
        update = (f"UPDATE {table} SET {self.assignments} WHERE {key} IN (SELECT {key} "
                  f"FROM {table} WHERE ({self.where}) AND {key} > {param} ORDER BY {key} "
                  f"LIMIT {param}) RETURNING {key}")
        first = f"SELECT min({key}) FROM {table} WHERE {self.where}"
        low = database.execute_sql(first).fetchone()[0]
        if low is None:
            return bar.finish()
        last, done = _before(low), 0
        size = min(self.batch_size, self.FIRST_BATCH) if outside else self.batch_size
        while True:
            started = time.perf_counter()
            with database.atomic():
                if outside:
                    _set_lock_timeout(database, settings.lock_timeout, local=True)
                keys = [row[0] for row in database.execute_sql(
                    update, (last, size)).fetchall()]
            took = time.perf_counter() - started
            if not keys:
                return bar.finish()
            logger.debug("backfill %s: %d rows in %.1f ms", self.table, len(keys), took * 1000)
            last, done = max(keys), done + len(keys)
            bar.update(done)
            if outside:
                size = _next_size(size, took, settings.batch_seconds, self.batch_size)

    def __repr__(self) -> str:
        return f"Backfill({self.table!r}, {self.assignments!r}, where={self.where!r})"


def _next_size(size: int, took: float, target: float, largest: int) -> int:
    """The next batch's size: scaled towards ``target`` seconds, at most doubled."""
    if took <= 0:
        return min(size * 2, largest)
    scaled = int(size * min(target / took, 2.0))
    return max(1, min(scaled, largest))


def _before(value: Any) -> Any:
    """Return a key just below ``value`` (keys are integers or text)."""
    return value - 1 if isinstance(value, int) else ""


class _Progress:
    """A progress bar on a terminal, a log line every tenth elsewhere."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.logged = label, total, -1
        self.stream = settings.stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, done: int) -> None:
        share = min(done / self.total, 1.0) if self.total else 1.0
        if self.tty:
            filled = int(share * 30)
            self.stream.write(f"\r{self.label}: [{'#' * filled}{'.' * (30 - filled)}] "
                              f"{done}/{self.total} rows")
            self.stream.flush()
        elif int(share * 10) > self.logged:
            self.logged = int(share * 10)
            logger.info("%s: %d/%d rows (%d%%)", self.label, done, self.total, share * 100)

    def finish(self) -> None:
        if self.tty and self.total:
            self.stream.write("\n")
        logger.info("%s: done (%d rows selected)", self.label, self.total)


class Step:
    """A queued online operation: its units, run in order (see the module docstring)."""

    datalayer_online = True

    def __init__(self, database: Any, name: str, units: Sequence[Statement | Backfill],
                 *, drops: tuple[tuple[str, str, str | None], ...] = ()) -> None:
        self.database, self.__name__, self.units = database, name, list(units)
        self.drops = drops  # ("column", table, column): migrate's data-loss guard reads it

    def __call__(self) -> None:
        """Run inside the caller's transaction (SQLite, pw_migrate): no retries."""
        for unit in self.units:
            unit.run(self.database, outside=False)

    def run_outside(self, on_retry: Callable[[str, int, float], None] | None = None) -> None:
        """Run unit by unit outside any transaction, retrying lock timeouts."""
        for unit in self.units:
            _with_retries(self.database, unit, on_retry)

    def __repr__(self) -> str:
        return f"Step({self.__name__!r}, {self.units!r})"


def _with_retries(database: Any, unit: Statement | Backfill,
                  on_retry: Callable[[str, int, float], None] | None) -> None:
    delay = 0.25
    for attempt in range(settings.retries + 1):
        _set_lock_timeout(database, settings.lock_timeout if unit.blocks_writers else 0.0)
        try:
            unit.run(database, outside=True)
            return
        except Exception as exc:
            if sqlstate_in(exc) != LOCK_NOT_AVAILABLE or attempt == settings.retries:
                _undo(database, getattr(unit, "on_error", None))
                raise
            logger.warning("lock timeout on %r (attempt %d): retrying in %.2fs",
                           unit, attempt + 1, delay)
            if on_retry is not None:
                on_retry(repr(unit), attempt + 1, delay)
            time.sleep(delay)
            delay = min(delay * 2, 4.0)


def _undo(database: Any, statement: str | None) -> None:
    """Run a failed unit's clean-up (e.g. drop the NOT VALID constraint it validated)."""
    if statement is None:
        return
    try:
        _set_lock_timeout(database, settings.lock_timeout)
        database.execute_sql(statement)
    except Exception:  # the unit's own error is the one to report
        logger.exception("clean-up after a failed step failed: %s", statement)


def _set_lock_timeout(database: Any, seconds: float, *, local: bool = False) -> None:
    database.execute_sql("SELECT set_config('lock_timeout', %s, %s)",
                         (f"{int(seconds * 1000)}ms", local))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
