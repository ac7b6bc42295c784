"""SubscriptionEventQueries.ingest on both backends: outcomes, ordering, validation."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from factories import make_tenant, make_user

from datalayer import (
    NotFoundError,
    SubscriptionEventQueries,
    SubscriptionQueries,
    ValidationError,
    db,
)
from datalayer.models import Subscription, SubscriptionEvent

pytestmark = pytest.mark.usefixtures("txn")

T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
_seq = itertools.count(1)


def event(
    key: str,
    *,
    at: int = 0,
    event_id: str | None = None,
    provider: str = "polar",
    event_type: str = "subscription.updated",
    tenant_id: str | None = None,
    **state: Any,
) -> dict[str, Any]:
    """A provider-neutral event for the subscription named ``key``, ``at`` hours after T0."""
    key_column = (
        "polar_subscription_id" if provider == "polar" else ("revenuecat_original_transaction_id")
    )
    subscription = {key_column: key, "status": "active", "plan_id": "pro", **state}
    return {
        "provider": provider,
        "event_id": event_id or f"evt_{next(_seq)}",
        "event_type": event_type,
        "occurred_at": (T0 + dt.timedelta(hours=at)).isoformat(),
        "tenant_id": tenant_id,
        "payload": {"raw": True},
        "subscription": subscription,
    }


def sub_by_key(key: str) -> Subscription:
    return Subscription.get(Subscription.polar_subscription_id == key)


def recorded(event_id: str) -> SubscriptionEvent:
    return SubscriptionEvent.get(SubscriptionEvent.event_id == event_id)


def test_first_event_creates_the_subscription() -> None:
    buyer = make_user()
    tenant = make_tenant(owner=buyer)
    first = event(
        "sub_a",
        tenant_id=tenant.id,
        status="trialing",
        plan_name="Pro",
        trial_end=(T0 + dt.timedelta(days=14)).isoformat(),
        purchased_by_user_id=buyer.id,
        polar_customer_id="cus_1",
    )
    assert SubscriptionEventQueries.ingest(first) == "applied"
    sub = sub_by_key("sub_a")
    assert (sub.tenant_id, sub.status, sub.plan_id, sub.plan_name) == (
        tenant.id,
        "trialing",
        "pro",
        "Pro",
    )
    assert sub.provider == "polar" and sub.polar_customer_id == "cus_1"
    assert sub.purchased_by_user_id == buyer.id
    assert sub.trial_end == T0 + dt.timedelta(days=14) and sub.last_event_at == T0
    row = SubscriptionEventQueries.find_by_event_id("polar", first["event_id"])
    assert row is not None and row["outcome"] == "applied"
    assert row["subscription_id"] == sub.id and row["payload"] == {"raw": True}
    assert row["occurred_at"] == T0.isoformat() and row["event_type"] == "subscription.updated"
    assert SubscriptionEventQueries.find_by_event_id("polar", "nope") is None


def test_duplicate_delivery_is_ignored() -> None:
    tenant = make_tenant()
    first = event("sub_b", tenant_id=tenant.id, at=1)
    assert SubscriptionEventQueries.ingest(first) == "applied"
    again = {**first, "subscription": {**first["subscription"], "status": "canceled"}}
    assert SubscriptionEventQueries.ingest(again) == "duplicate_ignored"
    assert sub_by_key("sub_b").status == "active"
    assert (
        SubscriptionEvent.select().where(SubscriptionEvent.event_id == first["event_id"]).count()
        == 1
    )
    # The same event id from the other provider is another event.
    other = event("txn_b", provider="revenuecat", event_id=first["event_id"], tenant_id=tenant.id)
    assert SubscriptionEventQueries.ingest(other) == "applied"


def test_older_event_is_stale_and_changes_nothing() -> None:
    tenant = make_tenant()
    assert (
        SubscriptionEventQueries.ingest(
            event("sub_c", tenant_id=tenant.id, at=5, status="past_due")
        )
        == "applied"
    )
    late = event("sub_c", at=3, status="active", plan_id="basic")
    assert SubscriptionEventQueries.ingest(late) == "stale_ignored"
    sub = sub_by_key("sub_c")
    assert (sub.status, sub.plan_id, sub.last_event_at) == (
        "past_due",
        "pro",
        T0 + dt.timedelta(hours=5),
    )
    row = recorded(late["event_id"])
    assert row.outcome == "stale_ignored" and row.subscription_id == sub.id
    newer = event("sub_c", at=6, status="active", plan_id="team")
    assert SubscriptionEventQueries.ingest(newer) == "applied"
    assert (sub_by_key("sub_c").status, sub_by_key("sub_c").plan_id) == ("active", "team")


def test_same_time_events_are_decided_by_event_id_in_any_order() -> None:
    tenant = make_tenant()
    for key, order in (("sub_d1", ("evt_x_a", "evt_x_b")), ("sub_d2", ("evt_y_b", "evt_y_a"))):
        outcomes = [
            SubscriptionEventQueries.ingest(
                event(key, at=2, event_id=eid, tenant_id=tenant.id, plan_id="plan_" + eid[-1])
            )
            for eid in order
        ]
        assert sub_by_key(key).plan_id == "plan_b"  # the greater event id wins
        assert sorted(outcomes) == [
            "applied",
            "applied" if order[0] < order[1] else "stale_ignored",
        ]


def test_an_event_carries_the_full_state() -> None:
    tenant = make_tenant()
    SubscriptionEventQueries.ingest(
        event(
            "sub_e",
            tenant_id=tenant.id,
            plan_name="Pro",
            cancel_at_period_end=True,
            current_period_end=(T0 + dt.timedelta(days=30)).isoformat(),
        )
    )
    SubscriptionEventQueries.ingest(event("sub_e", at=1))
    sub = sub_by_key("sub_e")
    assert (sub.plan_name, sub.cancel_at_period_end, sub.current_period_end) == (None, False, None)
    assert sub.tenant_id == tenant.id  # an event never moves a subscription


def test_unknown_types_are_recorded_and_ignored() -> None:
    tenant = make_tenant()
    unknown = event("sub_f", tenant_id=tenant.id, event_type="checkout.created")
    assert SubscriptionEventQueries.ingest(unknown) == "ignored_type"
    assert not Subscription.select().where(Subscription.polar_subscription_id == "sub_f").exists()
    assert recorded(unknown["event_id"]).outcome == "ignored_type"
    SubscriptionEventQueries.ingest(event("sub_f", tenant_id=tenant.id, at=1))
    newer_unknown = event("sub_f", at=9, event_type="order.paid", status="canceled")
    assert SubscriptionEventQueries.ingest(newer_unknown) == "ignored_type"
    sub = sub_by_key("sub_f")
    assert sub.status == "active" and sub.last_event_at == T0 + dt.timedelta(hours=1)
    assert recorded(newer_unknown["event_id"]).subscription_id == sub.id
    # An ignored type needs no state beyond the provider id.
    bare = event("sub_f", at=10, event_type="benefit.granted")
    del bare["subscription"]["status"], bare["subscription"]["plan_id"]
    assert SubscriptionEventQueries.ingest(bare) == "ignored_type"


def test_revenuecat_types_are_mapped() -> None:
    tenant = make_tenant()
    first = event(
        "rc_1",
        provider="revenuecat",
        event_type="INITIAL_PURCHASE",
        tenant_id=tenant.id,
        revenuecat_app_user_id="app_user_1",
    )
    assert SubscriptionEventQueries.ingest(first) == "applied"
    sub = Subscription.get(Subscription.revenuecat_original_transaction_id == "rc_1")
    assert sub.provider == "revenuecat" and sub.revenuecat_app_user_id == "app_user_1"
    billing = event(
        "rc_1", provider="revenuecat", event_type="BILLING_ISSUE", at=1, status="past_due"
    )
    assert SubscriptionEventQueries.ingest(billing) == "applied"
    transfer = event("rc_1", provider="revenuecat", event_type="TRANSFER", at=2)
    assert SubscriptionEventQueries.ingest(transfer) == "ignored_type"
    assert Subscription.get_by_id(sub.id).status == "past_due"


def test_not_linked_without_a_known_tenant() -> None:
    no_tenant = event("sub_g")
    assert SubscriptionEventQueries.ingest(no_tenant) == "not_linked"
    unknown_tenant = event("sub_g", tenant_id="no-such-tenant")
    assert SubscriptionEventQueries.ingest(unknown_tenant) == "not_linked"
    for e in (no_tenant, unknown_tenant):
        row = recorded(e["event_id"])
        assert row.outcome == "not_linked" and row.subscription_id is None
    assert not Subscription.select().where(Subscription.polar_subscription_id == "sub_g").exists()
    tenant = make_tenant()
    assert SubscriptionEventQueries.ingest(event("sub_g", tenant_id=tenant.id)) == "applied"
    # Once linked, later events need no tenant id.
    assert SubscriptionEventQueries.ingest(event("sub_g", at=1, status="canceled")) == "applied"
    assert sub_by_key("sub_g").status == "canceled"


def _event_count() -> int:
    return SubscriptionEvent.select().count()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda e: e.update(provider="stripe"), "provider"),
        (lambda e: e.update(occurred_at="2024-05-01T12:00:00"), "occurred_at"),
        (lambda e: e.update(occurred_at=dt.datetime(2024, 5, 1)), "occurred_at"),
        (lambda e: e.update(event_id=""), "event_id"),
        (lambda e: e.update(event_id="a\x00b"), "event_id"),
        (lambda e: e.update(payload={"bad": float("nan")}), "payload"),
        (lambda e: e.update(extra=1), "extra"),
        (lambda e: e.pop("subscription"), "subscription"),
        (lambda e: e["subscription"].pop("polar_subscription_id"), "subscription"),
        (lambda e: e["subscription"].pop("status"), "subscription"),
        (lambda e: e["subscription"].update(status="gone"), "subscription"),
        (lambda e: e["subscription"].update(cancel_at_period_end="yes"), "subscription"),
        (lambda e: e["subscription"].update(id="forged"), "subscription"),
        (lambda e: e["subscription"].update(tenant_id="forged"), "subscription"),
    ],
)
def test_invalid_events_are_refused_and_write_nothing(change, field) -> None:
    tenant = make_tenant()
    bad = event("sub_h", tenant_id=tenant.id)
    change(bad)
    before = _event_count()
    with pytest.raises(ValidationError) as info:
        SubscriptionEventQueries.ingest(bad)
    assert field in info.value.messages
    assert _event_count() == before
    assert not Subscription.select().where(Subscription.polar_subscription_id == "sub_h").exists()


def test_not_a_mapping_is_refused() -> None:
    with pytest.raises(ValidationError):
        SubscriptionEventQueries.ingest(["not", "a", "mapping"])  # type: ignore[arg-type]


def test_unknown_purchaser_rolls_back_the_whole_event() -> None:
    tenant = make_tenant()
    bad = event("sub_i", tenant_id=tenant.id, purchased_by_user_id="no-such-user")
    before = _event_count()
    with pytest.raises(NotFoundError):
        SubscriptionEventQueries.ingest(bad)
    assert _event_count() == before  # not even recorded: the provider's retry will apply it


def test_ingest_joins_the_callers_transaction() -> None:
    tenant = make_tenant()
    e = event("sub_j", tenant_id=tenant.id)
    with db.atomic() as outer:
        assert SubscriptionEventQueries.ingest(e) == "applied"
        outer.rollback()
    assert SubscriptionEventQueries.find_by_event_id("polar", e["event_id"]) is None
    assert SubscriptionQueries.current_for_tenant(tenant.id) is None
    assert SubscriptionEventQueries.ingest(e) == "applied"


def test_ingest_cost_is_constant(query_counter) -> None:
    tenant = make_tenant()
    SubscriptionEventQueries.ingest(event("sub_k", tenant_id=tenant.id))
    query_counter.statements.clear()
    SubscriptionEventQueries.ingest(event("sub_k", at=1))
    update_cost = query_counter.count
    for hour in range(2, 12):
        SubscriptionEventQueries.ingest(event("sub_k", at=hour))
    query_counter.statements.clear()
    SubscriptionEventQueries.ingest(event("sub_k", at=20))
    assert query_counter.count == update_cost
