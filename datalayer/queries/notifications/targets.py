"""Queries of a recipient's push targets and when they were last seen."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, TypeGuard

import peewee

from datalayer.errors import error_boundary
from datalayer.models import NotificationTarget
from datalayer.models.base import utcnow
from datalayer.queries.base import read, write
from datalayer.schemas.base import check_id, check_now, load, require
from datalayer.schemas.notifications import (
    NotificationTargetDTO,
    UpdateNotificationTargetInput,
    notification_target_dumper,
    update_notification_target_schema,
)
from datalayer.types import UserId

Target = NotificationTarget


def _check_seconds(name: str, value: Any) -> float:
    def valid(v: Any) -> TypeGuard[float]:
        return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= 10**9

    checked: float = require(
        name,
        value,
        valid,
        "Must be a non-negative number of seconds.",
    )
    return checked


@error_boundary
class TargetQueries:
    """Where a user's push and messaging providers reach them, and when they were last seen."""

    @staticmethod
    def upsert(user_id: UserId, data: UpdateNotificationTargetInput) -> NotificationTargetDTO:
        """Set the user's provider identities (the fields given), creating the row atomically.

        Trusted code acting for ``user_id`` (the app registering its push token).

        Returns:
            The user's target row.

        Raises:
            ValidationError: ``data`` (``expo_push_token``, ``novu_subscriber_id``) or the
                id is not valid; nothing was written.
            NotFoundError: the user does not exist.
        """
        check_id("user_id", user_id)
        values = load(update_notification_target_schema, data)
        now = utcnow()
        update = {getattr(Target, name): getattr(peewee.EXCLUDED, name) for name in values}
        update[Target.updated_at] = now
        query = (
            Target.insert(user=user_id, created_at=now, updated_at=now, **values)
            .on_conflict(conflict_target=[Target.user], update=update)
            .returning(*notification_target_dumper.fields)
        )
        with write():
            return notification_target_dumper.written_one(query)

    @staticmethod
    def touch(user_id: UserId, *, now: dt.datetime | None = None) -> NotificationTargetDTO:
        """Record that the user was active at ``now``; never moves ``last_active_at`` back.

        Trusted code acting for ``user_id``.

        Returns:
            The user's target row (created when they had none).

        Raises:
            ValidationError: the id or ``now`` is not valid.
            NotFoundError: the user does not exist.
        """
        check_id("user_id", user_id)
        now = check_now(now)
        # Two touches racing with slightly different clocks keep the later time.
        later = peewee.Case(
            None,
            [
                (
                    Target.last_active_at.is_null()
                    | (Target.last_active_at < peewee.EXCLUDED.last_active_at),
                    peewee.EXCLUDED.last_active_at,
                )
            ],
            Target.last_active_at,
        )
        query = (
            Target.insert(user=user_id, last_active_at=now)
            .on_conflict(
                conflict_target=[Target.user],
                update={Target.last_active_at: later, Target.updated_at: utcnow()},
            )
            .returning(*notification_target_dumper.fields)
        )
        with write():
            return notification_target_dumper.written_one(query)

    @staticmethod
    def is_active(
        user_id: UserId, *, within_seconds: float = 120, now: dt.datetime | None = None
    ) -> bool:
        """Tell whether the user was active in the ``within_seconds`` before ``now``.

        Trusted code (a sender choosing between push and in-app).

        Returns:
            True when they were; False when they were not, were never seen, or do not
            exist.

        Raises:
            ValidationError: the id, ``within_seconds`` or ``now`` is not valid.
        """
        check_id("user_id", user_id)
        within = _check_seconds("within_seconds", within_seconds)
        now = check_now(now)
        since = now - dt.timedelta(seconds=within)
        query = Target.select(Target.id).where(
            (Target.user == user_id) & (Target.last_active_at >= since)
        )
        with read():
            return bool(query.exists())


__all__ = ["TargetQueries"]
