"""Faults during real write traffic: server restarts, PgBouncer PAUSE/RESUME and KILL.

Writers are idempotent units of work through ``retrying``: a client-generated id (the
idempotency key) and ``INSERT ... ON CONFLICT DO NOTHING``, so a unit whose COMMIT
succeeded but whose acknowledgement was lost is a no-op when retried. After every run:
exactly one row per write, every acknowledged write present, and the same worker
threads did all the work (none was restarted).

The restart test runs on a private PostgreSQL cluster (initdb into a temporary directory,
its own port), removed afterwards even on failure. With DATALAYER_TEST_PGBOUNCER=1 the
writers reach that cluster through a PgBouncer of its own, so the restarts happen
behind the pooler; otherwise they connect directly.
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import PGBOUNCER, build_schema, db_name, postgres_only
from pgbouncer import PgBouncer, free_port

from datalayer import db, init_db, retrying
from datalayer.models import Waitlist
from datalayer.models.base import new_id

pytestmark = [postgres_only, pytest.mark.slow]


def _bindir() -> Path:
    found = os.environ.get("PG_BINDIR") or max(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), default=""
    )
    if not found or not (Path(found) / "initdb").exists():
        pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) not found: set PG_BINDIR")
    return Path(found)


class PrivateCluster:
    """A throwaway PostgreSQL cluster: ``start()``, ``url(db)``, ``restart(mode)``, ``destroy()``."""

    def __init__(self) -> None:
        self.bin = _bindir()
        self.dir = Path(tempfile.mkdtemp(prefix="dl-pgcluster-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            entry = pwd.getpwnam("postgres")
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [*self.as_user, *args],
            check=True,
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def _pg_ctl(self, *args: str) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-t", "30", *args)

    def start(self) -> PrivateCluster:
        initdb = f"{self.bin}/initdb -D {self.data} -U postgres -A trust -E UTF8 --no-locale"
        self._run(*initdb.split(), "--no-sync")
        # fsync=off only risks data on an OS crash; process crashes (-m immediate) keep
        # every committed transaction, which is what the test checks.
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c max_connections=50"
        )
        self._pg_ctl("-l", str(self.dir / "server.log"), "-o", options, "start")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def restart(self, mode: str) -> None:
        self._pg_ctl("-m", mode, "restart")

    def destroy(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._pg_ctl("-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_cluster() -> Iterator[tuple[PrivateCluster, str]]:
    """A migrated private cluster and the URL the writers use (through PgBouncer if asked)."""
    cluster = PrivateCluster()
    bouncer = None
    try:
        cluster.start()
        build_schema(cluster.url())
        if PGBOUNCER:
            bouncer = PgBouncer(cluster.url(), pool_size=3).start()
        yield cluster, bouncer.url("postgres", pooler="transaction") if bouncer else cluster.url()
        if db.obj is not None:
            db.close()
    finally:
        if bouncer is not None:
            bouncer.stop()
        cluster.destroy()


class RetryLog(logging.Handler):
    """Counts ``retrying``'s retries, per thread."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[int | None] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.threads.append(record.thread)


class Writers:
    """``threads`` workers each making ``per_thread`` idempotent writes through ``retrying``."""

    def __init__(self, threads: int, per_thread: int, pause: float = 0.0) -> None:
        self.keys = [[new_id() for _ in range(per_thread)] for _ in range(threads)]
        self.acked: list[list[str]] = [[] for _ in range(threads)]
        self.errors: list[BaseException] = []
        self.pause = pause
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]
        self.thread_ids: set[int] = set()
        self.reconnects = [0] * threads  # connections replaced after a fault, per thread
        self.retries = RetryLog()
        # Each writer holds its last write until every fault step has run (``release``), so
        # every writer is alive through every fault, however the threads are scheduled.
        self.steps_done = threading.Event()

    @property
    def done(self) -> int:
        return sum(len(a) for a in self.acked)

    @property
    def total(self) -> int:
        return sum(len(k) for k in self.keys)

    def _write(self, key: str, email: str) -> None:
        Waitlist.insert(id=key, email=email).on_conflict_ignore().execute()

    def _run(self, n: int) -> None:
        self.thread_ids.add(threading.get_ident())
        conn = None
        try:
            for i, key in enumerate(self.keys[n]):
                email = f"w{n}-{i}@example.com"
                if i == len(self.keys[n]) - 1:
                    assert self.steps_done.wait(120), "the fault steps never finished"
                retrying(
                    lambda k=key, e=email: self._write(k, e),
                    attempts=40,
                    base_delay=0.02,
                    max_delay=0.5,
                )
                self.acked[n].append(key)
                if conn is not None and db.obj._state.conn is not conn:
                    self.reconnects[n] += 1
                conn = db.obj._state.conn
                if self.pause:
                    time.sleep(self.pause)
        except BaseException as exc:  # noqa: BLE001 - asserted by the test
            self.errors.append(exc)
        finally:
            db.close()

    def retries_by_thread(self) -> list[int]:
        return [self.retries.threads.count(t.ident) for t in self._threads]

    def start(self) -> Writers:
        logging.getLogger("datalayer.connection.retrying").addHandler(self.retries)
        for t in self._threads:
            t.start()
        return self

    def wait_for(self, done: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.done < done:
            assert not self.errors, self.errors
            assert time.monotonic() < deadline, f"stuck at {self.done} writes"
            time.sleep(0.01)

    def join(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        try:
            for t in self._threads:
                t.join(max(0.0, deadline - time.monotonic()))
                assert not t.is_alive(), "a writer is stuck"
        finally:
            logging.getLogger("datalayer.connection.retrying").removeHandler(self.retries)

    def check(self) -> None:
        """Exactly one row per write, every acknowledged write present, by the same threads."""
        assert self.errors == []
        acked = {key for keys in self.acked for key in keys}
        assert len(acked) == self.total
        rows = [row[0] for row in Waitlist.select(Waitlist.id).tuples()]
        assert len(rows) == self.total
        assert set(rows) == acked
        assert len(self.thread_ids) == len(self._threads)


def _during(writers: Writers, steps: list[tuple[float, Callable[[], None]]]) -> None:
    """Run each step once ``fraction`` of the writes is acknowledged, then let them finish."""
    writers.start()
    try:
        for fraction, step in steps:
            writers.wait_for(int(writers.total * fraction))
            step()
    finally:
        writers.steps_done.set()
        writers.join()


def test_writes_survive_fast_and_immediate_server_restarts(private_cluster) -> None:
    cluster, url = private_cluster
    init_db(url)
    writers = Writers(threads=4, per_thread=400, pause=0.002)
    _during(
        writers,
        [
            (0.25, lambda: cluster.restart("fast")),
            (0.55, lambda: cluster.restart("immediate")),
        ],
    )
    writers.check()
    if PGBOUNCER:  # idle clients keep their PgBouncer connection; in-flight ones fail
        assert sum(writers.retries_by_thread()) >= 1
    else:  # each restart broke every thread's connection; each thread recovered by itself
        assert min(writers.reconnects) >= 2, writers.reconnects
        assert min(writers.retries_by_thread()) >= 2


def test_writes_survive_pgbouncer_pause_resume_and_kill(fresh_db, pgbouncer) -> None:
    name = db_name(fresh_db)
    init_db(pgbouncer.url(name, pooler="transaction"))
    writers = Writers(threads=4, per_thread=250, pause=0.001)
    paused_progress: list[int] = []

    def pause_and_resume() -> None:
        pgbouncer.admin(f'PAUSE "{name}"')  # returns once no transaction is in flight
        before = writers.done
        time.sleep(0.3)
        paused_progress.append(writers.done - before)
        pgbouncer.admin(f'RESUME "{name}"')

    def kill_and_resume() -> None:
        pgbouncer.admin(f'KILL "{name}"')  # drops every client and server connection
        time.sleep(0.2)
        pgbouncer.admin(f'RESUME "{name}"')

    _during(writers, [(0.2, pause_and_resume), (0.5, kill_and_resume)])
    writers.check()
    assert paused_progress[0] <= 4  # at most one acknowledgement per thread in transit
    assert min(writers.reconnects) >= 1, writers.reconnects  # KILL broke every connection
