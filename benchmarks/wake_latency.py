"""Wake-up latency: from a committed job to an idle worker holding it, datalayer beside pgqueuer.

    python -m benchmarks.wake_latency [--jobs 60] [--rounds 2] [--idle 60] [--json out.json]

Same machine, same server, same run. Each round starts one idle worker per system in a
process of its own, with that system's defaults:

- datalayer: ``examples/delivery_worker.py`` (``wait_for_work`` on LISTEN), its sender
  recording when it is called with each delivery (the claim has returned);
- pgqueuer: ``QueueManager.run()`` (LISTEN on its own), its entrypoint recording when
  it is called with each job (the dequeue has returned).

Then ``--jobs`` jobs are committed one by one, 150-400 ms apart (``NotificationQueries
.notify`` for an in-app-only recipient: one delivery each; pgqueuer's ``enqueue``), and
each job's latency is the time from the commit returning to the worker's call. p50 and
p99 per system; the rounds interleave the systems. ``--idle`` seconds with nothing due
then count the statements an idle worker sends (``pg_stat_activity`` sampled every
20 ms: each new ``query_start`` of a session of its database is one statement).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg2

from benchmarks.queue_compare import (
    ADMIN_URL,
    _admin,
    _dl_prepare,
    _pgq_prepare,
    _run_async,
    database,
    db_url,
)

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINT = "wake_job"
STARTUP = 60.0


def record(delivery: Any) -> str:
    """The datalayer worker's sender: append "notification_id time" to $WAKE_LOG."""
    now = time.time()
    with open(os.environ["WAKE_LOG"], "a") as out:
        out.write(f"{delivery['notification_id']} {now:.6f}\n")
    return "recorded"


def pgqueuer_worker(url: str, path: str) -> None:
    """pgqueuer's worker with its defaults, appending "job_id time" to ``path``."""
    import asyncpg
    from pgqueuer import AsyncpgDriver, Job, Queries, QueueManager

    async def work() -> None:
        conn = await asyncpg.connect(url)
        manager = QueueManager(Queries(AsyncpgDriver(conn)))

        @manager.entrypoint(ENTRYPOINT)
        async def job(job: Job) -> None:
            now = time.time()
            with open(path, "a") as out:
                out.write(f"{int(job.id)} {now:.6f}\n")

        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, manager.shutdown.set)
        await manager.run()
        await conn.close()

    _run_async(work())


def _start(system: str, name: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "WAKE_LOG": str(log), "PYTHONPATH": str(ROOT)}
    if system == "datalayer":
        command = [sys.executable, str(ROOT / "examples" / "delivery_worker.py"),
                   "--database", db_url(name), "--sender", "benchmarks.wake_latency:record",
                   "--worker-id", "wake-1"]
    else:
        command = [sys.executable, "-m", "benchmarks.wake_latency", "--pgqueuer-worker",
                   db_url(name), str(log)]
    return subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def _listening(name: str) -> bool:
    rows = _admin(
        f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}'"
        " AND state = 'idle' AND wait_event = 'ClientRead'"
        " AND query ILIKE ANY (ARRAY['%%SELECT MIN%%', '%%LISTEN%%', '%%pgqueuer%%'])"
    )
    return bool(rows[0][0])


def _read_log(log: Path) -> dict[str, float]:
    if not log.exists():
        return {}
    return {key: float(at) for key, at in (line.split() for line in log.read_text().split("\n") if line)}


class Datalayer:
    """Commit a notification (one in-app delivery) through the library."""

    def __init__(self, name: str) -> None:
        from datalayer import PreferenceQueries, init_db
        from datalayer.models import User

        init_db(db_url(name))
        self.user_id = User.select(User.id).order_by(User.id).first().id
        PreferenceQueries.upsert(self.user_id, {"email_enabled": False, "push_enabled": False})

    def commit(self, n: int) -> tuple[str, float]:
        from datalayer import NotificationQueries

        note = NotificationQueries.notify(self.user_id, type="direct_message",
                                          title=f"wake {n}", body="body")
        return note["id"], time.time()

    def close(self) -> None:
        from datalayer import db

        db.close()


class Pgqueuer:
    """Commit a job through pgqueuer's own enqueue (asyncpg)."""

    def __init__(self, name: str) -> None:
        import asyncpg
        from pgqueuer import AsyncpgDriver, Queries

        self.loop = asyncio.new_event_loop()
        self.conn = self.loop.run_until_complete(asyncpg.connect(db_url(name)))
        self.queries = Queries(AsyncpgDriver(self.conn))

    def commit(self, n: int) -> tuple[str, float]:
        (job_id,) = self.loop.run_until_complete(self.queries.enqueue(ENTRYPOINT, None))
        return str(int(job_id)), time.time()

    def close(self) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.close()


def idle_statements(name: str, seconds: float) -> list[str]:
    """The statements the database's client sessions start in ``seconds`` (sampled every
    20 ms from ``pg_stat_activity``: a new ``query_start`` is a new statement; sessions
    of the database only, autovacuum and this sampler excluded)."""
    conn = psycopg2.connect(ADMIN_URL)
    conn.autocommit = True
    seen: set[tuple[int, Any]] = set()
    started: list[str] = []
    deadline = time.monotonic() + seconds
    try:
        with conn.cursor() as cur:
            first = True
            while time.monotonic() < deadline:
                cur.execute(
                    "SELECT pid, query_start, left(query, 60) FROM pg_stat_activity"
                    " WHERE datname = %s AND backend_type = 'client backend'",
                    (name,),
                )
                for pid, at, query in cur.fetchall():
                    if (pid, at) not in seen:
                        seen.add((pid, at))
                        if not first:
                            started.append(query)
                first = False
                time.sleep(0.02)
    finally:
        conn.close()
    return started


def trial(system: str, template: str, jobs: int, idle: float, tmp: Path) -> dict[str, Any]:
    """One idle worker of ``system``, ``jobs`` commits, then ``idle`` quiet seconds."""
    with database(template) as name:
        log = tmp / f"{system}-{name}.log"
        worker = _start(system, name, log)
        try:
            _wait(lambda: _listening(name), STARTUP, worker)
            time.sleep(1.0)  # settled in its wait
            client = Datalayer(name) if system == "datalayer" else Pgqueuer(name)
            committed = {}
            for n in range(jobs):
                time.sleep(random.uniform(0.15, 0.40))
                key, at = client.commit(n)
                committed[key] = at
            client.close()
            _wait(lambda: len(_read_log(log)) >= jobs, STARTUP, worker)
            time.sleep(2)
            statements = idle_statements(name, idle)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(STARTUP)
    got = _read_log(log)
    latencies = [(got[k] - at) * 1000 for k, at in committed.items() if k in got]
    return {"system": system, "latencies_ms": latencies, "missing": jobs - len(latencies),
            "idle_seconds": idle, "idle_statements": statements}


def _wait(condition: Any, seconds: float, worker: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited: {worker.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        if time.monotonic() > deadline:
            raise TimeoutError("the worker never got there")
        time.sleep(0.05)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summarize(trials: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for system in ("datalayer", "pgqueuer"):
        mine = [t for t in trials if t["system"] == system]
        values = [v for t in mine for v in t["latencies_ms"]]
        if not values:
            continue
        out[system] = {
            "jobs": len(values),
            "missing": sum(t["missing"] for t in mine),
            "p50_ms": round(statistics.median(values), 2),
            "p99_ms": round(percentile(values, 0.99), 2),
            "max_ms": round(max(values), 2),
            "idle_statements_per_minute": [
                round(len(t["idle_statements"]) * 60 / t["idle_seconds"], 1) for t in mine
            ],
            "idle_statements_seen": sorted({q for t in mine for q in t["idle_statements"]}),
        }
    if "datalayer" in out and "pgqueuer" in out:
        out["p99_ratio"] = round(out["datalayer"]["p99_ms"] / out["pgqueuer"]["p99_ms"], 2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--pgqueuer-worker", nargs=2, metavar=("URL", "LOG"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.pgqueuer_worker:
        pgqueuer_worker(*args.pgqueuer_worker)
        return 0
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    templates = {}
    try:
        for system, prepare in (("datalayer", _dl_prepare), ("pgqueuer", _pgq_prepare)):
            templates[system] = f"dlwake_tpl_{system}_{os.getpid()}"
            _admin(f'CREATE DATABASE "{templates[system]}"')
            prepare(templates[system])
        trials = []
        for round_ in range(args.rounds):
            order = ("datalayer", "pgqueuer") if round_ % 2 == 0 else ("pgqueuer", "datalayer")
            for system in order:
                trials.append(trial(system, templates[system], args.jobs, args.idle, tmp))
                print(f"round {round_ + 1}: {system} done", file=sys.stderr)
    finally:
        for name in templates.values():
            _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    summary = summarize(trials)
    summary["load_average"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"summary": summary, "trials": trials}, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
