"""DeliveryQueries.mark_sent_many and the one-statement claim, on both backends."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from factories import make_user
from helpers import IS_PG

from datalayer import DeliveryQueries, NotificationQueries, ValidationError, db
from datalayer.models import NotificationDelivery
from datalayer.models.base import utcnow

D = NotificationDelivery


def queue(count: int) -> list[str]:
    """``count`` notifications with an in_app and an email delivery each; return the ids."""
    user = make_user()
    ids = []
    for i in range(count):
        ids += [
            d["id"]
            for d in NotificationQueries.notify(user.id, type="direct_message", title=f"n{i}", body="b")["deliveries"]
        ]
    return ids


def snapshot() -> list[tuple[Any, ...]]:
    return list(D.select().order_by(D.id).tuples())


def state(delivery_id: str) -> tuple[Any, ...]:
    return (
        D.select(D.status, D.locked_by, D.attempts, D.provider_message_id)
        .where(D.id == delivery_id)
        .tuples()
        .get()
    )


@pytest.mark.usefixtures("txn")
def test_mark_sent_many_marks_only_what_this_worker_and_claim_still_hold() -> None:
    queue(3)
    batch = DeliveryQueries.claim("w1", limit=6)
    assert len(batch) == 6
    lost = batch[0]  # its lease runs out and w2 claims it again
    past = utcnow() - dt.timedelta(seconds=1)
    D.update(next_attempt_at=past).where(D.id == lost["id"]).execute()
    assert DeliveryQueries.release_stale() == 1
    [retaken] = DeliveryQueries.claim("w2", limit=1)
    assert retaken["id"] == lost["id"] and retaken["attempts"] == 2
    taken_before = state(lost["id"])
    sent = [(d["id"], f"m-{d['id']}", d["attempts"]) for d in batch]
    sent[1] = (sent[1][0], sent[1][1], 7)  # a stale claim's attempts: fenced out
    sent.append(("no-such-id", "m", 1))
    assert DeliveryQueries.mark_sent_many("w1", sent) == 4
    assert state(lost["id"]) == taken_before  # the new holder's row is untouched
    assert state(batch[1]["id"]) == ("processing", "w1", 1, None)
    for d in batch[2:]:
        assert state(d["id"]) == ("sent", "w1", 1, f"m-{d['id']}")
    assert DeliveryQueries.mark_sent_many("w1", sent) == 0  # already sent: nothing again
    # Without attempts the fence is the worker's lease, as for mark_sent(attempts=None).
    assert DeliveryQueries.mark_sent_many("w2", [(lost["id"], None)]) == 1
    assert state(lost["id"]) == ("sent", "w2", 2, None)


# (worker_id, sent, the field named): "GOOD" is a held delivery's valid entry, "OTHER"
# the second claimed delivery's id.
MARK_SENT_MANY_REFUSALS = [
    ("", ["GOOD"], "worker_id"),
    ("w", "abc", "sent"),
    ("w", {"a": 1}, "sent"),
    ("w", None, "sent"),
    ("w", ["GOOD", ("OTHER",)], "sent"),
    ("w", ["GOOD", ("", "m")], "delivery_id"),
    ("w", ["GOOD", ("OTHER", "")], "provider_message_id"),
    ("w", ["GOOD", ("OTHER", "m", 0)], "attempts"),
    ("w", ["GOOD", ("OTHER", "m", True)], "attempts"),
    ("w", ["GOOD"] * 10_001, "sent"),
]


@pytest.mark.usefixtures("txn")
@pytest.mark.parametrize(("worker", "sent", "field"), MARK_SENT_MANY_REFUSALS)
def test_mark_sent_many_refuses_bad_input_and_changes_nothing(worker: str, sent: Any, field: str) -> None:
    queue(1)
    batch = DeliveryQueries.claim("w")
    good, other = (batch[0]["id"], "m", 1), batch[1]["id"]
    if isinstance(sent, list):
        sent = [good if e == "GOOD" else tuple(other if v == "OTHER" else v for v in e) for e in sent]
    before = snapshot()
    with pytest.raises(ValidationError) as info:
        DeliveryQueries.mark_sent_many(worker, sent)
    assert field in info.value.messages
    assert snapshot() == before


@pytest.mark.usefixtures("txn")
def test_mark_sent_many_of_nothing_marks_nothing() -> None:
    assert DeliveryQueries.mark_sent_many("w", []) == 0


@pytest.mark.usefixtures("fresh_db")
def test_batch_marks_cost_one_statement_and_no_transaction(
    query_counter: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue(30)
    begun: list[bool] = []
    original = type(db.obj).begin
    monkeypatch.setattr(
        type(db.obj),
        "begin",
        lambda self, *a, **k: (begun.append(True), original(self, *a, **k))[1],
    )
    query_counter.statements.clear()
    batch = DeliveryQueries.claim("w", limit=50)
    assert len(batch) == 50 and all(d["recipient"]["email"] for d in batch)
    claim_statements = query_counter.count
    assert DeliveryQueries.mark_sent_many("w", [(d["id"], "m", d["attempts"]) for d in batch]) == 50
    assert query_counter.count - claim_statements == 1  # one statement for 50 marks
    if IS_PG:  # the claim with its sending details: one statement, no BEGIN/COMMIT
        assert claim_statements == 1 and begun == []
    assert D.select().where(D.status == "sent").count() == 50


@pytest.mark.usefixtures("txn")
def test_mark_sent_and_claim_marks_the_last_batch_and_claims_the_next() -> None:
    queue(4)  # 8 deliveries
    first = DeliveryQueries.claim("w1", limit=3)
    lost = first[0]  # its lease ran out and w2 claimed it again (as release + claim do)
    D.update(locked_by="w2", attempts=2).where(D.id == lost["id"]).execute()
    sent = [(d["id"], f"m-{d['id']}", d["attempts"]) for d in first]
    marked, second = DeliveryQueries.mark_sent_and_claim("w1", sent, limit=3)
    assert marked == 2  # not the one w2 holds now
    assert len(second) == 3 and {d["id"] for d in second}.isdisjoint({d["id"] for d in first})
    assert all(d["locked_by"] == "w1" and d["recipient"]["email"] for d in second)
    assert state(lost["id"]) == ("processing", "w2", 2, None)
    for d in first[1:]:
        assert state(d["id"]) == ("sent", "w1", 1, f"m-{d['id']}")
    # Nothing left to claim: the marks still count.
    rest = DeliveryQueries.claim("w3", limit=50)
    marked, none = DeliveryQueries.mark_sent_and_claim(
        "w1",
        [(d["id"], None, d["attempts"]) for d in second],
    )
    assert (marked, none) == (3, []) and len(rest) == 2
    assert DeliveryQueries.mark_sent_and_claim("w1", []) == (0, [])
    with pytest.raises(ValidationError) as info:
        DeliveryQueries.mark_sent_and_claim("w1", [("", "m")])
    assert "delivery_id" in info.value.messages
