"""SubscriptionQueries on both backends: the access rules, the current subscription, lists."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from factories import make_tenant

from datalayer import SubscriptionQueries, ValidationError
from datalayer.models import Subscription, Tenant

pytestmark = pytest.mark.usefixtures("txn")

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
_seq = itertools.count(1)


def make_subscription(tenant: Tenant, **fields: Any) -> Subscription:
    fields.setdefault("plan_id", "pro")
    fields.setdefault("provider", "polar")
    fields.setdefault("polar_subscription_id", f"sub_{next(_seq)}")
    return Subscription.create(tenant=tenant, **fields)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"status": "active"}, True),
        ({"status": "active", "current_period_end": NOW - 30 * DAY}, True),
        ({"status": "trialing", "trial_end": NOW + DAY}, True),
        ({"status": "past_due", "current_period_end": NOW - DAY}, True),
        (
            {"status": "past_due", "current_period_end": NOW - 3 * DAY + dt.timedelta(seconds=1)},
            True,
        ),
        ({"status": "past_due", "current_period_end": NOW - 3 * DAY}, False),
        ({"status": "past_due", "current_period_end": None}, False),
        (
            {
                "status": "canceled",
                "cancel_at_period_end": True,
                "current_period_end": NOW + dt.timedelta(seconds=1),
            },
            True,
        ),
        ({"status": "canceled", "cancel_at_period_end": True, "current_period_end": NOW}, False),
        (
            {"status": "canceled", "cancel_at_period_end": False, "current_period_end": NOW + DAY},
            False,
        ),
        ({"status": "canceled", "cancel_at_period_end": True, "current_period_end": None}, False),
        ({"status": "expired", "current_period_end": NOW + DAY}, False),
        ({"status": "paused", "current_period_end": NOW + DAY}, False),
    ],
)
def test_has_access_rules(fields: dict[str, Any], expected: bool) -> None:
    tenant = make_tenant()
    make_subscription(tenant, **fields)
    assert SubscriptionQueries.has_access(tenant.id, now=NOW) is expected
    # The same instant in another zone decides the same way.
    assert (
        SubscriptionQueries.has_access(
            tenant.id,
            now=NOW.astimezone(dt.timezone(dt.timedelta(hours=-7))),
        )
        is expected
    )


def test_has_access_any_subscription_of_the_tenant_only() -> None:
    tenant, other = make_tenant(), make_tenant()
    assert SubscriptionQueries.has_access(tenant.id) is False
    make_subscription(tenant, status="expired")
    make_subscription(other, status="active")
    assert SubscriptionQueries.has_access(tenant.id) is False
    make_subscription(tenant, status="trialing")
    assert SubscriptionQueries.has_access(tenant.id) is True


def test_has_access_defaults_to_the_current_time() -> None:
    tenant = make_tenant()
    now = dt.datetime.now(dt.UTC)
    make_subscription(
        tenant,
        status="canceled",
        cancel_at_period_end=True,
        current_period_end=now + dt.timedelta(minutes=5),
    )
    assert SubscriptionQueries.has_access(tenant.id) is True
    assert SubscriptionQueries.has_access(tenant.id, now=now + dt.timedelta(minutes=6)) is False


def test_has_access_refuses_bad_arguments() -> None:
    tenant = make_tenant()
    with pytest.raises(ValidationError) as info:
        SubscriptionQueries.has_access(tenant.id, now=dt.datetime(2024, 1, 1))
    assert "now" in info.value.messages
    with pytest.raises(ValidationError) as info:
        SubscriptionQueries.has_access("")
    assert "tenant_id" in info.value.messages


def test_current_for_tenant_prefers_live_then_newest() -> None:
    tenant, other = make_tenant(), make_tenant()
    assert SubscriptionQueries.current_for_tenant(tenant.id) is None
    make_subscription(other, status="active")
    assert SubscriptionQueries.current_for_tenant(tenant.id) is None
    old_active = make_subscription(tenant, status="active", created_at=NOW - 60 * DAY)
    make_subscription(tenant, status="expired", created_at=NOW)
    make_subscription(tenant, status="canceled", created_at=NOW - DAY)
    current = SubscriptionQueries.current_for_tenant(tenant.id)
    assert current is not None and current["id"] == old_active.id
    newer = make_subscription(tenant, status="trialing", created_at=NOW - 2 * DAY)
    current = SubscriptionQueries.current_for_tenant(tenant.id)
    assert current is not None and current["id"] == newer.id
    assert (
        current["tenant_id"] == tenant.id and current["created_at"] == (NOW - 2 * DAY).isoformat()
    )


def test_current_for_tenant_falls_back_to_ended_ones() -> None:
    tenant = make_tenant()
    make_subscription(tenant, status="expired", created_at=NOW - DAY)
    newest = make_subscription(tenant, status="expired", created_at=NOW)
    current = SubscriptionQueries.current_for_tenant(tenant.id)
    assert current is not None and current["id"] == newest.id
    assert SubscriptionQueries.find_by_id(newest.id) == current
    assert SubscriptionQueries.find_by_id("missing") is None


def test_list_for_tenant_pages_newest_first_and_is_scoped() -> None:
    tenant, other = make_tenant(), make_tenant()
    created = [make_subscription(tenant, created_at=NOW + i * DAY) for i in range(5)]
    make_subscription(other)
    seen, cursor = [], None
    while True:
        page = SubscriptionQueries.list_for_tenant(tenant.id, limit=2, cursor=cursor)
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [s.id for s in reversed(created)]
    with pytest.raises(ValidationError):
        SubscriptionQueries.list_for_tenant(tenant.id, limit=0)
    with pytest.raises(ValidationError):
        SubscriptionQueries.list_for_tenant(tenant.id, cursor="bogus")


def test_list_for_tenant_costs_constant_queries(query_counter) -> None:
    tenant = make_tenant()
    make_subscription(tenant)
    query_counter.statements.clear()
    assert len(SubscriptionQueries.list_for_tenant(tenant.id)["items"]) == 1
    one = query_counter.count
    for _ in range(99):
        make_subscription(tenant)
    query_counter.statements.clear()
    assert len(SubscriptionQueries.list_for_tenant(tenant.id, limit=100)["items"]) == 100
    assert query_counter.count == one
