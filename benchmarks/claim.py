"""Delivery-queue throughput: worker processes draining ``DeliveryQueries.claim``.

Loads ``n`` due pending deliveries (``copy_rows`` into notifications and
notification_deliveries), starts ``workers`` processes (spawned: each imports the
library and calls ``init_db(url)`` itself), releases them together, and each loops
``mark_sent_and_claim(limit=50)`` (the previous batch's marks and the next claim in one
statement; ``many=True``: ``claim`` then ``mark_sent_many``; ``many=False``: one
``mark_sent(..., attempts=...)`` per delivery) until a claim comes back empty.
Reports deliveries per second from the release to the last worker's finish, and checks
that no delivery was claimed twice, none was missed, every ``mark_sent`` held its lease
and every row ended ``sent`` after exactly one attempt.
"""

from __future__ import annotations

import cProfile
import datetime as dt
import multiprocessing as mp
import pstats
import queue
import time
from collections import Counter
from typing import Any

from datalayer import db, init_db
from datalayer.connection.bulk import copy_rows
from datalayer.models import Notification, NotificationDelivery, User, new_id, utcnow
from datalayer.models.notifications import CHANNELS

BATCH = 50
STARTUP_TIMEOUT = 120.0
RUN_TIMEOUT = 600.0


def load_deliveries(n: int, recipients: int = 200) -> None:
    """Insert ``n`` pending deliveries, due a minute ago, over ``recipients`` existing users."""
    users = [u.id for u in User.select(User.id).order_by(User.id).limit(recipients)]
    if not users:
        raise RuntimeError("no users to notify: seed the database first")
    now = utcnow()
    due = now - dt.timedelta(minutes=1)
    notifications = [
        (new_id(), users[i % len(users)], "system_announcement", f"notice {i}", "body", now)
        for i in range((n + len(CHANNELS) - 1) // len(CHANNELS))
    ]
    copy_rows(
        Notification,
        ("id", "recipient_user_id", "type", "title", "body", "created_at"),
        notifications,
    )
    deliveries = (
        (
            new_id(),
            notifications[i // len(CHANNELS)][0],
            CHANNELS[i % len(CHANNELS)],
            "pending",
            0,
            5,
            due,
            now,
            now,
        )
        for i in range(n)
    )
    copy_rows(
        NotificationDelivery,
        (
            "id",
            "notification_id",
            "channel",
            "status",
            "attempts",
            "max_attempts",
            "next_attempt_at",
            "created_at",
            "updated_at",
        ),
        deliveries,
    )


def drain(
    worker_id: str, claimed: list[str], batch_size: int = BATCH, many: bool | str = True
) -> tuple[int, int]:
    """Claim and mark sent until a claim comes back empty; return (claims, refused marks).

    ``many``: True marks each batch with ``mark_sent_many``; ``"and_claim"`` marks it with
    the next claim (``mark_sent_and_claim``: one statement per batch); False marks each
    delivery with its own ``mark_sent``.
    """
    from datalayer.queries import DeliveryQueries

    if many == "and_claim":
        return _drain_and_claim(DeliveryQueries, worker_id, claimed, batch_size)
    claims = refused = 0
    while True:
        batch = DeliveryQueries.claim(worker_id, limit=batch_size)
        claims += 1
        if not batch:
            return claims, refused
        claimed.extend(d["id"] for d in batch)
        if many:
            sent = [(d["id"], f"bench-{d['id']}", d["attempts"]) for d in batch]
            refused += len(batch) - DeliveryQueries.mark_sent_many(worker_id, sent)
            continue
        for delivery in batch:
            if not DeliveryQueries.mark_sent(
                delivery["id"], worker_id, attempts=delivery["attempts"]
            ):
                refused += 1


def _drain_and_claim(
    queries: Any, worker_id: str, claimed: list[str], batch_size: int
) -> tuple[int, int]:
    claims = refused = 0
    sent: list[tuple[str, str, int]] = []
    while True:
        marked, batch = queries.mark_sent_and_claim(worker_id, sent, limit=batch_size)
        refused += len(sent) - marked
        claims += 1
        if not batch:
            return claims, refused
        claimed.extend(d["id"] for d in batch)
        sent = [(d["id"], f"bench-{d['id']}", d["attempts"]) for d in batch]


def _worker(
    url: str, index: int, barrier: Any, results: Any, batch_size: int, many: bool | str
) -> None:
    """One worker process: connect, wait for the start, drain the queue, report."""
    init_db(url)
    db.execute_sql("SELECT 1")  # connected before the clock starts
    claimed: list[str] = []
    try:
        barrier.wait(STARTUP_TIMEOUT)
        claims, refused = drain(f"bench-worker-{index}", claimed, batch_size, many)
        results.put((index, claimed, refused, claims, time.monotonic(), None))
    except Exception as exc:  # reported to the parent, which fails the run
        results.put((index, claimed, 0, 0, time.monotonic(), repr(exc)))
    finally:
        db.close()


def profile_one_worker(n: int) -> None:
    """cProfile one in-process worker draining ``n`` fresh deliveries (where the time goes)."""
    load_deliveries(n)
    profiler = cProfile.Profile()
    profiler.enable()
    drain("bench-profiled-worker", [])
    profiler.disable()
    print(f"\n## cProfile: one worker draining {n:,} deliveries\n")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(18)


def _collect(results: Any, workers: int) -> list[tuple[Any, ...]]:
    reports = []
    deadline = time.monotonic() + RUN_TIMEOUT
    while len(reports) < workers:
        try:
            reports.append(results.get(timeout=max(0.1, deadline - time.monotonic())))
        except queue.Empty:
            raise RuntimeError(f"claim workers did not finish within {RUN_TIMEOUT:.0f} s") from None
    return reports


def run_claim(
    url: str, n: int, workers: int = 8, *, batch_size: int = BATCH, many: bool | str = "and_claim"
) -> dict[str, Any]:
    """Load ``n`` deliveries, drain them with ``workers`` processes; return the measurements."""
    load_deliveries(n)
    for table in ("notifications", "notification_deliveries"):
        db.execute_sql(f"ANALYZE {table}")
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(workers + 1)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(url, i, barrier, results, batch_size, many), daemon=True)
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    try:
        barrier.wait(STARTUP_TIMEOUT)
        started = time.monotonic()
        reports = _collect(results, workers)
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
    errors = [r[5] for r in reports if r[5]]
    if errors:
        raise RuntimeError(f"claim worker failed: {errors[0]}")
    return _summary(n, workers, started, reports, batch_size, many)


def _summary(
    n: int,
    workers: int,
    started: float,
    reports: list[tuple[Any, ...]],
    batch_size: int,
    many: bool | str,
) -> dict[str, Any]:
    elapsed = max(r[4] for r in reports) - started
    claimed = [i for r in reports for i in r[1]]
    D = NotificationDelivery
    statuses = dict(Counter(s for (s,) in D.select(D.status).tuples()))
    retried = D.select().where(D.attempts != 1).count()
    checks = {
        "claimed_twice": len(claimed) - len(set(claimed)),
        "never_claimed": n - len(set(claimed)),
        "mark_sent_refused": sum(r[2] for r in reports),
        "not_sent": n - statuses.get("sent", 0),
        "attempts_not_1": retried,
    }
    result = {
        "workers": workers,
        "deliveries": n,
        "batch": batch_size,
        "marks": {"and_claim": "mark_sent_and_claim", True: "mark_sent_many"}.get(
            many, "mark_sent"
        ),
        "seconds": round(elapsed, 3),
        "deliveries_per_second": round(n / elapsed, 1),
        "claims": sum(r[3] for r in reports),
        "per_worker": sorted(len(r[1]) for r in reports),
        "checks": checks,
        "ok": not any(checks.values()),
    }
    if not result["ok"]:
        raise AssertionError(f"delivery queue checks failed: {checks}")
    return result
