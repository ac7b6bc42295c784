"""Races on the waitlist and the activity rollups: real threads, one connection each.

PostgreSQL only: SQLite serializes writers (BEGIN IMMEDIATE), so a missing guard
could not show there.
"""

from __future__ import annotations

import datetime as dt

import pytest
from factories import make_user
from helpers import postgres_only, race

from datalayer import UserActivityQueries, WaitlistQueries
from datalayer.models import UserActivityDaily, Waitlist

pytestmark = [postgres_only, pytest.mark.usefixtures("fresh_db")]

THREADS = 8


def casings(address: str) -> list[str]:
    """Return THREADS spellings of one address in different letter cases."""
    out = []
    for n in range(THREADS):
        chars = [c.upper() if (n >> (i % 3)) & 1 else c for i, c in enumerate(address)]
        out.append(("  " if n % 2 else "") + "".join(chars))
    return out


def test_concurrent_joins_of_one_address_give_one_row() -> None:
    for round_ in range(20):
        address = f"racer{round_}@example.com"
        spellings = casings(address)
        results = race(lambda i, s=spellings: WaitlistQueries.join(s[i]))
        assert len({dto["id"] for dto, _ in results}) == 1, results
        assert sum(created for _, created in results) == 1, results
        assert all(dto["email"] == address for dto, _ in results)
        assert Waitlist.select().where(Waitlist.email == address).count() == 1
    assert WaitlistQueries.count() == 20


def test_concurrent_records_lose_no_increment_and_merge_features() -> None:
    user = make_user()
    day = dt.date(2024, 6, 1)
    calls = 50

    def worker(i: int) -> None:
        for n in range(calls):
            UserActivityQueries.record(
                user.id,
                day=day,
                events=1,
                sessions=n % 2,
                minutes=2,
                features=[f"t{i}-{n:02d}", "shared"],
            )

    race(worker)
    (row,) = UserActivityQueries.list_range(user.id, start=day, end=day)
    assert row["event_count"] == THREADS * calls
    assert row["session_count"] == THREADS * (calls // 2)
    assert row["active_minutes"] == THREADS * calls * 2
    expected = {f"t{i}-{n:02d}" for i in range(THREADS) for n in range(calls)} | {"shared"}
    assert row["features_used"] == sorted(expected)
    assert UserActivityDaily.select().count() == 1
