"""The read-your-writes fence on a real primary + streaming standby: what reads wait.

    python -m benchmarks.replica_fence [--cycles N] [--json out.json]

Builds a private primary and hot standby on loopback (tests/pg_replica.py: initdb,
pg_basebackup -R -X stream, fsync on as in production), then runs write-then-read
cycles (``TodoQueries.create``, then ``TodoQueries.list_for_user``) three ways:

- ``fence``: the standby as replica, read-your-writes on (the default);
- ``no fence``: the same, fence off — the reads that miss the write just made are counted;
- ``primary``: no replica at all.

Reported per way: the read's latency (median, p99), stale reads, reads the replica
served, and for the fence its wait (the primary position fetch plus the polls of the
replica until it has replayed it) — median, p90, p99, max — and its timeouts.
Also run by ``python -m benchmarks.run --replicas``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from pg_replica import ReplicaPair  # noqa: E402

from datalayer import TodoQueries, db, init_db, replicas  # noqa: E402
from datalayer.evolve.migrate import migrate  # noqa: E402
from datalayer.models import User  # noqa: E402


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000, 3)


def _loop(cycles: int) -> dict[str, Any]:
    user = User.create(name="Fence Bench", email=f"fence-{time.time_ns()}@example.test")
    replicas.reset_stats()
    reads: list[float] = []
    stale = 0
    for n in range(cycles):
        todo = TodoQueries.create(user.id, {"title": f"todo {n}"})
        started = time.perf_counter()
        page = TodoQueries.list_for_user(user.id, limit=3)
        reads.append(time.perf_counter() - started)
        stale += todo["id"] not in [item["id"] for item in page["items"]]
    counts = replicas.stats()
    waits = counts.pop("fence_waits")
    return {
        "cycles": cycles,
        "stale": stale,
        "on_replica": counts.get("replica", 0),
        "fence_timeouts": counts.get("fence_timeout", 0),
        "read_median_ms": _ms(reads, 0.5),
        "read_p99_ms": _ms(reads, 0.99),
        "fence_waits": len(waits),
        "wait_median_ms": _ms(waits, 0.5),
        "wait_p90_ms": _ms(waits, 0.9),
        "wait_p99_ms": _ms(waits, 0.99),
        "wait_max_ms": _ms(waits, 1.0),
    }


def measure(cycles: int = 2000) -> dict[str, Any]:
    """Build a primary + standby, time the three ways, tear the pair down; return results."""
    pair = ReplicaPair(fsync=True).start()
    results: dict[str, Any] = {}
    try:
        conn = pair.connect()
        conn.cursor().execute("CREATE DATABASE bench")
        conn.close()
        migrate(pair.url("bench"))
        pair.wait_replayed()
        primary, standby = pair.url("bench"), pair.url("bench", standby=True)
        for way, options in (
            ("fence", {"replica_urls": [standby]}),
            ("no fence", {"replica_urls": [standby], "replica_read_your_writes": False}),
            ("primary", {"replica_urls": []}),
        ):
            init_db(primary, **options)
            _loop(50)  # warm up: connections, health check, statement compilation
            results[way] = _loop(cycles)
            db.close()
        with pair.connect() as conn, conn.cursor() as cur:
            cur.execute("SHOW server_version")
            results["postgres"] = cur.fetchone()[0]
    finally:
        if db.obj is not None:
            replicas.configure(db.obj, {})
            db.close()
        pair.stop()
    return results


def render(results: dict[str, Any]) -> str:
    """The results as a Markdown table, with one line on the fence's wait."""
    fence = results["fence"]
    lines = [
        f"\nRead replicas (PostgreSQL {results.get('postgres', '?')}, primary + streaming "
        f"standby on loopback, fsync on): {fence['cycles']:,} write-then-read cycles per way\n",
        "| way      | stale reads | on replica | read median ms | read p99 ms |",
        "|----------|-------------|------------|----------------|-------------|",
    ]
    for way in ("fence", "no fence", "primary"):
        r = results[way]
        lines.append(
            f"| {way:<8} | {r['stale']:>11,} | {r['on_replica']:>10,} | "
            f"{r['read_median_ms']:>14.3f} | {r['read_p99_ms']:>11.3f} |"
        )
    lines.append(
        f"\nfence wait: median {fence['wait_median_ms']:.3f} ms, p90 {fence['wait_p90_ms']:.3f} ms, "
        f"p99 {fence['wait_p99_ms']:.3f} ms, max {fence['wait_max_ms']:.3f} ms over "
        f"{fence['fence_waits']:,} fenced reads; {fence['fence_timeouts']} timeouts "
        f"(reads sent to the primary)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=2000, help="cycles per way")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    args = parser.parse_args(argv)
    results = measure(args.cycles)
    print(render(results))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
