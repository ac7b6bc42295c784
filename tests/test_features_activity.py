"""UserActivityQueries on both backends."""

from __future__ import annotations

import datetime as dt

import pytest
from factories import make_user

from datalayer import NotFoundError, UserActivityQueries, ValidationError
from datalayer.models import UserActivityDaily, new_id, utcnow

pytestmark = pytest.mark.usefixtures("txn")

INT4_MAX = 2**31 - 1
DAY = dt.date(2024, 2, 29)


def rows_of(user_id: str) -> int:
    return UserActivityDaily.select().where(UserActivityDaily.user == user_id).count()


def test_first_record_inserts_the_days_row() -> None:
    user = make_user()
    row = UserActivityQueries.record(user.id, day=DAY, features=["search", "export", "search"])
    assert row["user_id"] == user.id and row["date"] == "2024-02-29"
    assert (row["event_count"], row["session_count"], row["active_minutes"]) == (1, 0, 0)
    assert row["features_used"] == ["export", "search"]
    assert row["created_at"].endswith("+00:00")


def test_default_day_is_today_in_utc() -> None:
    user = make_user()
    before = utcnow().date()
    row = UserActivityQueries.record(user.id)
    assert row["date"] in {before.isoformat(), utcnow().date().isoformat()}


def test_records_add_up_and_features_merge_sorted_and_unique() -> None:
    user = make_user()
    first = UserActivityQueries.record(
        user.id,
        day=DAY,
        events=2,
        sessions=1,
        minutes=5,
        features=("b", "a"),
    )
    row = UserActivityQueries.record(
        user.id,
        day=DAY,
        events=3,
        sessions=0,
        minutes=7,
        features=["c", "a", "É", "Z"],
    )
    assert row["id"] == first["id"]
    assert (row["event_count"], row["session_count"], row["active_minutes"]) == (5, 1, 12)
    # Code-point order on both backends, whatever the database collation (COLLATE "C").
    assert row["features_used"] == ["Z", "a", "b", "c", "É"]
    assert row["updated_at"] >= first["updated_at"]
    assert row["created_at"] == first["created_at"]
    unchanged = UserActivityQueries.record(user.id, day=DAY, events=0)
    assert unchanged["features_used"] == row["features_used"]
    assert unchanged["event_count"] == 5
    assert rows_of(user.id) == 1


def test_days_and_users_are_separate_rows() -> None:
    user, other = make_user(), make_user()
    UserActivityQueries.record(user.id, day=DAY, events=4)
    UserActivityQueries.record(user.id, day=DAY + dt.timedelta(days=1), events=1)
    theirs = UserActivityQueries.record(other.id, day=DAY, events=9)
    assert theirs["event_count"] == 9
    assert rows_of(user.id) == 2 and rows_of(other.id) == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"events": -1}, "events"),
        ({"events": 1.5}, "events"),
        ({"events": True}, "events"),
        ({"events": "3"}, "events"),
        ({"events": INT4_MAX + 1}, "events"),
        ({"sessions": -2}, "sessions"),
        ({"sessions": None}, "sessions"),
        ({"minutes": -5}, "minutes"),
        ({"day": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)}, "day"),
        ({"day": "not a date"}, "day"),
        ({"features": "search"}, "features"),
        ({"features": [1]}, "features"),
        ({"features": [""]}, "features"),
        ({"features": ["nul\x00"]}, "features"),
        ({"features": ["x" * 201]}, "features"),
        ({"features": None}, "features"),
    ],
    ids=repr,
)
def test_record_rejects_bad_arguments_and_writes_nothing(kwargs, field) -> None:
    user = make_user()
    with pytest.raises(ValidationError) as info:
        UserActivityQueries.record(user.id, **kwargs)
    assert field in info.value.messages
    assert rows_of(user.id) == 0


def test_record_checks_the_user() -> None:
    with pytest.raises(ValidationError) as info:
        UserActivityQueries.record("")
    assert "user_id" in info.value.messages
    with pytest.raises(NotFoundError):
        UserActivityQueries.record(new_id(), day=DAY)
    assert UserActivityDaily.select().count() == 0


def test_a_total_beyond_int4_is_refused_on_both_backends() -> None:
    user = make_user()
    UserActivityQueries.record(user.id, day=DAY, events=INT4_MAX - 1, minutes=10)
    with pytest.raises(ValidationError) as info:
        UserActivityQueries.record(user.id, day=DAY, events=2, minutes=1)
    assert set(info.value.messages) == {"events"}
    row = UserActivityQueries.list_range(user.id, start=DAY, end=DAY)[0]
    assert (row["event_count"], row["active_minutes"]) == (INT4_MAX - 1, 10)
    assert UserActivityQueries.record(user.id, day=DAY, events=1)["event_count"] == INT4_MAX


def test_list_range_is_inclusive_ordered_and_scoped() -> None:
    user, other = make_user(), make_user()
    days = [DAY + dt.timedelta(days=n) for n in (3, 0, 1, 5, -1)]
    for n, day in enumerate(days):
        UserActivityQueries.record(user.id, day=day, events=n + 1)
    UserActivityQueries.record(other.id, day=DAY, events=100)
    rows = UserActivityQueries.list_range(user.id, start=DAY, end=DAY + dt.timedelta(days=3))
    assert [r["date"] for r in rows] == ["2024-02-29", "2024-03-01", "2024-03-03"]
    assert [r["event_count"] for r in rows] == [2, 3, 1]
    assert {r["user_id"] for r in rows} == {user.id}
    assert UserActivityQueries.list_range(user.id, start=dt.date(2000, 1, 1), end=dt.date(2000, 1, 2)) == []


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (dt.datetime(2024, 1, 1, tzinfo=dt.UTC), DAY, "start"),
        (DAY, "tomorrow", "end"),
        (None, DAY, "start"),
        (DAY, DAY - dt.timedelta(days=1), "end"),
    ],
)
def test_list_range_rejects_bad_bounds(start, end, field) -> None:
    with pytest.raises(ValidationError) as info:
        UserActivityQueries.list_range(make_user().id, start=start, end=end)
    assert field in info.value.messages


def test_list_range_costs_one_query(query_counter) -> None:
    user = make_user()
    for n in range(30):
        UserActivityQueries.record(user.id, day=DAY + dt.timedelta(days=n))
    query_counter.statements.clear()
    assert len(UserActivityQueries.list_range(user.id, start=DAY, end=DAY + dt.timedelta(days=40))) == 30
    assert query_counter.count == 1
