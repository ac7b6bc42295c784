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
from conftest import postgres_only
from factories import make_user

from datalayer import JwksQueries, UserQueries, VerificationQueries, db
from datalayer.models import Jwks, User

pytestmark = [postgres_only, pytest.mark.usefixtures("fresh_db")]

T0 = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)


def race(
    threads: int,
    rounds: int,
    action: Callable[[int], Any],
    after_round: Callable[[int], None] | None = None,
) -> list[list[Any]]:
    """Run ``action(round)`` in every thread at once, round after round; return the results.

    ``after_round(round)`` runs in one thread while the others wait, between rounds.
    """
    barrier = threading.Barrier(threads)
    results: list[list[Any]] = [[None] * threads for _ in range(rounds)]
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            for r in range(rounds):
                barrier.wait()
                results[r][index] = action(r)
                if after_round is not None:
                    barrier.wait()
                    if index == 0:
                        after_round(r)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            barrier.abort()
        finally:
            db.close()

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in pool), "a thread hung"
    real = [e for e in errors if not isinstance(e, threading.BrokenBarrierError)]
    if real or errors:
        raise (real or errors)[0]
    return results


def test_concurrent_consume_succeeds_exactly_once() -> None:
    rounds, threads = 40, 8
    for r in range(rounds):
        VerificationQueries.create(f"otp:{r}", "secret", T0 + dt.timedelta(hours=1))
    db.close()
    results = race(threads, rounds, lambda r: VerificationQueries.consume(f"otp:{r}", "secret", T0))
    wins = [row.count(True) for row in results]
    assert wins == [1] * rounds, wins
    assert all(v in (True, False) for row in results for v in row)


def test_concurrent_touch_writes_once_a_minute() -> None:
    rounds, threads = 30, 8
    user_id = make_user().id
    db.close()

    def touch(r: int) -> bool:
        return UserQueries.touch_last_active(user_id, T0 + dt.timedelta(seconds=61 * r))

    results = race(threads, rounds, touch)
    wins = [row.count(True) for row in results]
    assert wins == [1] * rounds, wins
    user = User.get_by_id(user_id)
    assert user.first_seen_at == T0
    assert user.last_active_at == T0 + dt.timedelta(seconds=61 * (rounds - 1))


def test_concurrent_rotations_leave_one_key_without_expiry() -> None:
    rounds, threads = 12, 4
    JwksQueries.create("pub-0", "priv-0")
    db.close()
    open_ended: list[int] = []

    def check(r: int) -> None:
        open_ended.append(Jwks.select().where(Jwks.expires_at.is_null()).count())

    race(threads, rounds, lambda r: JwksQueries.rotate(f"pub-{r}", "priv", 600), check)
    assert open_ended == [1] * rounds, open_ended
    assert Jwks.select().count() == 1 + rounds * threads
