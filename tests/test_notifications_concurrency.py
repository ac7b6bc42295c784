"""The delivery queue under real concurrency: threads on both backends, processes on PostgreSQL.

The process test drains 5,000 deliveries with 8 worker processes while sends fail and
workers "crash" between sending and marking; it records every claim and checks that no
(delivery, attempt) was claimed twice and that each sent delivery's final send was
confirmed exactly once. The same workload on a deliberately naive claim (select, then
update, no lock) must show duplicate claims: proof that the test can see the bug.
"""

from __future__ import annotations

import collections
import datetime as dt
import multiprocessing
import random
import threading
import time
from typing import Any

import pytest
from factories import make_user
from helpers import postgres_only

from datalayer import DeliveryQueries, db, init_db
from datalayer.models import Notification, NotificationDelivery
from datalayer.models.base import new_id, utcnow

D = NotificationDelivery

WORKERS = 8
BATCH = 20
LEASE_SECONDS = 1.0
FAIL_RATE = 0.10  # the sender raises: mark_failed, retried after a tiny backoff
CRASH_RATE = 0.02  # the worker sends, then dies before marking: the lease must expire
BUDGET_SECONDS = 240.0  # a hang stop (under pytest-timeout's 300 s), not a speed bound


def bulk_queue(count: int, channel: str = "email") -> list[str]:
    """Insert ``count`` notifications with one pending delivery each, in bulk; return ids."""
    user = make_user()
    now = utcnow()
    note_ids = [new_id() for _ in range(count)]
    delivery_ids = [new_id() for _ in range(count)]
    with db.atomic():
        for start in range(0, count, 1000):
            chunk = range(start, min(start + 1000, count))
            Notification.insert_many(
                [
                    {
                        "id": note_ids[i],
                        "recipient_user": user.id,
                        "type": "mention",
                        "title": f"n{i}",
                        "body": "b",
                        "created_at": now,
                    }
                    for i in chunk
                ]
            ).execute()
            D.insert_many(
                [
                    {
                        "id": delivery_ids[i],
                        "notification": note_ids[i],
                        "channel": channel,
                        "next_attempt_at": now,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in chunk
                ]
            ).execute()
    return delivery_ids


def open_count() -> int:
    return D.select().where(D.status.in_(["pending", "processing"])).count()  # type: ignore[no-any-return]


# --- threads, both backends ---------------------------------------------------------------


@pytest.mark.usefixtures("fresh_db")
@pytest.mark.parametrize("many", [False, True], ids=["mark_sent", "mark_sent_many"])
def test_racing_threads_never_claim_a_delivery_twice(many: bool) -> None:
    ids = bulk_queue(400)
    db.close()
    barrier = threading.Barrier(WORKERS)
    # Overlap made, not hoped for: each worker holds its first batch until every worker has
    # claimed one, so all of them drain the queue together (a fast thread alone could
    # otherwise drain it before the others are scheduled, and the race would not be run).
    first_claims = threading.Barrier(WORKERS)
    claimed: list[list[str]] = [[] for _ in range(WORKERS)]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            while batch := DeliveryQueries.claim(f"t{i}", limit=7):
                if not claimed[i]:
                    first_claims.wait(timeout=30)
                claimed[i] += [d["id"] for d in batch]
                if many:
                    sent = [(d["id"], None, d["attempts"]) for d in batch]
                    assert DeliveryQueries.mark_sent_many(f"t{i}", sent) == len(batch)
                    continue
                for d in batch:
                    assert DeliveryQueries.mark_sent(d["id"], f"t{i}", attempts=d["attempts"])
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)
        finally:
            db.close()

    pool = [threading.Thread(target=work, args=(i,)) for i in range(WORKERS)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in pool) and not errors, errors
    every = [d for batch in claimed for d in batch]
    assert len(every) == len(set(every)) == len(ids)
    assert all(claimed)  # every worker held a batch while the others claimed theirs
    assert D.select().where(D.status == "sent").count() == len(ids)


# --- processes, PostgreSQL ----------------------------------------------------------------


def naive_claim(
    worker_id: str, limit: int, lease_seconds: float, between: Any = None
) -> list[dict[str, Any]]:
    """The bug the process test must catch: read the due rows, then update them, no lock.

    ``between`` runs after the read and before the updates: the test passes a barrier for
    the first claim, so every worker reads the same rows before any updates them.
    """
    now = utcnow()
    rows = list(
        D.select(D.id, D.attempts)
        .where((D.status == "pending") & (D.next_attempt_at <= now))
        .order_by(D.next_attempt_at, D.id)
        .limit(limit)
        .tuples()
    )
    if between is not None:
        between()
    claimed = []
    for delivery_id, attempts in rows:
        D.update(
            {
                D.status: "processing",
                D.attempts: attempts + 1,
                D.locked_by: worker_id,
                D.locked_at: now,
                D.next_attempt_at: now + dt.timedelta(seconds=lease_seconds),
            }
        ).where(D.id == delivery_id).execute()
        claimed.append({"id": delivery_id, "attempts": attempts + 1})
    return claimed


def stall_now_and_then() -> None:
    if random.random() < 0.1:  # now and then the batch comes after the lease ran out
        time.sleep(LEASE_SECONDS * 1.2)


def confirmed_by(worker_id: str, sent: list[tuple[str, str, int]], marked: int) -> list[Any]:
    """The (delivery, attempts, message) a batch mark really marked; as many as it said."""
    rows = D.select(D.id, D.attempts, D.provider_message_id).where(
        D.id.in_([s[0] for s in sent]) & (D.status == "sent") & (D.locked_by == worker_id)
    )
    confirmed = [(i, a, m) for i, a, m in rows.tuples() if (i, m, a) in set(sent)]
    assert len(confirmed) == marked, (marked, confirmed)
    return confirmed


def held_after_batch(worker_id: str, sent: list[tuple[str, str, int]]) -> list[Any]:
    """Mark a batch with mark_sent_many; return the (delivery, attempts, message) it marked."""
    stall_now_and_then()
    return confirmed_by(worker_id, sent, DeliveryQueries.mark_sent_many(worker_id, sent))


def drain(
    url: str, worker_id: str, naive: bool, seed: int, many: bool | str, start: Any
) -> tuple[list[Any], ...]:
    """One worker process: claim, "send", mark, until nothing is left open.

    ``start`` is a barrier shared by the processes: they begin together (a process spawned
    early could otherwise drain a small queue before the others start). The naive claim
    also waits on it between its first read and its first update.
    """
    init_db(url)
    db.execute_sql("SELECT 1")  # connected before the start
    start.wait(60)
    rng = random.Random(seed)
    claims: list[tuple[str, int, str]] = []
    sends: list[tuple[str, int, str]] = []
    confirmed: list[tuple[str, int, str]] = []
    carried: list[tuple[str, str, int]] = []  # sent, to be marked with the next claim
    deadline = time.monotonic() + BUDGET_SECONDS
    last_release = 0.0
    try:
        while time.monotonic() < deadline:
            if time.monotonic() - last_release > LEASE_SECONDS / 4:
                DeliveryQueries.release_stale()
                last_release = time.monotonic()
            if many == "and_claim":  # the previous batch's marks go with this claim
                if carried:
                    stall_now_and_then()
                marked, batch = DeliveryQueries.mark_sent_and_claim(
                    worker_id,
                    carried,
                    limit=BATCH,
                    lease_seconds=LEASE_SECONDS,
                )
                confirmed += confirmed_by(worker_id, carried, marked) if carried else []
                carried = []
            elif naive:
                between = (lambda: start.wait(60)) if not claims else None
                batch = naive_claim(worker_id, BATCH, LEASE_SECONDS, between)
            else:
                batch = DeliveryQueries.claim(worker_id, limit=BATCH, lease_seconds=LEASE_SECONDS)
            if not batch:
                if open_count() == 0:
                    break
                time.sleep(0.02)
                continue
            sent: list[tuple[str, str, int]] = []
            for d in batch:
                delivery_id, attempts = d["id"], d["attempts"]
                claims.append((delivery_id, attempts, worker_id))
                roll = rng.random()
                if roll < FAIL_RATE:
                    DeliveryQueries.mark_failed(
                        delivery_id,
                        worker_id,
                        error="transient",
                        retry_base_seconds=0.01,
                        attempts=attempts,
                    )
                    continue
                message = f"{worker_id}/{delivery_id}/{attempts}"
                sends.append((delivery_id, attempts, message))
                if roll < FAIL_RATE + CRASH_RATE:
                    continue  # crashed after sending: forgets the delivery, lease runs out
                if many:
                    sent.append((delivery_id, message, attempts))
                elif DeliveryQueries.mark_sent(delivery_id, worker_id, provider_message_id=message, attempts=attempts):
                    confirmed.append((delivery_id, attempts, message))
            if sent and many == "and_claim":
                carried = sent
            elif sent:
                confirmed += held_after_batch(worker_id, sent)
    finally:
        db.close()
    return claims, sends, confirmed


def run_processes(
    url: str, naive: bool, many: bool | str = False
) -> tuple[list[Any], list[Any], list[Any]]:
    """Run WORKERS drain() processes (each calls init_db itself); merge their records."""
    db.close()  # the children open their own connections
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        start = manager.Barrier(WORKERS)
        with context.Pool(WORKERS) as pool:
            results = pool.starmap(
                drain, [(url, f"w{i}", naive, 1000 + i, many, start) for i in range(WORKERS)]
            )
    claims = [c for r in results for c in r[0]]
    sends = [s for r in results for s in r[1]]
    confirmed = [c for r in results for c in r[2]]
    return claims, sends, confirmed


def duplicates(claims: list[tuple[str, int, str]]) -> list[tuple[str, int]]:
    counts = collections.Counter((delivery_id, attempts) for delivery_id, attempts, _ in claims)
    return [key for key, n in counts.items() if n > 1]


@postgres_only
@pytest.mark.slow
@pytest.mark.parametrize("marks", ["mark_sent", "mark_sent_many", "mark_sent_and_claim"])
def test_worker_processes_drain_the_queue_exactly_once(fresh_db: str, marks: str) -> None:
    ids = bulk_queue(5000)
    many = {"mark_sent": False, "mark_sent_many": True, "mark_sent_and_claim": "and_claim"}
    claims, sends, confirmed = run_processes(fresh_db, naive=False, many=many[marks])

    assert duplicates(claims) == []  # no (delivery, attempt) claimed twice
    final = {
        r[0]: r
        for r in D.select(
            D.id, D.status, D.attempts, D.max_attempts, D.provider_message_id
        ).tuples()
    }
    assert set(final) == set(ids)  # none lost
    assert {status for _, status, *_ in final.values()} <= {"sent", "failed"}
    by_delivery = collections.defaultdict(list)
    for delivery_id, attempts, message in confirmed:
        by_delivery[delivery_id].append((attempts, message))
    for delivery_id, status, attempts, max_attempts, message_id in final.values():
        if status == "sent":  # its final send confirmed exactly once, by the claim that won
            assert by_delivery[delivery_id] == [(attempts, message_id)], delivery_id
        else:
            assert delivery_id not in by_delivery and attempts >= max_attempts
    assert set(confirmed) <= set(sends)
    # The scenario really happened: retries after failures and after expired leases.
    assert len(claims) > len(ids) and len(sends) > len(confirmed)
    retried = collections.Counter(delivery_id for delivery_id, _, _ in claims)
    assert sum(1 for n in retried.values() if n > 1) > 100


@postgres_only
@pytest.mark.slow
def test_a_naive_claim_is_caught_claiming_twice(fresh_db: str) -> None:
    bulk_queue(200)
    claims, _, _ = run_processes(fresh_db, naive=True)
    assert len(duplicates(claims)) > 0  # the check above sees the race it guards against
    assert open_count() == 0
