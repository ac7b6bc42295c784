"""The delivery work queue: workers claim due deliveries under a lease, send, then mark them.

A delivery's life: ``pending`` → (``claim``) ``processing`` → ``sent`` | ``skipped`` |
``failed``, or back to ``pending`` after a failed attempt (``mark_failed``) or an
expired lease (``release_stale``).

The lease: ``claim`` sets ``locked_by`` (the worker), ``locked_at`` (the claim time)
and, while the row is ``processing``, ``next_attempt_at`` to the *lease expiry*
(claim time + ``lease_seconds``); ``release_stale`` returns the rows whose expiry has
passed. Each claim adds one to ``attempts``, so (``id``, ``attempts``) names one claim:
the ``mark_*`` functions change the row only while it is still ``processing`` under
that worker — and, given ``attempts=`` (the value ``claim`` returned), under that very
claim. A worker whose lease expired and was claimed again (even by itself) changes
nothing and gets False. A lease that ran out but was not yet released still counts as
held: finishing late is better than sending twice. Terminal rows keep ``locked_by``
and ``locked_at`` as a record of who finished them; a row back in ``pending`` has
neither.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, cast

import peewee

from datalayer.connection.database import is_postgres
from datalayer.connection.listening import clear_interrupt, interrupt
from datalayer.errors import error_boundary
from datalayer.models import Notification, NotificationTarget, User
from datalayer.queries.base import for_update, one_statement, read, write
from datalayer.queries.notifications._queue import (
    MARK_SENT,
    MARK_SKIPPED,
    D,
    backoff_seconds,
    check_attempts,
    check_channels,
    check_seconds,
    fence_values,
    lease_held,
    retry_or_fail,
    storable_message,
)
from datalayer.queries.notifications._statements import (
    MARK_SENT_MANY,
    check_message_id,
    check_sent,
    claim_statement,
    claimed_rows,
    mark_sent_values,
)
from datalayer.queries.notifications._stats import stats_query, summarize
from datalayer.queries.notifications._wake import wait_for_work, waking_count
from datalayer.schemas.base import check_id, check_limit, check_now
from datalayer.schemas.notifications import (
    ClaimedDeliveryDTO,
    DeliveryStats,
    NotificationDeliveryDTO,
    NotificationDTO,
    SentItem,
    notification_delivery_dumper,
    notification_dumper,
)
from datalayer.types import Channel, DeliveryId


def _due(now: dt.datetime, limit: int, channels: Sequence[str] | None) -> Any:
    """The condition matching up to ``limit`` due pending deliveries, locked for one claim."""
    due: Any = D.select(D.id).where((D.status == "pending") & (D.next_attempt_at <= now))
    if channels is not None:
        due = due.where(D.channel.in_(channels))
    # PostgreSQL: rows another worker is claiming are locked, so skip them rather
    # than wait; SQLite: the IMMEDIATE transaction already excludes other writers.
    due = for_update(due.order_by(D.next_attempt_at, D.id).limit(limit), skip_locked=True)
    if not is_postgres():
        return D.id.in_(due)
    # = ANY(ARRAY(subquery)), not IN (subquery): ARRAY() runs the locking subquery once,
    # as an InitPlan. Planned as a semi-join, IN may rescan it for each outer row, and
    # each rescan skips the rows this UPDATE already changed and locks the next ones —
    # claiming more than ``limit`` rows.
    return D.id == peewee.fn.ANY(peewee.fn.ARRAY(due))


def _with_sending_details(deliveries: list[dict[str, Any]]) -> list[ClaimedDeliveryDTO]:
    """Attach each delivery's notification and recipient, fetched in one query."""
    if not deliveries:
        return []
    extra = (
        User.email,
        User.name,
        NotificationTarget.novu_subscriber_id,
        NotificationTarget.expo_push_token,
    )
    query: Any = (
        notification_dumper.select(*extra)
        .join(User, on=(Notification.recipient_user == User.id))
        .join(
            NotificationTarget,
            peewee.JOIN.LEFT_OUTER,
            on=(NotificationTarget.user == Notification.recipient_user),
        )
        .where(Notification.id.in_(sorted({d["notification_id"] for d in deliveries})))
    )
    width = len(notification_dumper.columns)
    details: dict[str, tuple[NotificationDTO, dict[str, Any]]] = {}
    for values in query.tuples():
        notification = notification_dumper.row(values[:width])
        email, name, novu_id, push_token = values[width:]
        recipient = {
            "user_id": notification["recipient_user_id"],
            "novu_subscriber_id": novu_id,
            "expo_push_token": push_token,
            "email": email,
            "name": name,
        }
        details[notification["id"]] = (notification, recipient)
    for delivery in deliveries:
        delivery["notification"], delivery["recipient"] = details[delivery["notification_id"]]
    return deliveries  # type: ignore[return-value]  # now with notification and recipient


def _fail_attempt(fence: Any, attempts: int, base: float, text: str, now: dt.datetime) -> bool:
    """Back to pending after a backoff, or failed when no attempts remain (fenced)."""
    retry_at = now + dt.timedelta(seconds=backoff_seconds(base, attempts))
    values = retry_or_fail(retry_at, now)
    values[D.error] = text
    return waking_count(D.update(values).where(fence)) > 0  # a retry due: wake the waiters


@error_boundary
class DeliveryQueries:
    """The delivery queue background workers run on (at-least-once, fenced by lease)."""

    @staticmethod
    def claim(
        worker_id: str,
        *,
        limit: int = 50,
        channels: Sequence[Channel] | None = None,
        lease_seconds: float = 300,
        now: dt.datetime | None = None,
    ) -> list[ClaimedDeliveryDTO]:
        """Lease up to ``limit`` due pending deliveries to the worker; return them to send.

        For delivery workers (trusted code; ``worker_id`` names the process). Rows are
        taken with ``FOR UPDATE SKIP LOCKED``, so concurrent workers never get the same
        one; each claim adds one to ``attempts`` and leases the row for
        ``lease_seconds``. ``channels`` limits the claim to those channels.

        Returns:
            The claimed deliveries with their notification and recipient, oldest due
            first; an empty list when none is due.

        Raises:
            ValidationError: ``worker_id``, ``limit`` (1-1000), ``channels``,
                ``lease_seconds`` or ``now`` is not valid.
        """
        check_id("worker_id", worker_id)
        limit = check_limit(limit)
        wanted = check_channels(channels)
        lease = check_seconds("lease_seconds", lease_seconds, positive=True)
        now = check_now(now)
        lease_end = now + dt.timedelta(seconds=lease)
        if is_postgres():  # one statement: the claim and the sending details, no BEGIN/COMMIT
            values = {
                "now": now,
                "limit": limit,
                "worker": worker_id,
                "lease_end": lease_end,
                "channels": wanted,
            }
            with read():
                return claimed_rows(claim_statement(wanted is not None).execute(values).fetchall())
        query = (
            D.update(
                {
                    D.status: "processing",
                    D.attempts: D.attempts + 1,
                    D.locked_by: worker_id,
                    D.locked_at: now,
                    D.next_attempt_at: lease_end,
                    D.updated_at: now,
                }
            )
            .where(_due(now, limit, wanted) & (D.status == "pending"))
            .returning(*notification_delivery_dumper.fields)
        )
        with write():
            rows = list(query.tuples().execute())
            claimed = sorted(notification_delivery_dumper.rows(rows), key=lambda d: d["id"])
            return _with_sending_details(cast("list[dict[str, Any]]", claimed))

    @staticmethod
    def mark_sent(
        delivery_id: DeliveryId,
        worker_id: str,
        *,
        provider_message_id: str | None = None,
        attempts: int | None = None,
    ) -> bool:
        """Record the delivery as sent; False (nothing changed) when the lease is no longer held.

        The worker that claimed it (``worker_id``); with ``attempts`` (the value ``claim``
        returned), only under that very claim.

        Returns:
            True when it was marked; False when no delivery has this id, another worker
            holds it, or it is not ``processing`` any more (nothing changed).

        Raises:
            ValidationError: an id, ``provider_message_id`` or ``attempts`` is not valid.
        """
        check_message_id(provider_message_id)
        values = fence_values(delivery_id, worker_id, attempts)
        values["provider_message_id"] = provider_message_id
        return bool(MARK_SENT(attempts is not None).execute(values).rowcount > 0)

    @staticmethod
    def mark_sent_many(worker_id: str, sent: Sequence[SentItem]) -> int:
        """Mark a claimed batch sent in one statement; return how many the worker still held.

        The worker that claimed them. ``sent``: ``(delivery_id, provider_message_id)``
        items, or ``(delivery_id, provider_message_id, attempts)`` to fence each on its
        claim as ``mark_sent(..., attempts=)`` does. A delivery whose lease the worker lost
        is left unchanged.

        Returns:
            How many were marked; 0 for an empty batch or when the worker held none.

        Raises:
            ValidationError: ``worker_id`` or an item of ``sent`` is not valid; nothing was
                marked.
        """
        check_id("worker_id", worker_id)
        items = check_sent(sent)
        if not items:
            return 0
        with one_statement():
            return int(MARK_SENT_MANY.execute(mark_sent_values(worker_id, items)).rowcount)

    @staticmethod
    def mark_sent_and_claim(
        worker_id: str,
        sent: Sequence[SentItem],
        *,
        limit: int = 50,
        channels: Sequence[Channel] | None = None,
        lease_seconds: float = 300,
        now: dt.datetime | None = None,
    ) -> tuple[int, list[ClaimedDeliveryDTO]]:
        """Mark the previous batch sent and claim the next: ``(marked, claimed)``.

        For delivery workers: ``mark_sent_many(worker_id, sent)`` then ``claim(worker_id,
        limit=, channels=, lease_seconds=)``, with the same checks and fences; on
        PostgreSQL in one statement (one commit per batch instead of two).

        Returns:
            How many of ``sent`` were marked, and the claimed deliveries (an empty list
            when none is due).

        Raises:
            ValidationError: an argument is not valid; nothing was marked or claimed.
        """
        check_id("worker_id", worker_id)
        items = check_sent(sent)
        limit = check_limit(limit)
        wanted = check_channels(channels)
        lease = check_seconds("lease_seconds", lease_seconds, positive=True)
        now = check_now(now)
        if not is_postgres() or not items:
            marked = (
                DeliveryQueries.mark_sent_many(worker_id, cast("list[SentItem]", items))
                if items
                else 0
            )
            return marked, DeliveryQueries.claim(
                worker_id, limit=limit, channels=wanted, lease_seconds=lease, now=now
            )
        values = mark_sent_values(worker_id, items)
        values.update(
            now=now,
            limit=limit,
            lease_end=now + dt.timedelta(seconds=lease),
            channels=wanted,
        )
        with read():
            rows = claim_statement(wanted is not None, True).execute(values).fetchall()
        claimed = [row[1:] for row in rows if row[1] is not None]
        return int(rows[0][0]), claimed_rows(claimed)

    @staticmethod
    def mark_skipped(
        delivery_id: DeliveryId, worker_id: str, *, reason: str, attempts: int | None = None
    ) -> bool:
        """Record that the delivery will not be sent, and why; False when the lease is gone.

        The worker that claimed it (e.g. the recipient has no push token).

        Returns:
            True when it was marked ``skipped``; False when the worker no longer holds it.

        Raises:
            ValidationError: an id, ``reason`` or ``attempts`` is not valid.
        """
        values = fence_values(delivery_id, worker_id, attempts)
        values["error"] = storable_message("reason", reason)
        return bool(MARK_SKIPPED(attempts is not None).execute(values).rowcount > 0)

    @staticmethod
    def mark_failed(
        delivery_id: DeliveryId,
        worker_id: str,
        *,
        error: str,
        retry_base_seconds: float = 30,
        attempts: int | None = None,
        now: dt.datetime | None = None,
    ) -> bool:
        """Record a failed attempt: retry later with backoff, or fail for good when none remain.

        The worker that claimed it. The next attempt is due after an exponential backoff
        from ``retry_base_seconds``; with no attempts left the delivery is ``failed``.

        Returns:
            True when the failure was recorded; False when the worker no longer holds it.

        Raises:
            ValidationError: an id, ``error``, ``retry_base_seconds``, ``attempts`` or
                ``now`` is not valid.
        """
        text = storable_message("error", error)
        base = check_seconds("retry_base_seconds", retry_base_seconds, positive=False)
        fence = lease_held(delivery_id, worker_id, check_attempts(attempts))
        now = check_now(now)
        if attempts is not None:  # fenced on the claim's attempts: one statement
            with one_statement():
                return _fail_attempt(fence, attempts, base, text, now)
        with write():
            # Without the claim's attempts, read them under the fence (and a row lock on
            # PostgreSQL); the update is then fenced on the value read.
            held: Any = D.select(D.attempts).where(fence)
            row = for_update(held).tuples().first()
            if row is None:
                return False
            return _fail_attempt(fence & (D.attempts == row[0]), row[0], base, text, now)

    @staticmethod
    def release_stale(*, now: dt.datetime | None = None) -> int:
        """Return deliveries whose lease ran out to ``pending`` (``failed`` if out of attempts).

        Trusted code (``datalayer maintain`` calls it).

        Returns:
            How many were released; 0 when no lease had run out.

        Raises:
            ValidationError: ``now`` is not a timezone-aware datetime.
        """
        now = check_now(now)
        # locked_at <= now is always true of a lease; it lets the lease index find the rows.
        expired = (D.status == "processing") & (D.locked_at <= now) & (D.next_attempt_at <= now)
        values = retry_or_fail(now, now)
        values[D.error] = "lease expired"
        with one_statement():
            return waking_count(D.update(values).where(expired))

    @staticmethod
    def release(worker_id: str, *, now: dt.datetime | None = None) -> int:
        """Put the worker's claimed, unfinished deliveries back to pending, due at once;
        return how many (a worker that stops: another one claims them without waiting
        for the lease to run out).

        Fenced like the marks: only rows still ``processing`` under ``worker_id``; one
        that another worker has claimed since is untouched. The claim still counts as
        an attempt (``attempts`` names a claim, so it never goes back). For the worker
        itself, as it stops.

        Returns:
            How many were released; 0 when it held none.

        Raises:
            ValidationError: ``worker_id`` or ``now`` is not valid.
        """
        check_id("worker_id", worker_id)
        now = check_now(now)
        values = {
            D.status: "pending",
            D.next_attempt_at: now,
            D.locked_by: None,
            D.locked_at: None,
            D.updated_at: now,
        }
        held = (D.status == "processing") & (D.locked_by == worker_id)
        with one_statement():
            return waking_count(D.update(values).where(held))

    @staticmethod
    def wait_for_work(
        *,
        timeout: float,
        channels: Sequence[Channel] | None = None,
        poll_seconds: float = 1.0,
    ) -> bool:
        """Block until a delivery may be due (True), or ``timeout`` seconds pass or
        ``stop_waiting()`` is called (False).

        Listens (LISTEN) on a direct connection of its own, opened on first use; the
        writes that make deliveries due notify in their own transaction. A retry due
        within ``timeout`` ends the wait when it is due. One statement per call (the
        earliest due time), none while waiting. Behind a transaction-mode pooler, or on
        SQLite, it polls every ``poll_seconds`` instead (and logs why, once). For
        delivery workers, between claims.

        Returns:
            True when a delivery may be due; False when ``timeout`` passed or
            ``stop_waiting()`` was called.

        Raises:
            ValidationError: ``timeout`` or ``poll_seconds`` is not valid.
            ConnectionLostError: the listening connection cannot be opened (a session lost
                while waiting ends the wait with True instead).
        """
        seconds = check_seconds("timeout", timeout, positive=False)
        poll = check_seconds("poll_seconds", poll_seconds, positive=True)
        return wait_for_work(seconds, check_channels(channels), poll)

    @staticmethod
    def stop_waiting() -> None:
        """Make a ``wait_for_work`` in progress, and every later one, return False at once
        (safe in a signal handler); ``resume_waiting()`` undoes it.

        For a delivery worker that is told to stop (SIGTERM). Raises nothing.

        Returns:
            None.
        """
        interrupt()

    @staticmethod
    def resume_waiting() -> None:
        """Let ``wait_for_work`` wait again after ``stop_waiting()``.

        For a delivery worker that goes on after a stop was called off. Raises nothing.

        Returns:
            None.
        """
        clear_interrupt()

    @staticmethod
    def stats(*, now: dt.datetime | None = None) -> DeliveryStats:
        """Return the queue's health: counts by status and channel, the age of the oldest
        due delivery, leases past their end, sent and failed in the last hour.

        One statement, but it counts every delivery (a scan): poll it every minute or
        less often, not per request. For monitoring (``datalayer queue``).

        Returns:
            The counts (zeros, and ``oldest_due_age_seconds`` None, for an empty queue).

        Raises:
            ValidationError: ``now`` is not a timezone-aware datetime.
        """
        now = check_now(now)
        with read():
            rows = list(stats_query(now).tuples())
        return summarize(rows, now)

    @staticmethod
    def find_by_id(delivery_id: DeliveryId) -> NotificationDeliveryDTO | None:
        """Return the delivery with this id, or None.

        Trusted code (workers, the back office).

        Returns:
            The delivery, or None when none has this id.

        Raises:
            ValidationError: ``delivery_id`` is not a valid id.
        """
        check_id("delivery_id", delivery_id)
        with read():
            query = notification_delivery_dumper.select().where(D.id == delivery_id)
            return notification_delivery_dumper.one(query)


__all__ = ["DeliveryQueries"]
