"""The delivery queue against dedicated PostgreSQL queue libraries, side by side.

    python -m benchmarks.queue_compare [--jobs 20000] [--rounds 1] [--json out.json]

Same machine, same server, same number of jobs for every system: each trial gets a
fresh database (cloned from a per-system template), loads ``--jobs`` due jobs, starts
its worker processes (spawned; each connects before the clock starts), releases them
together and stops the clock when the last one has drained the queue. A job does no
work beyond recording its id, so what is measured is the queue itself: claiming, and
recording the outcome durably (``synchronous_commit`` as the server has it).

Exactly-once is checked for every trial of every system, from the workers' own records
and from the database afterwards: every job handled, none twice, every job finished
(``sent`` after one attempt; pgqueuer: logged ``successful`` and gone from its queue;
procrastinate: ``succeeded``). A failed check fails the run.

Systems: ``datalayer`` (``DeliveryQueries.mark_sent_and_claim``: each batch marked
with the next claim, one statement per batch; and ``claim`` + ``mark_sent_many``), and,
when installed (``pip install -e
'.[queuebench]'``), ``pgqueuer`` (asyncpg, ``QueueManager.run(mode=drain)``) and
``procrastinate`` (psycopg 3 pool, ``run_worker_async(wait=False)``); a missing one is
skipped with a note. Each system runs several configurations (processes × batch or
concurrency); the report gives each one's jobs/s (the median over ``--rounds``, which
run interleaved), each system's best, and the ratios of datalayer's best to the others'.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib.util
import json
import multiprocessing as mp
import os
import platform
import queue
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg2

from benchmarks import claim

ADMIN_URL = os.environ.get(
    "DATALAYER_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
STARTUP_TIMEOUT = 120.0
RUN_TIMEOUT = 900.0
ENTRYPOINT = "bench_job"


# --- databases ----------------------------------------------------------------------------


def _admin(sql: str, url: str = ADMIN_URL) -> Any:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def db_url(name: str) -> str:
    """The URL of database ``name`` on the benchmark server."""
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


@contextlib.contextmanager
def database(template: str | None = None) -> Iterator[str]:
    """A new database (a clone of ``template`` if given) for one trial; dropped after."""
    name = f"dlqbench_{uuid.uuid4().hex[:10]}"
    _admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield name
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run_async(coro: Any) -> Any:
    """Run a coroutine on uvloop when installed (the queue libraries' recommended loop)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


# --- the systems --------------------------------------------------------------------------


@dataclass
class System:
    """One queue implementation: how to prepare a template, load jobs, work and check."""

    name: str
    module: str | None  # the optional package it needs (None: always available)
    configs: list[tuple[int, int, str]]  # (processes, batch or concurrency, variant)
    config_label: Callable[[int, int, str], str]
    prepare: Callable[[str], None]  # template database name -> schema installed
    load: Callable[[str, int], None]  # trial database name, jobs
    work: Callable[[str, int, int, str, Any], tuple[list[Any], int]]  # -> (handled, refused)
    check: Callable[[str, int, list[Any]], dict[str, int]]  # -> counts that must be 0
    template: str | None = None
    max_rounds: int | None = None  # a slow system may run fewer rounds (said in the report)


def _dl_prepare(name: str) -> None:
    from datalayer import db, init_db
    from datalayer.evolve.migrate import migrate
    from datalayer.seed import SeedPlan, seed

    url = db_url(name)
    migrate(url)
    init_db(url)
    seed(SeedPlan(tenants=20, users_per_tenant=10, todos_per_user=0, notifications_per_user=0))
    db.close()


def _dl_load(name: str, jobs: int) -> None:
    from datalayer import db, init_db

    init_db(db_url(name))
    claim.load_deliveries(jobs)
    for table in ("notifications", "notification_deliveries"):
        db.execute_sql(f"VACUUM ANALYZE {table}")
    db.close()


def _dl_work(name: str, index: int, batch: int, marks: str, barrier: Any) -> tuple[list[Any], int]:
    from datalayer import db, init_db

    init_db(db_url(name))
    db.execute_sql("SELECT 1")  # connected before the clock starts
    barrier.wait(STARTUP_TIMEOUT)
    handled: list[Any] = []
    try:
        many = {"each": False, "many": True}.get(marks, marks)
        _, refused = claim.drain(f"bench-{index}", handled, batch, many)
    finally:
        db.close()
    return handled, refused


def _dl_check(name: str, jobs: int, handled: list[Any]) -> dict[str, int]:
    rows = _admin(
        "SELECT count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE attempts <> 1),"
        " count(*) FROM notification_deliveries",
        db_url(name),
    )
    sent, retried, total = rows[0]
    return {"not_finished": total - sent, "attempts_not_1": retried, "rows_not_n": total - jobs}


def _pgq_prepare(name: str) -> None:
    import asyncpg
    from pgqueuer import AsyncpgDriver, Queries

    async def install() -> None:
        conn = await asyncpg.connect(db_url(name))
        await Queries(AsyncpgDriver(conn)).install()
        await conn.close()

    _run_async(install())


def _pgq_load(name: str, jobs: int) -> None:
    import asyncpg
    from pgqueuer import AsyncpgDriver, Queries

    async def enqueue() -> None:
        conn = await asyncpg.connect(db_url(name))
        queries = Queries(AsyncpgDriver(conn))
        for start in range(0, jobs, 5000):
            size = min(5000, jobs - start)
            await queries.enqueue([ENTRYPOINT] * size, [None] * size, [0] * size)
        await conn.execute("VACUUM ANALYZE pgqueuer")
        await conn.close()

    _run_async(enqueue())


def _pgq_work(name: str, index: int, batch: int, _: str, barrier: Any) -> tuple[list[Any], int]:
    import asyncpg
    from pgqueuer import AsyncpgDriver, Job, Queries, QueueManager
    from pgqueuer.types import QueueExecutionMode

    handled: list[Any] = []

    async def work() -> None:
        conn = await asyncpg.connect(db_url(name))
        qm = QueueManager(Queries(AsyncpgDriver(conn)))

        @qm.entrypoint(ENTRYPOINT)
        async def job(job: Job) -> None:
            handled.append(int(job.id))

        barrier.wait(STARTUP_TIMEOUT)
        await qm.run(
            batch_size=batch,
            mode=QueueExecutionMode.drain,
            dequeue_timeout=dt.timedelta(seconds=0.05),
            log_aggregation_interval=dt.timedelta(0),
        )
        await conn.close()

    _run_async(work())
    return handled, 0


def _pgq_check(name: str, jobs: int, handled: list[Any]) -> dict[str, int]:
    url = db_url(name)
    (left,) = _admin("SELECT count(*) FROM pgqueuer", url)[0]
    (ok, logged_twice) = _admin(
        "SELECT count(DISTINCT job_id), count(*) - count(DISTINCT job_id) FROM pgqueuer_log"
        " WHERE status = 'successful'",
        url,
    )[0]
    return {"not_finished": left + (jobs - ok), "logged_twice": logged_twice}


def _pc_app(url: str, pool_size: int) -> Any:
    import logging

    import procrastinate

    # Quiet its "App is instantiated in the main module" warning: this is a benchmark.
    logging.getLogger("procrastinate").setLevel(logging.ERROR)
    connector = procrastinate.PsycopgConnector(conninfo=url, min_size=pool_size, max_size=pool_size)
    app = procrastinate.App(connector=connector)
    return app


def _pc_prepare(name: str) -> None:
    async def apply() -> None:
        app = _pc_app(db_url(name), 1)
        async with app.open_async():
            await app.schema_manager.apply_schema_async()

    _run_async(apply())


def _pc_load(name: str, jobs: int) -> None:
    async def defer() -> None:
        app = _pc_app(db_url(name), 1)

        @app.task(name=ENTRYPOINT)
        async def job(n: int) -> None:  # the same task the workers run
            return None

        async with app.open_async():
            for start in range(0, jobs, 5000):
                await job.batch_defer_async(
                    *({"n": i} for i in range(start, min(start + 5000, jobs)))
                )
        _admin("VACUUM ANALYZE procrastinate_jobs", db_url(name))

    _run_async(defer())


def _pc_work(
    name: str, index: int, concurrency: int, _: str, barrier: Any
) -> tuple[list[Any], int]:
    handled: list[Any] = []

    async def work() -> None:
        app = _pc_app(db_url(name), concurrency + 2)

        @app.task(name=ENTRYPOINT, pass_context=True)
        async def job(context: Any, n: int) -> None:
            handled.append(context.job.id)

        async with app.open_async():
            barrier.wait(STARTUP_TIMEOUT)
            await app.run_worker_async(
                concurrency=concurrency,
                wait=False,
                install_signal_handlers=False,
                listen_notify=False,
                name=f"bench-{index}",
            )

    _run_async(work())
    return handled, 0


def _pc_check(name: str, jobs: int, handled: list[Any]) -> dict[str, int]:
    (done, total) = _admin(
        "SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*) FROM procrastinate_jobs",
        db_url(name),
    )[0]
    return {"not_finished": total - done, "rows_not_n": total - jobs}


SYSTEMS = [
    System(
        "datalayer",
        None,
        [
            (2, 50, "and_claim"),
            (4, 50, "and_claim"),
            (8, 50, "and_claim"),
            (4, 100, "and_claim"),
            (4, 100, "many"),
        ],
        lambda p, b, m: (
            f"{p} processes, claim(limit={b}), "
            + {"and_claim": "mark_sent_and_claim", "many": "mark_sent_many"}.get(m, "mark_sent")
        ),
        _dl_prepare,
        _dl_load,
        _dl_work,
        _dl_check,
    ),
    System(
        "pgqueuer",
        "pgqueuer",
        [(2, 50, ""), (4, 50, ""), (8, 50, ""), (2, 100, ""), (4, 100, ""), (8, 100, "")],
        lambda p, b, _: f"{p} processes, batch {b}",
        _pgq_prepare,
        _pgq_load,
        _pgq_work,
        _pgq_check,
    ),
    System(
        "procrastinate",
        "procrastinate",
        [(2, 8, ""), (4, 8, "")],
        lambda p, c, _: f"{p} processes × concurrency {c}",
        _pc_prepare,
        _pc_load,
        _pc_work,
        _pc_check,
        # An order of magnitude slower than the others: one round (20,000 jobs) each.
        max_rounds=1,
    ),
]


# --- one trial ----------------------------------------------------------------------------


def _child(
    system: str, name: str, index: int, size: int, variant: str, barrier: Any, results: Any
) -> None:
    """One worker process of a trial: work, then report what it handled and when it ended."""
    work = next(s for s in SYSTEMS if s.name == system).work
    try:
        handled, refused = work(name, index, size, variant, barrier)
        results.put((index, handled, refused, time.monotonic(), None))
    except BaseException as exc:  # reported to the parent, which fails the run
        with contextlib.suppress(Exception):
            barrier.abort()
        results.put((index, [], 0, time.monotonic(), repr(exc)))


@dataclass
class Trial:
    system: str
    config: str
    processes: int
    size: int
    variant: str
    jobs_per_second: list[float] = field(default_factory=list)
    load: list[float] = field(default_factory=list)
    checks: dict[str, int] = field(default_factory=dict)


def run_trial(system: System, processes: int, size: int, variant: str, jobs: int) -> float:
    """Run one configuration on a fresh clone of the system's template; return jobs/s."""
    with database(system.template) as name:
        system.load(name, jobs)
        ctx = mp.get_context("spawn")
        barrier = ctx.Barrier(processes + 1)
        results = ctx.Queue()
        procs = [
            ctx.Process(
                target=_child,
                args=(system.name, name, i, size, variant, barrier, results),
                daemon=True,
            )
            for i in range(processes)
        ]
        for p in procs:
            p.start()
        try:
            barrier.wait(STARTUP_TIMEOUT)
            started = time.monotonic()
            reports = _collect(results, processes)
        finally:
            for p in procs:
                p.join(timeout=30)
                if p.is_alive():
                    p.terminate()
        errors = [r[4] for r in reports if r[4]]
        if errors:
            raise RuntimeError(f"{system.name} worker failed: {errors[0]}")
        elapsed = max(r[3] for r in reports) - started
        handled = [i for r in reports for i in r[1]]
        checks = {
            "handled_twice": len(handled) - len(set(handled)),
            "never_handled": jobs - len(set(handled)),
            "refused": sum(r[2] for r in reports),
            **system.check(name, jobs, handled),
        }
        if any(checks.values()):
            raise AssertionError(f"{system.name} exactly-once checks failed: {checks}")
        return jobs / elapsed


def _collect(results: Any, processes: int) -> list[tuple[Any, ...]]:
    reports = []
    deadline = time.monotonic() + RUN_TIMEOUT
    while len(reports) < processes:
        try:
            reports.append(results.get(timeout=max(0.1, deadline - time.monotonic())))
        except queue.Empty:
            raise RuntimeError(f"workers did not finish within {RUN_TIMEOUT:.0f} s") from None
    return reports


# --- the run ------------------------------------------------------------------------------


def available(systems: list[System], wanted: list[str]) -> list[System]:
    """The systems asked for whose packages are installed (a note for each missing one)."""
    chosen = []
    for system in systems:
        if system.name not in wanted:
            continue
        if system.module and importlib.util.find_spec(system.module) is None:
            print(
                f"note: {system.module} is not installed; its column is skipped "
                "(pip install -e '.[queuebench]')",
                file=sys.stderr,
            )
            continue
        chosen.append(system)
    return chosen


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure(systems: list[System], jobs: int, rounds: int) -> list[Trial]:
    """Run every configuration of every system ``rounds`` times, interleaved."""
    trials = [
        Trial(s.name, s.config_label(p, b, v), p, b, v) for s in systems for (p, b, v) in s.configs
    ]
    by_name = {s.name: s for s in systems}
    for r in range(rounds):
        # Rotate the order each round so no system always runs first (or last).
        order = trials[r % len(trials) :] + trials[: r % len(trials)]
        for trial in order:
            system = by_name[trial.system]
            if system.max_rounds is not None and r >= system.max_rounds:
                continue
            rate = run_trial(system, trial.processes, trial.size, trial.variant, jobs)
            trial.jobs_per_second.append(rate)
            trial.load.append(os.getloadavg()[0])
            log(f"round {r + 1}: {trial.system}, {trial.config}: {rate:,.0f} jobs/s")
    return trials


def summarize(trials: list[Trial]) -> dict[str, Any]:
    """Each system's best configuration (by median jobs/s) and datalayer's ratios to them."""
    best: dict[str, dict[str, Any]] = {}
    for t in trials:
        median = statistics.median(t.jobs_per_second)
        if t.system not in best or median > best[t.system]["jobs_per_second"]:
            best[t.system] = {"config": t.config, "jobs_per_second": round(median, 1)}
    ours = best.get("datalayer", {}).get("jobs_per_second")
    ratios = {
        name: round(ours / b["jobs_per_second"], 2)
        for name, b in best.items()
        if ours and name != "datalayer"
    }
    return {"best": best, "datalayer_over": ratios}


def render(trials: list[Trial], summary: dict[str, Any], jobs: int) -> str:
    lines = [
        f"## Queue comparison: {jobs:,} jobs, exactly-once checked in every trial",
        "",
        "| system | configuration | jobs/s (median) | runs | load avg (1 min) |",
        "|---|---|--:|--:|--:|",
    ]
    for t in trials:
        runs = ", ".join(f"{r:,.0f}" for r in t.jobs_per_second)
        lines.append(
            f"| {t.system} | {t.config} | {statistics.median(t.jobs_per_second):,.0f} | "
            f"{runs} | {statistics.median(t.load):.1f} |"
        )
    lines += [
        "",
        "| system | best configuration | jobs/s | datalayer's best / this |",
        "|---|---|--:|--:|",
    ]
    for name, b in summary["best"].items():
        ratio = summary["datalayer_over"].get(name)
        cell = "—" if ratio is None else f"{ratio:.2f}×"
        lines.append(f"| {name} | {b['config']} | {b['jobs_per_second']:,.0f} | {cell} |")
    return "\n".join(lines)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs per trial (20,000)")
    parser.add_argument("--rounds", type=int, default=1, help="repetitions, interleaved")
    parser.add_argument(
        "--systems",
        default="datalayer,pgqueuer,procrastinate",
        help="comma-separated subset of datalayer,pgqueuer,procrastinate",
    )
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    systems = available(SYSTEMS, args.systems.split(","))
    if not systems:
        print("nothing to run", file=sys.stderr)
        return 1
    templates = []
    try:
        for system in systems:
            name = f"dlqbench_tpl_{uuid.uuid4().hex[:8]}"
            _admin(f'CREATE DATABASE "{name}"')
            templates.append(name)
            system.prepare(name)
            system.template = name
            log(f"{system.name}: template ready")
        started = time.monotonic()
        trials = measure(systems, args.jobs, args.rounds)
    finally:
        for name in templates:
            _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    summary = summarize(trials)
    settings = dict(
        _admin(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('synchronous_commit', 'fsync', 'server_version', 'max_connections')"
        )
    )
    results = {
        "jobs": args.jobs,
        "rounds": args.rounds,
        "trials": [t.__dict__ for t in trials],
        **summary,
        "versions": {s.module: _version(s.module) for s in systems if s.module},
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "postgres": settings,
        },
        "seconds": round(time.monotonic() - started, 1),
    }
    print(render(trials, summary, args.jobs))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
    return 0


def _version(module: str) -> str:
    from importlib.metadata import version

    return version(module)


if __name__ == "__main__":
    sys.exit(main())
