"""Races in the auth domain, with real threads on a database of the test's own (PostgreSQL).

Each thread has its own connection (peewee connections are thread-local). Every round
releases all threads at once on a barrier so their statements overlap.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest
from factories import make_user
from helpers import postgres_only, race

from datalayer import JwksQueries, UserQueries, VerificationQueries, db
from datalayer.models import Jwks, User

pytestmark = [postgres_only, pytest.mark.usefixtures("fresh_db")]

T0 = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)


def race_rounds(
    threads: int,
    rounds: int,
    action: Callable[[int], Any],
    after_round: Callable[[int], None] | None = None,
) -> list[list[Any]]:
    """Race ``action(round)`` in every thread, round after round; return each round's results.

    The threads (and their connections) last all the rounds; a barrier starts each round.
    ``after_round(round)`` runs in one thread while the others wait, between rounds.
    """
    barrier = threading.Barrier(threads)
    results: list[list[Any]] = [[None] * threads for _ in range(rounds)]

    def worker(index: int) -> None:
        try:
            for r in range(rounds):
                barrier.wait(timeout=30)
                results[r][index] = action(r)
                if after_round is not None:
                    barrier.wait(timeout=30)
                    if index == 0:
                        after_round(r)
        except BaseException:
            barrier.abort()  # the others stop waiting; race() reports this error
            raise

    race(worker, threads)
    return results


def test_concurrent_consume_succeeds_exactly_once() -> None:
    rounds, threads = 40, 8
    for r in range(rounds):
        VerificationQueries.create(f"otp:{r}", "secret", expires_at=T0 + dt.timedelta(hours=1))
    db.close()
    results = race_rounds(threads, rounds, lambda r: VerificationQueries.consume(f"otp:{r}", "secret", now=T0))
    wins = [row.count(True) for row in results]
    assert wins == [1] * rounds, wins
    assert all(v in (True, False) for row in results for v in row)


def test_concurrent_touch_writes_once_a_minute() -> None:
    rounds, threads = 30, 8
    user_id = make_user().id
    db.close()

    def touch(r: int) -> bool:
        return UserQueries.touch_last_active(user_id, now=T0 + dt.timedelta(seconds=61 * r))

    results = race_rounds(threads, rounds, touch)
    wins = [row.count(True) for row in results]
    assert wins == [1] * rounds, wins
    user = User.get_by_id(user_id)
    assert user.first_seen_at == T0
    assert user.last_active_at == T0 + dt.timedelta(seconds=61 * (rounds - 1))


def test_concurrent_rotations_leave_one_key_without_expiry() -> None:
    rounds, threads = 12, 4
    JwksQueries.create(public_key="pub-0", private_key="priv-0")
    db.close()
    open_ended: list[int] = []

    def check(r: int) -> None:
        open_ended.append(Jwks.select().where(Jwks.expires_at.is_null()).count())

    race_rounds(threads, rounds, lambda r: JwksQueries.rotate(public_key=f"pub-{r}", private_key="priv", grace_seconds=600), check)
    assert open_ended == [1] * rounds, open_ended
    assert Jwks.select().count() == 1 + rounds * threads
