"""A notification delivery worker: claim due deliveries, send them, mark the outcome.

    python examples/delivery_worker.py --database postgresql://localhost/app --once
    python examples/delivery_worker.py --sender myapp.senders:send --worker-id w1

Run as many as you like, on as many machines: ``DeliveryQueries.claim`` hands each
delivery to one worker at a time (``FOR UPDATE SKIP LOCKED`` on PostgreSQL). Delivery
is at-least-once: a worker that dies after sending but before marking leaves a lease
that ``release_stale`` hands to another worker once it runs out, and that one sends
again. Each batch's successful sends are marked together with the next claim
(``mark_sent_and_claim``: one statement per batch on PostgreSQL; failures and skips,
the rare cases, one by one); every mark carries the claim's ``attempts``, so a worker
whose lease was taken over can never overwrite the new holder's outcome.

An idle worker sleeps in ``DeliveryQueries.wait_for_work`` (LISTEN on a connection of
its own): ``notify()``'s commit wakes it at once, a retry due later wakes it when due,
and while nothing is due it sends one statement per ``--idle-seconds``. SIGTERM or
SIGINT: the delivery being sent is finished, the sent ones are marked, the rest of the
batch is released (``DeliveryQueries.release``) for another worker to claim at once,
and the worker exits. A lost connection (a failover; give it a multi-host URL such as
``postgresql://u@h1,h2/db?target_session_attrs=read-write``) is retried with backoff.

A sender is any callable taking the claimed delivery (with its ``notification`` and
``recipient``) and returning the provider's message id (or None); it raises
``SkipDelivery`` for a delivery that must not be sent and any other exception for a
failure worth retrying.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import itertools
import logging
import math
import os
import random
import signal
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from datalayer import Channel, SentItem, db, init_db
from datalayer.errors import ConnectionLostError
from datalayer.queries import DeliveryQueries
from datalayer.schemas.notifications import ClaimedDeliveryDTO

log = logging.getLogger("delivery_worker")

Sender = Callable[[ClaimedDeliveryDTO], str | None]
T = TypeVar("T")

MAX_BACKOFF = 2.0  # seconds between two tries while the database is away
# Once stopping, a lost connection is tried a few more times (about 4 s), not forever:
# the orchestrator's grace period is short, and an unreleased lease still runs out.
RIDE_THROUGH_WHEN_STOPPING = 5


class SkipDelivery(Exception):
    """Raised by a sender for a delivery that must not be sent (e.g. no push token)."""


@dataclass
class WorkerStats:
    """What one ``run_worker`` call did."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    lost_leases: int = 0  # mark_* returned False: the lease had been taken over
    released: int = 0  # expired leases this worker returned to the queue
    handed_back: int = 0  # its own unsent deliveries released when it stopped


def log_sender(delivery: ClaimedDeliveryDTO) -> str | None:
    """Send nothing; log what would be sent (the default sender)."""
    recipient, note = delivery["recipient"], delivery["notification"]
    if delivery["channel"] == "push" and not recipient["expo_push_token"]:
        raise SkipDelivery("the recipient has no push token")
    to = recipient["email"] if delivery["channel"] == "email" else recipient["user_id"]
    log.info("%s to %s: %s", delivery["channel"], to, note["title"])
    return f"log-{delivery['id']}-{delivery['attempts']}"


def process_batch(
    worker_id: str,
    sender: Sender,
    batch: list[ClaimedDeliveryDTO],
    stats: WorkerStats,
    retry_base_seconds: float,
    stop: Callable[[], bool] | None = None,
) -> list[SentItem]:
    """Send a claimed batch (until ``stop()``); mark failures and skips; return the sent
    ones to mark. Deliveries left unsent when stopped stay claimed, for ``release``."""
    sent: list[SentItem] = []
    for delivery in batch:
        if stop is not None and stop():
            break
        fence = delivery["attempts"]  # the claim's attempts: marks only count under it
        try:
            message_id = sender(delivery)
        except SkipDelivery as exc:
            held = DeliveryQueries.mark_skipped(
                delivery["id"], worker_id, reason=str(exc) or "skipped", attempts=fence
            )
            stats.skipped += held
        except Exception as exc:  # any sender failure is retried with backoff
            error = f"{type(exc).__name__}: {exc}"
            held = DeliveryQueries.mark_failed(
                delivery["id"],
                worker_id,
                error=error,
                retry_base_seconds=retry_base_seconds,
                attempts=fence,
            )
            stats.failed += held
        else:
            sent.append((delivery["id"], message_id, fence))
            continue
        if not held:
            stats.lost_leases += 1
            log.warning("lease on delivery %s lost before it was marked", delivery["id"])
    return sent


def count_marked(sent: list[Any], marked: int, stats: WorkerStats) -> None:
    """Count a batch mark; a delivery whose lease was taken over is left to its holder."""
    stats.sent += marked
    if marked < len(sent):
        stats.lost_leases += len(sent) - marked
        log.warning("%d leases lost before the batch was marked", len(sent) - marked)


def ride_through(call: Callable[[], T], stop: Callable[[], bool] | None) -> T:
    """Run a queue call, again after a lost connection (a failover) with backoff."""
    for attempt in itertools.count():
        try:
            return call()
        except ConnectionLostError as exc:
            if stop is not None and stop() and attempt >= RIDE_THROUGH_WHEN_STOPPING:
                raise
            delay = min(MAX_BACKOFF, 0.05 * 2**attempt) * random.uniform(0.5, 1.0)
            log.warning("database unavailable (%s); retrying in %.2f s", exc, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def run_worker(
    worker_id: str,
    sender: Sender = log_sender,
    *,
    batch_size: int = 50,
    channels: Sequence[Channel] | None = None,
    lease_seconds: float = 300,
    retry_base_seconds: float = 30,
    once: bool = False,
    idle_seconds: float = 10.0,
    poll_seconds: float = 1.0,
    release_every_seconds: float = 30.0,
    stop: Callable[[], bool] | None = None,
    max_seconds: float | None = None,
) -> WorkerStats:
    """Claim, send and mark deliveries until stopped (``once``: until none is due).

    The sent deliveries of a batch are marked together with the next claim
    (``mark_sent_and_claim``: one statement per batch on PostgreSQL). When nothing is due
    the worker waits in ``wait_for_work(timeout=idle_seconds)``. On ``stop()`` it stops between
    two deliveries, marks the sent ones (``mark_sent_many``) and releases the rest of
    its batch (``release``).
    """
    stats = WorkerStats()
    started = time.monotonic()
    last_release = -math.inf
    sent: list[SentItem] = []

    def stopped() -> bool:
        out_of_time = max_seconds is not None and time.monotonic() - started >= max_seconds
        return out_of_time or bool(stop and stop())

    def release_stale() -> None:
        """Hand expired leases (of workers that died) back, every release_every_seconds."""
        nonlocal last_release
        if time.monotonic() - last_release >= release_every_seconds:
            stats.released += ride_through(DeliveryQueries.release_stale, stopped)
            last_release = time.monotonic()

    try:
        while not stopped():
            release_stale()
            mark_and_claim = functools.partial(
                DeliveryQueries.mark_sent_and_claim,
                worker_id,
                sent,
                limit=batch_size,
                channels=channels,
                lease_seconds=lease_seconds,
            )
            marked, batch = ride_through(mark_and_claim, stopped)
            count_marked(sent, marked, stats)
            sent = []
            stats.claimed += len(batch)
            if batch:
                sent = process_batch(worker_id, sender, batch, stats, retry_base_seconds, stopped)
            elif once:
                break
            else:
                _idle(channels, idle_seconds, poll_seconds, stopped, release_stale)
    except BaseException:
        if sent:  # a crash: still mark what was sent (the unsent leases run out)
            count_marked(sent, DeliveryQueries.mark_sent_many(worker_id, sent), stats)
        raise
    _let_go(worker_id, sent, stats, stopped)
    return stats


def _idle(
    channels: Sequence[Channel] | None,
    idle: float,
    poll: float,
    stopped: Callable[[], bool],
    release_stale: Callable[[], None],
) -> None:
    """Wait until a delivery may be due: one statement per ``idle`` seconds meanwhile,
    and the expired leases released on schedule."""
    wait = functools.partial(
        DeliveryQueries.wait_for_work, timeout=idle, channels=channels, poll_seconds=poll
    )
    while not stopped():
        if ride_through(wait, stopped):
            return
        release_stale()


def _let_go(
    worker_id: str, sent: list[Any], stats: WorkerStats, stopped: Callable[[], bool]
) -> None:
    """Mark what was sent, then hand the rest of the batch back to the queue."""
    if sent:
        mark = functools.partial(DeliveryQueries.mark_sent_many, worker_id, sent)
        count_marked(sent, ride_through(mark, stopped), stats)
    # Only once the sent ones are marked: a released delivery is claimed again at once.
    release = functools.partial(DeliveryQueries.release, worker_id)
    stats.handed_back += ride_through(release, stopped)


def load_sender(spec: str) -> Sender:
    """Import a sender given as ``package.module:function``."""
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise SystemExit(f"--sender must look like package.module:function, not {spec!r}")
    return getattr(importlib.import_module(module_name), attr)  # type: ignore[no-any-return]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the worker from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help="database URL (default: DATABASE_URL)")
    parser.add_argument("--worker-id", default=f"{socket.gethostname()}-{os.getpid()}")
    parser.add_argument("--sender", help="package.module:function (default: log only)")
    parser.add_argument("--once", action="store_true", help="exit when nothing is due")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--channels", nargs="+", choices=("in_app", "push", "email"))
    parser.add_argument("--lease-seconds", type=float, default=300)
    parser.add_argument("--idle-seconds", type=float, default=10.0,
                        help="longest wait for work while nothing is due")
    parser.add_argument("--poll-seconds", type=float, default=1.0,
                        help="polling interval where LISTEN is unavailable (a pooler)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stopping: list[Any] = []

    def on_signal(*_: Any) -> None:
        # Finish the delivery being sent, mark the sent ones, release the rest, exit.
        stopping.append(True)
        DeliveryQueries.stop_waiting()  # an idle wait returns at once

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    init_db(args.database)
    try:
        stats = run_worker(
            args.worker_id,
            load_sender(args.sender) if args.sender else log_sender,
            batch_size=args.batch_size,
            channels=args.channels,
            lease_seconds=args.lease_seconds,
            once=args.once,
            idle_seconds=args.idle_seconds,
            poll_seconds=args.poll_seconds,
            stop=lambda: bool(stopping),
        )
    finally:
        db.close()
    log.info("done: %s", stats)
    print(
        f"claimed={stats.claimed} sent={stats.sent} failed={stats.failed} "
        f"skipped={stats.skipped} lost_leases={stats.lost_leases} released={stats.released} "
        f"handed_back={stats.handed_back}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
