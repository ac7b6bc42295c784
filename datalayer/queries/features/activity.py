"""Queries of per-user daily activity rollups: atomic counters, one row per day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from peewee import EXCLUDED, SQL

from datalayer.connection.database import is_postgres
from datalayer.connection.replicas import replica_read
from datalayer.errors import ValidationError, error_boundary
from datalayer.models import UserActivityDaily
from datalayer.models.base import utcnow
from datalayer.queries.base import (
    check_date,
    counters_fit,
    overflowing_counters,
    read,
    write,
)
from datalayer.schemas.base import check_id, load
from datalayer.schemas.features import (
    UserActivityDailyDTO,
    create_user_activity_daily_schema,
    user_activity_daily_dumper,
)
from datalayer.types import UserId

# record()'s argument names, by the create schema's field they fill.
_RECORD_ARGS = {
    "date": "day",
    "event_count": "events",
    "session_count": "sessions",
    "active_minutes": "minutes",
    "features_used": "features",
}

_COUNTERS = ("event_count", "session_count", "active_minutes")

# Union of the stored and the new feature names, de-duplicated and sorted by code point
# (COLLATE "C" on PostgreSQL, SQLite's BINARY), in the same statement as the insert.
_MERGE_FEATURES_PG = SQL(
    """(SELECT COALESCE(jsonb_agg(DISTINCT f.x COLLATE "C" ORDER BY f.x COLLATE "C"), '[]')"""
    """ FROM jsonb_array_elements_text("user_activity_daily"."features_used" """
    """|| EXCLUDED."features_used") AS f(x))"""
)
_MERGE_FEATURES_SQLITE = SQL(
    """(SELECT json_group_array(f.value) FROM ("""
    """SELECT value FROM json_each("user_activity_daily"."features_used") UNION """
    """SELECT value FROM json_each(EXCLUDED."features_used") ORDER BY value) AS f)"""
)


def _load_activity(
    day: Any, events: Any, sessions: Any, minutes: Any, features: Any
) -> dict[str, Any]:
    data = {
        "date": utcnow().date() if day is None else day,
        "event_count": events,
        "session_count": sessions,
        "active_minutes": minutes,
        "features_used": features,
    }
    try:
        values = load(create_user_activity_daily_schema, data)
    except ValidationError as exc:
        raise ValidationError(
            {_RECORD_ARGS.get(k, k): v for k, v in exc.messages.items()}
        ) from None
    values["features_used"] = sorted(set(values["features_used"]))
    return values


def _upsert_activity(user_id: str, values: dict[str, Any]) -> Any:
    """INSERT the day's row, or add to it when it exists: one atomic statement."""
    model = UserActivityDaily
    update: dict[Any, Any] = {
        model._meta.columns[c]: model._meta.columns[c] + getattr(EXCLUDED, c) for c in _COUNTERS
    }
    update[model.features_used] = _MERGE_FEATURES_PG if is_postgres() else _MERGE_FEATURES_SQLITE
    update[model.updated_at] = EXCLUDED.updated_at
    # Refuse (no row returned) rather than overflow int4: PostgreSQL would raise, SQLite
    # would store the bigger number.
    return (
        model.insert(user=user_id, **values)
        .on_conflict(
            conflict_target=[model.user, model.date],
            update=update,
            where=counters_fit(model, _COUNTERS),
        )
        .returning(*user_activity_daily_dumper.fields)
    )


def _overflow_error(user_id: str, values: dict[str, Any]) -> ValidationError:
    model = UserActivityDaily
    day_row = (model.user == user_id) & (model.date == values["date"])
    names = [_RECORD_ARGS[c] for c in overflowing_counters(model, day_row, values, _COUNTERS)]
    return ValidationError(
        {name: ["The day's total would exceed the integer range."] for name in names}
    )


@error_boundary
class UserActivityQueries:
    """Per-user daily activity rollups: one row per user and day, incremented atomically."""

    @staticmethod
    def record(
        user_id: UserId,
        *,
        day: dt.date | None = None,
        events: int = 1,
        sessions: int = 0,
        minutes: int = 0,
        features: Iterable[str] = (),
    ) -> UserActivityDailyDTO:
        """Add to the user's counters of the day (today, UTC, by default) in one statement.

        Trusted code recording what the user did (a request handler, an analytics worker).
        Concurrent calls add up; ``features`` are merged into the day's sorted set.

        Returns:
            The day's row after the addition.

        Raises:
            ValidationError: an argument is not valid (negative counts, a ``day`` that is
                not a date), or a counter would pass the integer range; nothing was
                written.
            NotFoundError: the user does not exist.
        """
        check_id("user_id", user_id)
        values = _load_activity(day, events, sessions, minutes, features)
        with write():
            rows = list(_upsert_activity(user_id, values).tuples().execute())
            if not rows:
                raise _overflow_error(user_id, values)
        return user_activity_daily_dumper.row(rows[0])

    @staticmethod
    @replica_read
    def list_range(
        user_id: UserId, *, start: dt.date, end: dt.date
    ) -> list[UserActivityDailyDTO]:
        """Return the user's daily rows from start to end (inclusive), oldest first.

        Trusted code (the user's own dashboard, the back office). Runs on a read replica
        when there is one.

        Returns:
            One row per day that has activity; an empty list when none has.

        Raises:
            ValidationError: ``user_id``, ``start`` or ``end`` is not valid, or ``end`` is
                before ``start``.
        """
        check_id("user_id", user_id)
        first, last = check_date("start", start), check_date("end", end)
        if last < first:
            raise ValidationError({"end": ["Must not be before start."]})
        model = UserActivityDaily
        query = (
            user_activity_daily_dumper.select()
            .where((model.user == user_id) & model.date.between(first, last))
            .order_by(model.date)
        )
        with read():
            return user_activity_daily_dumper.many(query)


__all__ = ["UserActivityQueries"]
