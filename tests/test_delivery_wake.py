"""Workers wake on NOTIFY (``DeliveryQueries.wait_for_work``) and let go (``release``).

The waits run in threads of their own (their own connections); the writes that should,
or should not, wake them run on the test's connection once the waiter is seen blocked
in the server (its listening session idle after its one statement).
"""

from __future__ import annotations

import datetime as dt
import logging
import select
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest
from factories import make_user
from helpers import IS_PG, direct_url, postgres_only

from datalayer import NotificationQueries, PreferenceQueries, db, init_db
from datalayer.errors import ValidationError
from datalayer.models import NotificationDelivery
from datalayer.queries import DeliveryQueries

D = NotificationDelivery
HANG = 30.0  # seconds: far beyond any wake-up, so only a missing one reaches it


@pytest.fixture
def direct(fresh_db: str) -> Iterator[str]:
    """The test's own database on a direct connection (LISTEN needs one)."""
    url = direct_url(fresh_db)
    init_db(url)
    DeliveryQueries.resume_waiting()
    yield url
    DeliveryQueries.resume_waiting()


class Waiter(threading.Thread):
    """``wait_for_work`` in a thread: its result and how long it took."""

    def __init__(self, timeout: float, **options: Any) -> None:
        super().__init__(daemon=True)
        self.timeout, self.options = timeout, options
        self.result: bool | None = None
        self.seconds = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        started = time.monotonic()
        try:
            self.result = DeliveryQueries.wait_for_work(timeout=self.timeout, **self.options)
        except BaseException as exc:  # reported in the test's thread
            self.error = exc
        finally:
            self.seconds = time.monotonic() - started
            db.close()

    def finish(self) -> bool | None:
        self.join(HANG * 2)
        assert not self.is_alive(), "wait_for_work hung"
        if self.error is not None:
            raise self.error
        return self.result


def _listening(url: str) -> bool:
    """Whether a session of this database is LISTENing and idle (blocked in its wait)."""
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND state = 'idle' AND query ILIKE 'SELECT MIN%%'"
            )
            return bool(cur.fetchone()[0])
    finally:
        conn.close()


def start_waiting(url: str, timeout: float, **options: Any) -> Waiter:
    waiter = Waiter(timeout, **options)
    waiter.start()
    deadline = time.monotonic() + HANG
    while not _listening(url):
        assert time.monotonic() < deadline and waiter.is_alive(), "the waiter never blocked"
        time.sleep(0.02)
    return waiter


def user_with_email() -> str:
    user = make_user()
    PreferenceQueries.upsert(user.id, {"email_enabled": True, "push_enabled": False})
    return user.id


def in_app_user() -> str:
    """A user whose notifications make one delivery each (in-app)."""
    user = make_user()
    PreferenceQueries.upsert(user.id, {"email_enabled": False, "push_enabled": False})
    return user.id


@postgres_only
def test_a_committed_notification_wakes_an_idle_waiter(direct: str) -> None:
    user_id = user_with_email()
    waiter = start_waiting(direct, HANG)
    NotificationQueries.notify(user_id, type="direct_message", title="hello", body="body")
    assert waiter.finish() is True
    assert waiter.seconds < HANG  # woken, not timed out
    assert len(DeliveryQueries.claim("w1")) == 2  # in_app and email, both due


@postgres_only
def test_a_rolled_back_notification_wakes_nobody(direct: str) -> None:
    user_id = user_with_email()
    waiter = start_waiting(direct, 1.5)
    with pytest.raises(RuntimeError), db.atomic():
        NotificationQueries.notify(user_id, type="direct_message", title="never", body="body")
        raise RuntimeError("rolled back")
    assert waiter.finish() is False
    assert waiter.seconds >= 1.5
    assert DeliveryQueries.claim("w1") == []


@postgres_only
def test_one_transaction_of_many_notifications_sends_one_notify(direct: str) -> None:
    user_id = user_with_email()
    conn = psycopg2.connect(direct)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute('LISTEN "datalayer_deliveries"')
        with db.atomic():
            for i in range(20):
                NotificationQueries.notify(user_id, type="direct_message", title=f"n{i}", body="body")
        received = []
        # Collect until a second passes with nothing more (a second NOTIFY would be in it).
        while select.select([conn], [], [], 1.0)[0]:
            conn.poll()
            received += conn.notifies
            conn.notifies.clear()
        assert [n.channel for n in received] == ["datalayer_deliveries"]
    finally:
        conn.close()


@postgres_only
def test_a_retry_due_later_ends_the_wait_when_it_is_due(direct: str) -> None:
    user_id = in_app_user()
    NotificationQueries.notify(user_id, type="direct_message", title="retry", body="body")
    (delivery,) = DeliveryQueries.claim("w1")
    DeliveryQueries.mark_failed(delivery["id"], "w1", error="provider down", retry_base_seconds=1.0, attempts=1)
    due = D.get_by_id(delivery["id"]).next_attempt_at
    assert DeliveryQueries.claim("w1") == []  # not due yet
    waiter = start_waiting(direct, HANG)
    assert waiter.finish() is True
    assert dt.datetime.now(dt.UTC) >= due  # not before it was due
    assert [d["id"] for d in DeliveryQueries.claim("w1")] == [delivery["id"]]


def _listener_pid(url: str) -> int:
    deadline = time.monotonic() + HANG
    while True:
        conn = psycopg2.connect(url)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND state = 'idle' AND query ILIKE 'SELECT MIN%%'"
                )
                row = cur.fetchone()
        finally:
            conn.close()
        if row:
            return int(row[0])
        assert time.monotonic() < deadline, "the waiter never blocked"
        time.sleep(0.02)


@postgres_only
def test_a_wait_whose_session_is_cut_ends_without_error_and_the_next_listens_again(
    direct: str,
) -> None:
    """A failover cuts the listening session: the wait ends (work may be due), no error."""
    user_id = in_app_user()
    done: list[Any] = []

    def cut_then_notify() -> None:
        try:
            first = _listener_pid(direct)
            killer = psycopg2.connect(direct)
            killer.autocommit = True
            with killer.cursor() as cur:
                cur.execute("SELECT pg_terminate_backend(%s)", (first,))
            killer.close()
            second = _listener_pid(direct)
            NotificationQueries.notify(user_id, type="direct_message", title="again", body="b")
            done.append((first, second))
        except BaseException as exc:  # reported in the test's thread
            done.append(exc)
        finally:
            db.close()

    helper = threading.Thread(target=cut_then_notify, daemon=True)
    helper.start()
    started = time.monotonic()
    assert DeliveryQueries.wait_for_work(timeout=HANG) is True  # cut: no exception
    assert DeliveryQueries.wait_for_work(timeout=HANG) is True  # listening again: woken
    assert time.monotonic() - started < 2 * HANG
    helper.join(HANG)
    assert len(done) == 1 and not isinstance(done[0], BaseException), done
    first, second = done[0]
    assert first != second  # a new session listened
    assert len(DeliveryQueries.claim("w1")) == 1


@postgres_only
def test_stop_waiting_ends_a_wait_at_once_and_every_later_one(direct: str) -> None:
    waiter = start_waiting(direct, HANG)
    DeliveryQueries.stop_waiting()
    assert waiter.finish() is False
    assert waiter.seconds < HANG
    started = time.monotonic()
    assert DeliveryQueries.wait_for_work(timeout=HANG) is False
    assert time.monotonic() - started < HANG
    DeliveryQueries.resume_waiting()
    assert DeliveryQueries.wait_for_work(timeout=0.2) is False


def test_without_listen_it_polls_and_says_why_once(fresh_db: str, caplog) -> None:
    """Behind a transaction-mode pooler (and on SQLite) there is no session to LISTEN on."""
    init_db(direct_url(fresh_db), **({"pooler": "transaction"} if IS_PG else {}))
    caplog.set_level(logging.INFO, logger="datalayer.queries.notifications")
    assert DeliveryQueries.wait_for_work(timeout=0.3, poll_seconds=0.1) is False
    assert DeliveryQueries.wait_for_work(timeout=0.3, poll_seconds=0.1) is False
    said = [r.getMessage() for r in caplog.records if "polls instead" in r.getMessage()]
    assert len(said) <= 1  # once per process (an earlier test may have said it)
    NotificationQueries.notify(in_app_user(), type="direct_message", title="polled", body="body")
    assert DeliveryQueries.wait_for_work(timeout=HANG, poll_seconds=0.1) is True


@pytest.mark.parametrize("bad", [-1, float("nan"), "5", None])
def test_a_bad_timeout_is_refused_by_name(txn: None, bad: Any) -> None:
    with pytest.raises(ValidationError, match="timeout"):
        DeliveryQueries.wait_for_work(timeout=bad)


# --- release --------------------------------------------------------------------------------


def _claimed(worker_id: str, count: int) -> list[Any]:
    user_id = in_app_user()
    for i in range(count):
        NotificationQueries.notify(user_id, type="direct_message", title=f"r{i}", body="body")
    return DeliveryQueries.claim(worker_id, limit=count)


@pytest.mark.usefixtures("txn")
def test_release_hands_back_the_worker_s_unfinished_deliveries_only() -> None:
    batch = _claimed("w1", 4)
    sent, stolen, *rest = batch
    assert DeliveryQueries.mark_sent(sent["id"], "w1", attempts=sent["attempts"])
    D.update(locked_by="w2").where(D.id == stolen["id"]).execute()  # another worker's now
    other = _claimed("w3", 1)

    assert DeliveryQueries.release("w1") == len(rest)

    rows = {d.id: d for d in D.select()}
    assert rows[sent["id"]].status == "sent"
    assert (rows[stolen["id"]].status, rows[stolen["id"]].locked_by) == ("processing", "w2")
    assert (rows[other[0]["id"]].status, rows[other[0]["id"]].locked_by) == ("processing", "w3")
    for delivery in rest:
        row = rows[delivery["id"]]
        assert (row.status, row.locked_by, row.locked_at) == ("pending", None, None)
        assert row.attempts == delivery["attempts"]  # the claim still counts
    # due at once: another worker claims them without waiting for the lease to run out
    assert sorted(d["id"] for d in DeliveryQueries.claim("w4")) == sorted(d["id"] for d in rest)
    assert DeliveryQueries.release("w1") == 0
    # the first holder's late marks change nothing
    assert not DeliveryQueries.mark_sent(rest[0]["id"], "w1", attempts=rest[0]["attempts"])


@pytest.mark.usefixtures("txn")
def test_release_refuses_a_bad_worker_id_by_name() -> None:
    with pytest.raises(ValidationError, match="worker_id"):
        DeliveryQueries.release("")


@postgres_only
def test_release_wakes_a_waiting_worker(direct: str) -> None:
    _claimed("w1", 2)
    waiter = start_waiting(direct, HANG)
    assert DeliveryQueries.release("w1") == 2
    assert waiter.finish() is True
    assert waiter.seconds < HANG



@postgres_only
def test_a_sweep_that_changes_nothing_wakes_nobody(direct: str) -> None:
    """Every worker runs release_stale on a schedule: an empty one must not wake them all."""
    _claimed("w1", 1)
    conn = psycopg2.connect(direct)
    conn.autocommit = True

    def heard() -> list[str]:
        received = []
        while select.select([conn], [], [], 1.0)[0]:
            conn.poll()
            received += [n.channel for n in conn.notifies]
            conn.notifies.clear()
        return received

    try:
        with conn.cursor() as cur:
            cur.execute('LISTEN "datalayer_deliveries"')
        assert DeliveryQueries.release_stale() == 0
        assert DeliveryQueries.release("nobody") == 0
        assert heard() == []
        assert DeliveryQueries.release("w1") == 1
        assert heard() == ["datalayer_deliveries"]
    finally:
        conn.close()
