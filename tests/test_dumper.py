"""The generated row functions of the compiled dumpers, against marshmallow's dump."""

from __future__ import annotations

import datetime as dt

import pytest
from factories import make_user
from hypothesis import given, settings
from hypothesis import strategies as st

from datalayer import db
from datalayer.connection.database import is_sqlite
from datalayer.models import Todo, UserActivityDaily
from datalayer.models.base import TimestampTZField
from datalayer.schemas.dumper import _iso_utc_text
from datalayer.schemas.features import todo_dumper, user_activity_daily_dumper

aware = st.datetimes(
    min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1),
    timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-7, minutes=-30)),
                               dt.timezone(dt.timedelta(hours=14))]),
)


@settings(max_examples=200, deadline=None)
@given(aware)
def test_sqlite_text_slicing_equals_isoformat_in_utc(value: dt.datetime) -> None:
    field = TimestampTZField()
    field._as_text = True  # as bound to SQLite
    stored = field.db_value(value)
    assert _iso_utc_text(stored) == value.astimezone(dt.UTC).isoformat()


def test_other_texts_fall_back_to_parsing() -> None:
    assert _iso_utc_text("2026-01-02 03:04:05+00:00") == "2026-01-02T03:04:05+00:00"
    assert _iso_utc_text("2026-01-02 03:04:05") == "2026-01-02T03:04:05+00:00"  # CURRENT_TIMESTAMP
    assert _iso_utc_text("2026-01-02 03:04:05.000000+00:00") == "2026-01-02T03:04:05+00:00"


@pytest.mark.usefixtures("txn")
def test_driver_rows_dump_like_converted_rows_and_like_marshmallow() -> None:
    user = make_user()
    Todo.create(user=user, title="a", completed=True,
                due_date=dt.datetime(2030, 5, 6, 7, 8, 9, tzinfo=dt.UTC))
    Todo.create(user=user, title="b", due_date=dt.datetime(2030, 5, 6, 7, 8, 9, 123,
                                                           tzinfo=dt.timezone(dt.timedelta(hours=2))))
    UserActivityDaily.create(user=user, date=dt.date(2030, 1, 2), features_used=["x", "y"])
    for dumper, model in ((todo_dumper, Todo), (user_activity_daily_dumper, UserActivityDaily)):
        query = dumper.select().order_by(model.id)
        converted = dumper.rows(query.tuples())
        sql, params = query.sql()
        raw = dumper.raw_rows(db.execute_sql(sql, params).fetchall(), sqlite=is_sqlite())
        assert raw == converted
        expected = [dumper.schema.dump(dict(zip(dumper.columns, values, strict=True)))
                    for values in query.tuples()]
        assert converted == expected
