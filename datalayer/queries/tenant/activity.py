"""Queries of a tenant's daily activity rollups: atomic counters, one row per day."""

from __future__ import annotations

import datetime as dt

from peewee import EXCLUDED

from datalayer.connection.replicas import replica_read
from datalayer.errors import ValidationError, error_boundary
from datalayer.models import TenantActivityDaily, utcnow
from datalayer.queries.base import (
    check_date,
    counters_fit,
    overflowing_counters,
    read,
    write,
)
from datalayer.schemas.base import check_id, load
from datalayer.schemas.tenant import (
    TenantActivityDailyDTO,
    create_tenant_activity_daily_schema,
    tenant_activity_daily_dumper,
)
from datalayer.types import TenantId

Daily = TenantActivityDaily
_COUNTERS = ("event_count", "active_users", "new_members")
# record()'s argument names, by the schema field they fill.
_ARGS = {"date": "day", "event_count": "events"}


@error_boundary
class TenantActivityQueries:
    """Per-tenant daily counters (events, active users, new members)."""

    @staticmethod
    def record(
        tenant_id: TenantId,
        *,
        day: dt.date | None = None,
        events: int = 1,
        active_users: int = 0,
        new_members: int = 0,
    ) -> TenantActivityDailyDTO:
        """Add to the tenant's counters for ``day`` (today, UTC, by default); return the day's row.

        Trusted code recording what happened in the tenant. Concurrent calls add up.

        Returns:
            The day's row after the addition.

        Raises:
            ValidationError: a count is negative or not an integer, ``day`` is not a date,
                or a counter would pass the integer range; nothing was written.
            NotFoundError: the tenant does not exist.
        """
        check_id("tenant_id", tenant_id)
        data = {
            "date": utcnow().date() if day is None else day,
            "event_count": events,
            "active_users": active_users,
            "new_members": new_members,
        }
        try:
            values = load(create_tenant_activity_daily_schema, data)
        except ValidationError as exc:  # named by record()'s arguments
            raise ValidationError({_ARGS.get(k, k): v for k, v in exc.messages.items()}) from None
        # One statement: insert the day's row or add to it. Concurrent calls lose no count,
        # as the additions are SQL expressions on the stored row, never read-modify-write.
        query = (
            Daily.insert(tenant=tenant_id, **values)
            .on_conflict(
                conflict_target=[Daily.tenant, Daily.date],
                update={
                    Daily.event_count: Daily.event_count + EXCLUDED.event_count,
                    Daily.active_users: Daily.active_users + EXCLUDED.active_users,
                    Daily.new_members: Daily.new_members + EXCLUDED.new_members,
                    Daily.updated_at: utcnow(),
                },
                where=counters_fit(Daily, _COUNTERS),
            )
            .returning(*tenant_activity_daily_dumper.fields)
        )
        with write():
            rows = list(query.tuples().execute())
            if not rows:
                day_row = (Daily.tenant == tenant_id) & (Daily.date == values["date"])
                over = overflowing_counters(Daily, day_row, values, _COUNTERS)
                raise ValidationError(
                    {_ARGS.get(c, c): ["The day's total would pass the integer range."] for c in over}
                    or {"events": ["The day's totals would pass the integer range."]}
                )
        return tenant_activity_daily_dumper.row(rows[0])

    @staticmethod
    @replica_read
    def list_range(
        tenant_id: TenantId, *, start: dt.date, end: dt.date
    ) -> list[TenantActivityDailyDTO]:
        """Return the tenant's rows from ``start`` to ``end`` (both included), oldest first.

        Trusted code, or code acting for a member of the tenant. Runs on a read replica
        when there is one.

        Returns:
            One row per day that has activity; an empty list when none has.

        Raises:
            ValidationError: an argument is not valid, or ``end`` is before ``start``.
        """
        check_id("tenant_id", tenant_id)
        first, last = check_date("start", start), check_date("end", end)
        if last < first:
            raise ValidationError({"end": ["Must not be before start."]})
        query = (
            tenant_activity_daily_dumper.select()
            .where((Daily.tenant == tenant_id) & (Daily.date.between(first, last)))
            .order_by(Daily.date)
        )
        with read():
            return tenant_activity_daily_dumper.many(query)


__all__ = ["TenantActivityQueries"]
