"""Queries of a recipient's notification preferences and push targets.

Re-exported by ``datalayer.queries.notifications``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import peewee

from datalayer.models import NotificationPreference, NotificationTarget
from datalayer.models.base import utcnow
from datalayer.queries.base import read, write
from datalayer.schemas.base import check_id, check_now, load, require
from datalayer.schemas.notifications import (
    DEFAULT_PREFERENCES,
    PREFERENCE_FLAGS,
    NotificationPreferenceDTO,
    NotificationTargetDTO,
    ResolvedNotificationPreferenceDTO,
    notification_preference_dumper,
    notification_target_dumper,
    update_notification_preference_schema,
    update_notification_target_schema,
)

Pref = NotificationPreference
Target = NotificationTarget


def resolve_preferences(user_id: str, tenant_id: str | None) -> ResolvedNotificationPreferenceDTO:
    """Return the flags in force for the user (in ``tenant_id``), in one query; ids checked."""
    scope = Pref.tenant.is_null()
    if tenant_id is not None:
        scope = scope | (Pref.tenant == tenant_id)
    flags = [getattr(Pref, name) for name in PREFERENCE_FLAGS]
    # The tenant's row sorts before the global one: (tenant_id IS NULL) is false for it.
    query: Any = (
        Pref.select(Pref.tenant, *flags)
        .where((Pref.user == user_id) & scope)
        .order_by(Pref.tenant.is_null())
        .limit(1)
        .tuples()
    )
    with read():
        row = next(iter(query), None)
    if row is None:
        values, source = dict(DEFAULT_PREFERENCES), "default"
    else:
        values = {name: bool(v) for name, v in zip(PREFERENCE_FLAGS, row[1:], strict=True)}
        source = "global" if row[0] is None else "tenant"
    return {"user_id": user_id, "tenant_id": tenant_id, **values, "source": source}  # type: ignore[typeddict-item]


class PreferenceQueries:
    """Which channels a user receives notifications on, globally and per tenant."""

    @staticmethod
    def resolve(user_id: str, tenant_id: str | None = None) -> ResolvedNotificationPreferenceDTO:
        """Return the user's flags in force: the tenant row, else the global row, else defaults."""
        check_id("user_id", user_id)
        if tenant_id is not None:
            check_id("tenant_id", tenant_id)
        return resolve_preferences(user_id, tenant_id)

    @staticmethod
    def upsert(
        user_id: str, data: Mapping[str, Any], tenant_id: str | None = None
    ) -> NotificationPreferenceDTO:
        """Set the given flags on the user's global row (or tenant row), creating it atomically."""
        check_id("user_id", user_id)
        if tenant_id is not None:
            check_id("tenant_id", tenant_id)
        values = load(update_notification_preference_schema, data)
        now = utcnow()
        # ON CONFLICT names the partial unique index (its columns and predicate), so
        # concurrent first writes meet in the index instead of both inserting.
        target: list[Any] = [Pref.user]
        if tenant_id is None:
            where = peewee.SQL("tenant_id IS NULL")
        else:
            target, where = [Pref.user, Pref.tenant], peewee.SQL("tenant_id IS NOT NULL")
        update = {getattr(Pref, name): getattr(peewee.EXCLUDED, name) for name in values}
        update[Pref.updated_at] = now
        query = (
            Pref.insert(user=user_id, tenant=tenant_id, created_at=now, updated_at=now, **values)
            .on_conflict(conflict_target=target, conflict_where=where, update=update)
            .returning(*notification_preference_dumper.fields)
        )
        with write():
            return notification_preference_dumper.written(query)  # type: ignore[return-value]


def _check_seconds(name: str, value: Any) -> float:
    return require(  # type: ignore[no-any-return]
        name,
        value,
        lambda v: (
            isinstance(v, int | float)
            and not isinstance(v, bool)
            and math.isfinite(v)
            and 0 <= v <= 10**9
        ),
        "Must be a non-negative number of seconds.",
    )


class TargetQueries:
    """Where a user's push and messaging providers reach them, and when they were last seen."""

    @staticmethod
    def upsert(user_id: str, data: Mapping[str, Any]) -> NotificationTargetDTO:
        """Set the user's provider identities (the fields given), creating the row atomically."""
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
            return notification_target_dumper.written(query)  # type: ignore[return-value]

    @staticmethod
    def touch(user_id: str, now: dt.datetime | None = None) -> NotificationTargetDTO:
        """Record that the user was active at ``now``; never moves ``last_active_at`` back."""
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
            return notification_target_dumper.written(query)  # type: ignore[return-value]

    @staticmethod
    def is_active(
        user_id: str, within_seconds: float = 120, now: dt.datetime | None = None
    ) -> bool:
        """Tell whether the user was active in the ``within_seconds`` before ``now``."""
        check_id("user_id", user_id)
        within = _check_seconds("within_seconds", within_seconds)
        now = check_now(now)
        since = now - dt.timedelta(seconds=within)
        query = Target.select(Target.id).where(
            (Target.user == user_id) & (Target.last_active_at >= since)
        )
        with read():
            return bool(query.exists())


__all__ = ["PreferenceQueries", "TargetQueries"]
