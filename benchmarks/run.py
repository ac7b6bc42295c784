"""Side-by-side timing of the library against hand-written drivers producing identical DTOs.

    python -m benchmarks.run [--quick] [--json out.json] [--todos N]

Creates its own PostgreSQL database (and SQLite file), loads data with the seed
generator, checks once that each library call and its raw twin return the same
dicts, then times them interleaved over several repetitions and prints medians and
ratios. Not part of the tests' pass/fail: timings on shared machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg2

from benchmarks import raw
from datalayer import db, init_db
from datalayer.bulk import copy_rows
from datalayer.migrate import migrate
from datalayer.models import Todo, User, new_id, utcnow
from datalayer.queries.base import encode_cursor
from datalayer.queries.features_todos import TodoQueries
from datalayer.seed import SeedPlan, seed

ADMIN_URL = os.environ.get("DATALAYER_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TARGETS = {"get_by_id": 1.5, "list_50": 1.5, "list_1000": 2.0, "insert_one": 1.5,
           "update_one": 1.3, "bulk_10000": 1.3, "sqlite_get_by_id": 2.0,
           "sqlite_list_50": 2.0, "sqlite_list_1000": 2.0, "list_50_deep": 1.5}


def _admin(sql: str) -> None:
    conn = psycopg2.connect(ADMIN_URL)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql)
    conn.close()


def _bench_user(personal_todos: int) -> str:
    """A user with ``personal_todos`` personal todos (for the list pages)."""
    user = User.create(name="Bench User", email=f"bench-{uuid.uuid4().hex[:8]}@example.test")
    now = utcnow()
    rows = ((new_id(), user.id, None, f"todo {n}", None, n % 3 == 0, None, now, now)
            for n in range(personal_todos))
    copy_rows(Todo, ("id", "user_id", "tenant_id", "title", "description", "completed",
                     "due_date", "created_at", "updated_at"), rows)
    return user.id


class Case:
    """One operation: the library call, its raw twin, and how many calls make one sample."""

    def __init__(self, name: str, lib: Callable[[], Any], raw_fn: Callable[[], Any],
                 calls: int, compare: Callable[[Any], Any] = lambda x: x,
                 check: Callable[[], tuple[Any, Any]] | None = None) -> None:
        self.name, self.lib, self.raw, self.calls, self.compare = name, lib, raw_fn, calls, compare
        self.check = check or (lambda: (self.lib(), self.raw()))
        self.lib_us: list[float] = []
        self.raw_us: list[float] = []

    def verify(self) -> None:
        """Assert once, before timing, that both sides return the same DTOs."""
        lib_result, raw_result = self.check()
        got, expected = self.compare(lib_result), self.compare(raw_result)
        if got != expected:
            raise AssertionError(f"{self.name}: library and raw results differ:\n"
                                 f"{got!r}\n!=\n{expected!r}")

    def sample(self, first_raw: bool) -> None:
        order = [(self.raw, self.raw_us), (self.lib, self.lib_us)]
        for fn, into in (order if first_raw else order[::-1]):
            started = time.perf_counter()
            for _ in range(self.calls):
                fn()
            into.append((time.perf_counter() - started) / self.calls * 1e6)

    def result(self) -> dict[str, float]:
        lib, raw_ = statistics.median(self.lib_us), statistics.median(self.raw_us)
        return {"ratio": round(lib / raw_, 3), "library_us": round(lib, 1),
                "raw_us": round(raw_, 1), "target": TARGETS.get(self.name, 0)}


def _ignore_generated(dto: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in dto.items() if k not in ("id", "created_at", "updated_at")}


def postgres_cases(url: str, user_id: str, quick: bool) -> list[Case]:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    some = [t.id for t in Todo.select(Todo.id).where(Todo.user == user_id).limit(200)]
    ids = iter(some * 10_000)
    deep = list(Todo.select(Todo.created_at, Todo.id).where(
        (Todo.user == user_id) & Todo.tenant.is_null())
        .order_by(Todo.created_at.desc(), Todo.id.desc()).offset(len(some) * 5).limit(1).tuples())
    deep_cursor = encode_cursor(*deep[0]) if deep else None
    titles = iter(f"title {n}" for n in range(10**9))
    scale = 1 if quick else 3

    def bulk_rows() -> list[tuple[Any, ...]]:
        now = utcnow()
        return [(new_id(), user_id, None, "bulk", None, False, None, now, now)
                for _ in range(10_000)]

    return [
        Case("get_by_id", lambda: TodoQueries.find_by_id(some[0]),
             lambda: raw.pg_get(conn, some[0]), 200 * scale),
        Case("list_50", lambda: TodoQueries.list_for_user(user_id, limit=50),
             lambda: raw.pg_list(conn, user_id, 50, None), 40 * scale),
        Case("list_50_deep", lambda: TodoQueries.list_for_user(user_id, limit=50,
                                                                cursor=deep_cursor),
             lambda: raw.pg_list(conn, user_id, 50, deep_cursor), 40 * scale),
        Case("list_1000", lambda: TodoQueries.list_for_user(user_id, limit=1000),
             lambda: raw.pg_list(conn, user_id, 1000, None), 4 * scale),
        Case("insert_one", lambda: TodoQueries.create(user_id, {"title": "new todo"}),
             lambda: raw.pg_insert(conn, user_id, "new todo"), 100 * scale,
             compare=_ignore_generated),
        Case("update_one",
             lambda: TodoQueries.update(next(ids), user_id, {"title": next(titles)}),
             lambda: raw.pg_update(conn, next(ids), user_id, next(titles)), 100 * scale,
             compare=lambda d: {k: v for k, v in d.items() if k != "updated_at"},
             check=lambda: (TodoQueries.update(some[0], user_id, {"title": "same"}),
                            raw.pg_update(conn, some[0], user_id, "same"))),
        Case("bulk_10000", lambda: copy_rows(Todo, raw.COLUMNS, bulk_rows()),
             lambda: raw.pg_copy(conn, bulk_rows()), 1),
    ]


def sqlite_cases(path: str, quick: bool) -> list[Case]:
    init_db(f"sqlite:///{path}")
    migrate(f"sqlite:///{path}")
    user_id = _bench_user(2_000)
    conn = raw.sqlite_connect(path)
    some = Todo.select(Todo.id).where(Todo.user == user_id).first().id
    scale = 1 if quick else 3
    return [
        Case("sqlite_get_by_id", lambda: TodoQueries.find_by_id(some),
             lambda: raw.sqlite_get(conn, some), 300 * scale),
        Case("sqlite_list_50", lambda: TodoQueries.list_for_user(user_id, limit=50),
             lambda: raw.sqlite_list(conn, user_id, 50), 50 * scale),
        Case("sqlite_list_1000", lambda: TodoQueries.list_for_user(user_id, limit=1000),
             lambda: raw.sqlite_list(conn, user_id, 1000), 5 * scale),
    ]


def run(cases: list[Case], repetitions: int) -> None:
    for case in cases:
        case.verify()
    for rep in range(repetitions):
        for case in cases:
            case.sample(first_raw=rep % 2 == 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, fewer repetitions")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument("--todos", type=int, help="seeded todos (default 200,000; quick 50,000)")
    args = parser.parse_args(argv)
    todos = args.todos or (50_000 if args.quick else 200_000)
    repetitions = 5 if args.quick else 9
    name = f"dlbench_{uuid.uuid4().hex[:10]}"
    _admin(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    results: dict[str, dict[str, float]] = {}
    try:
        migrate(url)
        init_db(url)
        users = max(1, todos // 100)
        seed(SeedPlan(tenants=max(1, users // 10), users_per_tenant=10, todos_per_user=100,
                      notifications_per_user=0))
        user_id = _bench_user(2_000)
        db.execute_sql("ANALYZE")
        cases = postgres_cases(url, user_id, args.quick)
        run(cases, repetitions)
        results.update({c.name: c.result() for c in cases})
        db.close()
        with tempfile.TemporaryDirectory() as tmp:
            cases = sqlite_cases(os.path.join(tmp, "bench.sqlite3"), args.quick)
            run(cases, repetitions)
            results.update({c.name: c.result() for c in cases})
            db.close()
    finally:
        if db.obj is not None:
            db.close()
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _print_table(results, todos, repetitions)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"operations": results, "todos": todos, "repetitions": repetitions},
                      out, indent=2)
    return 0


def _print_table(results: dict[str, dict[str, float]], todos: int, repetitions: int) -> None:
    print(f"\n{todos:,} seeded todos, medians of {repetitions} interleaved repetitions\n")
    print(f"| {'operation':<18} | {'library µs':>11} | {'raw µs':>9} | {'ratio':>6} | target |")
    print(f"|{'-' * 20}|{'-' * 13}|{'-' * 11}|{'-' * 8}|--------|")
    for name, r in results.items():
        mark = "ok" if r["ratio"] <= r["target"] else "MISS"
        print(f"| {name:<18} | {r['library_us']:>11.1f} | {r['raw_us']:>9.1f} | "
              f"{r['ratio']:>5.2f}× | ≤{r['target']:.1f} {mark} |")


if __name__ == "__main__":
    sys.exit(main())
