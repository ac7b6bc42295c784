"""DeliveryQueries on both backends: claim, the fenced marks, backoff, expired leases."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from factories import make_user
from helpers import IS_PG

from datalayer import DeliveryQueries, NotificationQueries, TargetQueries, ValidationError
from datalayer.models import NotificationDelivery
from datalayer.models.base import utcnow

pytestmark = pytest.mark.usefixtures("txn")

D = NotificationDelivery


def queue(count: int = 1, **fields: Any) -> list[str]:
    """Create ``count`` notifications with an in_app and an email delivery each; return ids."""
    user = make_user()
    ids = []
    for i in range(count):
        note = NotificationQueries.notify(user.id, type="direct_message", title=f"n{i}", body="body")
        ids += [d["id"] for d in note["deliveries"]]
    if fields:
        D.update(fields).where(D.id.in_(ids)).execute()
    return ids


def row(delivery_id: str) -> dict[str, Any]:
    found = DeliveryQueries.find_by_id(delivery_id)
    assert found is not None
    return dict(found)


def snapshot() -> list[tuple[Any, ...]]:
    return list(D.select().order_by(D.id).tuples())


def test_claim_leases_due_deliveries_with_what_the_worker_needs() -> None:
    ids = queue(2)
    recipient = D.get_by_id(ids[0]).notification.recipient_user
    TargetQueries.upsert(recipient.id, {"expo_push_token": "ExponentPushToken[x]"})
    now = utcnow()
    claimed = DeliveryQueries.claim("worker-1", lease_seconds=60, now=now)
    assert sorted(d["id"] for d in claimed) == sorted(ids)
    for d in claimed:
        assert d["status"] == "processing" and d["attempts"] == 1
        assert d["locked_by"] == "worker-1" and d["locked_at"] == now.isoformat()
        assert d["next_attempt_at"] == (now + dt.timedelta(seconds=60)).isoformat()  # lease end
        assert d["notification"]["id"] == d["notification_id"]
        assert d["notification"]["title"] in ("n0", "n1") and d["notification"]["body"] == "body"
        assert d["recipient"] == {
            "user_id": recipient.id,
            "email": recipient.email,
            "name": recipient.name,
            "novu_subscriber_id": None,
            "expo_push_token": "ExponentPushToken[x]",
        }
        assert row(d["id"]) == {
            k: v for k, v in d.items() if k not in ("notification", "recipient")
        }
    assert DeliveryQueries.claim("worker-2") == []  # nothing left to claim


def test_claim_takes_the_most_overdue_first_and_respects_limit_and_channels() -> None:
    now = utcnow()
    ids = queue(3)
    for n, delivery_id in enumerate(ids):
        D.update(next_attempt_at=now - dt.timedelta(minutes=n)).where(D.id == delivery_id).execute()
    first = DeliveryQueries.claim("w", limit=2, now=now)
    assert len(first) == 2  # exactly ``limit``, also when PostgreSQL plans a semi-join
    assert {d["id"] for d in first} == set(ids[-2:])  # the two most overdue
    emails = DeliveryQueries.claim("w", channels=["email"], now=now)
    assert {d["channel"] for d in emails} == {"email"} and len(emails) == 2
    assert {d["id"] for d in DeliveryQueries.claim("w", channels="in_app", now=now)} == set(ids) - {
        d["id"] for d in first + emails
    }


def test_claim_skips_future_and_non_pending_deliveries() -> None:
    now = utcnow()
    later = queue(1, next_attempt_at=now + dt.timedelta(seconds=30))
    queue(1, status="sent")
    queue(1, status="failed")
    assert DeliveryQueries.claim("w", now=now) == []
    claimed = DeliveryQueries.claim("w", now=now + dt.timedelta(seconds=30))
    assert sorted(d["id"] for d in claimed) == sorted(later)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"worker_id": ""}, "worker_id"),
        ({"worker_id": None}, "worker_id"),
        ({"limit": 0}, "limit"),
        ({"limit": True}, "limit"),
        ({"channels": ["sms"]}, "channels"),
        ({"channels": []}, "channels"),
        ({"lease_seconds": 0}, "lease_seconds"),
        ({"lease_seconds": float("nan")}, "lease_seconds"),
        ({"now": dt.datetime(2024, 1, 1)}, "now"),
    ],
)
def test_claim_refuses_bad_arguments_and_changes_nothing(kwargs: dict[str, Any], field: str) -> None:
    queue(1)
    before = snapshot()
    with pytest.raises(ValidationError) as info:
        DeliveryQueries.claim(**{"worker_id": "w", **kwargs})
    assert field in info.value.messages
    assert snapshot() == before


def test_claim_costs_the_same_queries_whatever_the_batch(query_counter) -> None:
    queue(1)
    query_counter.statements.clear()
    assert len(DeliveryQueries.claim("w")) == 2
    small = query_counter.count
    if IS_PG:  # the claim and the sending details in one statement
        assert small == 1
    queue(30)
    query_counter.statements.clear()
    assert len(DeliveryQueries.claim("w", limit=60)) == 60
    assert query_counter.count == small


def test_mark_sent_only_while_the_lease_is_held() -> None:
    queue(1)
    [delivery] = DeliveryQueries.claim("w1", limit=1)
    before = snapshot()
    assert DeliveryQueries.mark_sent(delivery["id"], "w2", provider_message_id="m") is False  # not the holder
    assert DeliveryQueries.mark_sent(delivery["id"], "w1", provider_message_id="m", attempts=2) is False  # old claim
    assert DeliveryQueries.mark_sent("no-such-id", "w1", provider_message_id="m") is False
    assert snapshot() == before
    assert DeliveryQueries.mark_sent(delivery["id"], "w1", provider_message_id="msg-1", attempts=1) is True
    sent = row(delivery["id"])
    assert sent["status"] == "sent" and sent["provider_message_id"] == "msg-1"
    assert sent["sent_at"] is not None and sent["locked_by"] == "w1"  # who sent it
    assert DeliveryQueries.mark_sent(delivery["id"], "w1", provider_message_id="msg-2") is False  # already done
    assert row(delivery["id"])["provider_message_id"] == "msg-1"


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        (("", "w1"), {}, "delivery_id"),
        (("HELD", ""), {}, "worker_id"),
        (("HELD", "w1"), {"provider_message_id": "x" * 256}, "provider_message_id"),
        (("HELD", "w1"), {"attempts": 0}, "attempts"),
        (("HELD", "w1"), {"attempts": "1"}, "attempts"),
    ],
)
def test_mark_sent_refuses_bad_arguments_and_changes_nothing(
    args: tuple[str, str], kwargs: dict[str, Any], field: str
) -> None:
    queue(1)
    [delivery] = DeliveryQueries.claim("w1", limit=1)
    before = snapshot()
    with pytest.raises(ValidationError) as info:
        DeliveryQueries.mark_sent(*(delivery["id"] if a == "HELD" else a for a in args), **kwargs)
    assert field in info.value.messages
    assert snapshot() == before


def test_mark_skipped_records_the_reason() -> None:
    queue(1)
    first, second = DeliveryQueries.claim("w")
    with pytest.raises(ValidationError) as info:
        DeliveryQueries.mark_skipped(first["id"], "w", reason="")
    assert "reason" in info.value.messages
    assert row(first["id"])["status"] == "processing"
    assert DeliveryQueries.mark_skipped(first["id"], "other", reason="no token") is False
    assert DeliveryQueries.mark_skipped(first["id"], "w", reason="no token", attempts=1) is True
    skipped = row(first["id"])
    assert skipped["status"] == "skipped" and skipped["error"] == "no token"
    assert DeliveryQueries.mark_skipped(first["id"], "w", reason="again") is False
    assert DeliveryQueries.mark_skipped(second["id"], "w", reason="x" * 5000 + "\x00") is True
    assert row(second["id"])["error"] == "x" * 2000  # truncated, NUL never stored


def test_mark_failed_backs_off_exponentially_then_fails() -> None:
    target, other = queue(1)
    D.update(max_attempts=3).where(D.id == target).execute()
    D.update(status="sent").where(D.id == other).execute()  # only the target is queued
    now = utcnow()
    for attempt in (1, 2, 3):
        [claimed] = DeliveryQueries.claim("w", now=now)
        assert claimed["id"] == target and claimed["attempts"] == attempt
        assert (
            DeliveryQueries.mark_failed(
                target,
                "w",
                error=f"boom {attempt}",
                retry_base_seconds=10,
                attempts=attempt,
                now=now,
            )
            is True
        )
        failed = row(target)
        assert failed["error"] == f"boom {attempt}" and failed["attempts"] == attempt
        if attempt == 3:
            assert failed["status"] == "failed" and failed["locked_by"] == "w"
            break
        assert failed["status"] == "pending" and failed["locked_by"] is None
        delay = dt.datetime.fromisoformat(failed["next_attempt_at"]) - now
        base = 10 * 2 ** (attempt - 1)
        assert base * 0.5 <= delay.total_seconds() <= base * 1.5, delay
        assert DeliveryQueries.claim("w", now=now + delay - dt.timedelta(milliseconds=1)) == []
        now += delay
    assert DeliveryQueries.claim("w", now=now + dt.timedelta(days=1)) == []


def test_mark_failed_is_fenced_with_or_without_attempts() -> None:
    queue(1)
    first, second = DeliveryQueries.claim("w")
    before = snapshot()
    assert DeliveryQueries.mark_failed(first["id"], "other", error="boom") is False
    assert DeliveryQueries.mark_failed(first["id"], "w", error="boom", attempts=5) is False
    assert snapshot() == before
    assert DeliveryQueries.mark_failed(first["id"], "w", error="boom", retry_base_seconds=0) is True  # fence read in SQL
    assert row(first["id"])["status"] == "pending"
    assert DeliveryQueries.mark_failed(first["id"], "w", error="boom") is False  # no longer held


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"error": ""}, "error"),
        ({"error": None}, "error"),
        ({"retry_base_seconds": -1}, "retry_base_seconds"),
        ({"now": dt.datetime(2024, 1, 1)}, "now"),
    ],
)
def test_mark_failed_refuses_bad_arguments_and_changes_nothing(
    kwargs: dict[str, Any], field: str
) -> None:
    queue(1)
    held = DeliveryQueries.claim("w")[0]
    before = snapshot()
    with pytest.raises(ValidationError) as info:
        DeliveryQueries.mark_failed(**{"delivery_id": held["id"], "worker_id": "w", "error": "e", **kwargs})
    assert field in info.value.messages
    assert snapshot() == before
    assert row(held["id"])["status"] == "processing"


def test_release_stale_returns_expired_leases_and_fences_the_old_holder() -> None:
    ids = queue(2)
    now = utcnow()
    claimed = {d["id"]: d for d in DeliveryQueries.claim("old", lease_seconds=5, now=now)}
    assert set(claimed) == set(ids)
    short, long_, spent, _ = ids
    D.update(next_attempt_at=now + dt.timedelta(seconds=60)).where(D.id == long_).execute()
    D.update(max_attempts=1).where(D.id == spent).execute()
    assert DeliveryQueries.release_stale(now=now + dt.timedelta(seconds=4)) == 0
    assert DeliveryQueries.release_stale(now=now + dt.timedelta(seconds=5)) == 3
    released = row(short)
    assert released["status"] == "pending" and released["attempts"] == 1  # count kept
    assert released["locked_by"] is None and released["error"] == "lease expired"
    assert row(long_)["status"] == "processing"
    assert row(spent)["status"] == "failed"  # no attempt left to retry with
    # The expired lease is claimed again — by another worker, then by the old one itself.
    again = DeliveryQueries.claim(
        "new",
        channels=[claimed[short]["channel"]],
        now=now + dt.timedelta(seconds=5),
    )
    assert [d["attempts"] for d in again if d["id"] == short] == [2]
    assert DeliveryQueries.mark_sent(short, "old", provider_message_id="late", attempts=1) is False
    assert DeliveryQueries.mark_failed(short, "old", error="late", attempts=1) is False
    assert DeliveryQueries.release_stale(now=now + dt.timedelta(seconds=400)) >= 1
    DeliveryQueries.claim("old", now=now + dt.timedelta(seconds=400))
    assert row(short)["locked_by"] == "old" and row(short)["attempts"] == 3
    assert DeliveryQueries.mark_sent(short, "old", provider_message_id="late", attempts=1) is False  # stale claim
    assert DeliveryQueries.mark_sent(short, "old", provider_message_id="fresh", attempts=3) is True
    with pytest.raises(ValidationError):
        DeliveryQueries.release_stale(now=dt.datetime(2024, 1, 1))


def test_find_by_id() -> None:
    [delivery_id, _] = queue(1)
    assert row(delivery_id)["status"] == "pending"
    assert DeliveryQueries.find_by_id("no-such-id") is None
    with pytest.raises(ValidationError):
        DeliveryQueries.find_by_id("")
