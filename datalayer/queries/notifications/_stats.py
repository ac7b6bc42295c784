"""The delivery queue's health in one statement (used by ``DeliveryQueries.stats``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import peewee

from datalayer.models.base import to_utc
from datalayer.models.notifications import CHANNELS, DELIVERY_STATUSES
from datalayer.queries.notifications._queue import D
from datalayer.schemas.notifications import DeliveryStats
from datalayer.types import DeliveryStatus

HOUR = dt.timedelta(hours=1)


def stats_query(now: dt.datetime) -> Any:
    """Counts by status and channel, with the health figures folded into the same scan."""
    count = peewee.fn.COUNT(D.id)
    hour_ago = now - HOUR
    return D.select(
        D.status,
        D.channel,
        count,
        count.filter((D.status == "sent") & (D.sent_at >= hour_ago)),
        count.filter((D.status == "failed") & (D.updated_at >= hour_ago)),
        # While processing, next_attempt_at is the lease's end.
        count.filter((D.status == "processing") & (D.next_attempt_at <= now)),
        peewee.fn.MIN(D.next_attempt_at).filter(
            (D.status == "pending") & (D.next_attempt_at <= now)
        ),
    ).group_by(D.status, D.channel)


def summarize(rows: list[tuple[Any, ...]], now: dt.datetime) -> DeliveryStats:
    """Fold the grouped rows into the stats mapping."""
    by_channel: dict[str, dict[DeliveryStatus, int]] = {c: dict.fromkeys(DELIVERY_STATUSES, 0) for c in CHANNELS}
    sent = failed = expired = 0
    oldest: dt.datetime | None = None
    for status, channel, n, sent_n, failed_n, expired_n, due in rows:
        by_channel.setdefault(channel, dict.fromkeys(DELIVERY_STATUSES, 0))[status] = n
        sent, failed, expired = sent + sent_n, failed + failed_n, expired + expired_n
        due = to_utc(D.next_attempt_at.python_value(due)) if due is not None else None
        if due is not None and (oldest is None or due < oldest):
            oldest = due
    by_status = {s: sum(c[s] for c in by_channel.values()) for s in DELIVERY_STATUSES}
    finished = sent + failed
    return {
        "now": now.isoformat(),
        "by_status": by_status,
        "by_channel": by_channel,
        "oldest_due_age_seconds": round((now - oldest).total_seconds(), 3) if oldest else None,
        "expired_leases": expired,
        "sent_last_hour": sent,
        "failed_last_hour": failed,
        "failure_rate_last_hour": round(failed / finished, 4) if finished else None,
    }
