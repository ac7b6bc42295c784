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

A sender is any callable taking the claimed delivery (with its ``notification`` and
``recipient``) and returning the provider's message id (or None); it raises
``SkipDelivery`` for a delivery that must not be sent and any other exception for a
failure worth retrying.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import os
import signal
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from datalayer import db, init_db
from datalayer.queries import DeliveryQueries
from datalayer.schemas.notifications import ClaimedDeliveryDTO

log = logging.getLogger("delivery_worker")

Sender = Callable[[ClaimedDeliveryDTO], str | None]


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
) -> list[tuple[str, str | None, int]]:
    """Send a claimed batch; mark failures and skips; return the sent ones to mark."""
    sent: list[tuple[str, str | None, int]] = []
    for delivery in batch:
        fence = delivery["attempts"]  # the claim's attempts: marks only count under it
        try:
            message_id = sender(delivery)
        except SkipDelivery as exc:
            held = DeliveryQueries.mark_skipped(
                delivery["id"], worker_id, str(exc) or "skipped", attempts=fence
            )
            stats.skipped += held
        except Exception as exc:  # any sender failure is retried with backoff
            error = f"{type(exc).__name__}: {exc}"
            held = DeliveryQueries.mark_failed(
                delivery["id"], worker_id, error, retry_base_seconds, attempts=fence
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


def run_worker(
    worker_id: str,
    sender: Sender = log_sender,
    *,
    batch_size: int = 50,
    channels: Sequence[str] | None = None,
    lease_seconds: float = 300,
    retry_base_seconds: float = 30,
    once: bool = False,
    poll_seconds: float = 1.0,
    release_every_seconds: float = 30.0,
    stop: Callable[[], bool] | None = None,
    max_seconds: float | None = None,
) -> WorkerStats:
    """Claim, send and mark deliveries until stopped (``once``: until none is due).

    The sent deliveries of a batch are marked together with the next claim
    (``mark_sent_and_claim``: one statement per batch on PostgreSQL); whatever is still
    unmarked when the loop ends is marked with ``mark_sent_many``.
    """
    stats = WorkerStats()
    started = time.monotonic()
    last_release = -math.inf
    sent: list[tuple[str, str | None, int]] = []
    try:
        while not (stop and stop()):
            now = time.monotonic()
            if max_seconds is not None and now - started >= max_seconds:
                break
            if now - last_release >= release_every_seconds:
                stats.released += DeliveryQueries.release_stale()
                last_release = now
            marked, batch = DeliveryQueries.mark_sent_and_claim(
                worker_id, sent, batch_size, channels, lease_seconds
            )
            count_marked(sent, marked, stats)
            sent = []
            stats.claimed += len(batch)
            if not batch:
                if once:
                    break
                time.sleep(poll_seconds)
                continue
            sent = process_batch(worker_id, sender, batch, stats, retry_base_seconds)
    finally:
        if sent:  # stopped with a batch sent but not yet marked
            count_marked(sent, DeliveryQueries.mark_sent_many(worker_id, sent), stats)
    return stats


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
    parser.add_argument("--poll-seconds", type=float, default=1.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stopping: list[Any] = []
    # SIGTERM/SIGINT: finish the batch in hand, then exit (its leases are not abandoned).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.append(True))
    init_db(args.database)
    try:
        stats = run_worker(
            args.worker_id,
            load_sender(args.sender) if args.sender else log_sender,
            batch_size=args.batch_size,
            channels=args.channels,
            lease_seconds=args.lease_seconds,
            once=args.once,
            poll_seconds=args.poll_seconds,
            stop=lambda: bool(stopping),
        )
    finally:
        db.close()
    log.info("done: %s", stats)
    print(
        f"claimed={stats.claimed} sent={stats.sent} failed={stats.failed} "
        f"skipped={stats.skipped} lost_leases={stats.lost_leases} released={stats.released}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
