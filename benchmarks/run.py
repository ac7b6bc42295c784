"""Side-by-side timing of the library against hand-written drivers producing identical DTOs.

    python -m benchmarks.run [--quick] [--json out.json] [--todos N] [--profile CASE]

Creates its own PostgreSQL database (admin URL from DATALAYER_BENCH_PG_URL) and SQLite
file, loads data with the seed generator, checks once that each library call, its raw
psycopg2/sqlite3 twin and its SQLAlchemy Core twin (when SQLAlchemy 2 is installed)
return the same dicts, then times them interleaved over several repetitions and prints
medians and ratios; then keyset page 1 against page 1,000, and the delivery queue's
claim throughput with 8 worker processes. Not part of the tests' pass/fail: timings on
shared machines are noisy.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import os
import platform
import pstats
import sys
import tempfile
import time
import uuid
from typing import Any

import psycopg2

from benchmarks import claim, pages, raw, report
from benchmarks.cases import Case, run
from benchmarks.operations import bench_user, pg_connect, postgres_cases, sqlite_cases
from datalayer import db, init_db
from datalayer.evolve.migrate import migrate
from datalayer.seed import SeedPlan, seed

ADMIN_URL = os.environ.get(
    "DATALAYER_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def load_sqlalchemy() -> Any:
    """The SQLAlchemy twins module, or None (with a note) when SQLAlchemy 2 is missing."""
    try:
        from benchmarks import sqla
    except ImportError:
        print(
            "note: SQLAlchemy is not installed; the SQLAlchemy Core column is skipped "
            "(pip install 'sqlalchemy>=2')",
            file=sys.stderr,
        )
        return None
    if not sqla.available():
        print("note: SQLAlchemy < 2; the SQLAlchemy Core column is skipped", file=sys.stderr)
        return None
    return sqla


_STARTED = time.monotonic()


def log(message: str) -> None:
    """Progress on stderr (the report goes to stdout)."""
    print(f"[{time.monotonic() - _STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def _admin(sql: str) -> None:
    conn = psycopg2.connect(ADMIN_URL)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql)
    conn.close()


def profile(case: Case, seconds: float = 3.0) -> None:
    """Print where the library side of ``case`` spends its time (cProfile, by own time)."""
    fn = case.sides["library"]
    profiler = cProfile.Profile()
    deadline = time.perf_counter() + seconds
    profiler.enable()
    while time.perf_counter() < deadline:
        for _ in range(case.calls):
            fn()
    profiler.disable()
    print(f"\n## cProfile: library side of {case.name}\n")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(18)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, fewer repetitions")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument("--todos", type=int, help="seeded todos (default 200,000; quick 50,000)")
    parser.add_argument(
        "--deliveries", type=int, help="deliveries for the claim run (default 20,000; quick 5,000)"
    )
    parser.add_argument("--workers", type=int, default=8, help="claim worker processes")
    parser.add_argument(
        "--profile",
        metavar="CASE",
        action="append",
        default=[],
        help="after timing, cProfile the library side of CASE, or one claim worker "
        "with 'claim' (repeatable)",
    )
    parser.add_argument("--no-sqlalchemy", action="store_true", help="skip the SQLAlchemy column")
    parser.add_argument(
        "--replicas",
        action="store_true",
        help="also time the read-your-writes fence on a private primary + standby",
    )
    return parser.parse_args(argv)


def _profile_named(cases: list[Case], names: list[str]) -> None:
    for case in cases:
        if case.name in names:
            profile(case)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    todos = args.todos or (50_000 if args.quick else 200_000)
    deliveries = args.deliveries or (5_000 if args.quick else 20_000)
    repetitions = 15 if args.quick else 31
    sqla = None if args.no_sqlalchemy else load_sqlalchemy()
    name = f"dlbench_{uuid.uuid4().hex[:10]}"
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    started = time.monotonic()
    results: dict[str, Any] = {}
    twins: Any = None
    _admin(f'CREATE DATABASE "{name}"')
    try:
        migrate(url)
        init_db(url)
        users = max(1, todos // 100)
        seed(
            SeedPlan(
                tenants=max(1, users // 10),
                users_per_tenant=10,
                todos_per_user=100,
                notifications_per_user=0,
            )
        )
        log(f"seeded {todos:,} todos")
        user_id = bench_user(2_000)
        db.execute_sql("ANALYZE")
        pg_version = db.execute_sql("SHOW server_version").fetchone()[0]
        twins = sqla.Twins(url) if sqla else None
        conn = pg_connect(url)
        cases = postgres_cases(conn, user_id, bench_user(0), args.quick, twins)
        run(cases, repetitions)
        conn.close()
        operations = {c.name: c.result() for c in cases}
        log("PostgreSQL operations timed")
        _profile_named(cases, args.profile)
        conn = pg_connect(url)
        page_result = pages.run_pages(conn, twins, repetitions)
        conn.close()
        log("keyset pages timed")
        claim_result = claim.run_claim(url, deliveries, args.workers)
        log("claim throughput measured")
        if "claim" in args.profile:
            claim.profile_one_worker(2_000)
        if twins is not None:
            twins.close()
            twins = None
        db.close()
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "bench.sqlite3")
            init_db(f"sqlite:///{path}")
            migrate(f"sqlite:///{path}")
            twins = sqla.Twins(f"sqlite:///{path}") if sqla else None
            conn = raw.sqlite_connect(path)
            cases = sqlite_cases(conn, bench_user(2_000), twins)
            run(cases, repetitions)
            conn.close()
            operations.update({c.name: c.result() for c in cases})
            log("SQLite reads timed")
            _profile_named(cases, args.profile)
            if twins is not None:
                twins.close()
                twins = None
            db.close()
    finally:
        if twins is not None:
            twins.close()
        if db.obj is not None:
            db.close()
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    results = {
        "operations": operations,
        "pages": page_result,
        "claim": claim_result,
        "todos": todos,
        "repetitions": repetitions,
        "quick": args.quick,
        "sqlalchemy": sqla.sa.__version__ if sqla else None,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "postgres": pg_version,
        },
        "seconds": round(time.monotonic() - started, 1),
    }
    print(report.render(results))
    if args.replicas:  # builds its own primary + streaming standby (benchmarks/replica_fence.py)
        from benchmarks import replica_fence

        results["replicas"] = replica_fence.measure(500 if args.quick else 2000)
        print(replica_fence.render(results["replicas"]))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
