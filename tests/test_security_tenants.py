"""Issue 23, "Tenant rules" and "Billing webhooks", on both backends: a tenant's last
owner, invites taken with somebody else's address, removed members, forged events."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from factories import add_member, make_tenant, make_user

from datalayer import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    SubscriptionEventQueries,
    TenantInviteQueries,
    TenantMemberQueries,
    TodoQueries,
    UserQueries,
    ValidationError,
)
from datalayer.models import Subscription, SubscriptionEvent, TenantMember, Todo, User, utcnow

pytestmark = pytest.mark.usefixtures("txn")


def test_delete_refuses_a_tenants_last_owner_as_erase_does() -> None:
    owner = make_user()
    tenant = make_tenant(owner)
    with pytest.raises(ConflictError):
        UserQueries.delete(owner.id)
    assert User.select().where(User.id == owner.id).exists()
    assert TenantMember.select().where(TenantMember.tenant == tenant.id).count() == 1
    second = make_user()
    add_member(tenant, second, role="owner")
    assert UserQueries.delete(owner.id) is True  # another owner remains


def test_an_outsider_cannot_take_an_invitees_address_and_their_invite() -> None:
    owner = make_user()
    tenant = make_tenant(owner)
    _, token = TenantInviteQueries.create(tenant.id, owner.id, email="invitee@example.com", role="admin")
    outsider = make_user(email="outsider@example.com", email_verified=True)
    changed = UserQueries.update(outsider.id, {"email": "invitee@example.com"})
    assert changed["email_verified"] is False  # a new address is not verified yet
    with pytest.raises(PermissionDeniedError):
        TenantInviteQueries.accept(token, outsider.id)
    assert TenantMemberQueries.find(tenant.id, outsider.id) is None


def test_an_unverified_invitee_cannot_accept_until_verified() -> None:
    owner = make_user()
    tenant = make_tenant(owner)
    invitee = make_user(email="late@example.com")
    _, token = TenantInviteQueries.create(tenant.id, owner.id, email=invitee.email, role="member")
    with pytest.raises(PermissionDeniedError):
        TenantInviteQueries.accept(token, invitee.id)
    UserQueries.update(invitee.id, {"email_verified": True})
    assert TenantInviteQueries.accept(token, invitee.id)["role"] == "member"


def test_the_same_address_keeps_its_verified_flag() -> None:
    user = make_user(email="same@example.com", email_verified=True)
    assert UserQueries.update(user.id, {"email": "Same@Example.com"})["email_verified"] is True
    assert UserQueries.update(user.id, {"name": "New name"})["email_verified"] is True


def test_a_removed_member_no_longer_reads_or_changes_their_todos_in_the_tenant() -> None:
    owner, member = make_user(), make_user()
    tenant = make_tenant(owner)
    add_member(tenant, member)
    todo = TodoQueries.create(member.id, {"title": "in the tenant"}, tenant_id=tenant.id)
    personal = TodoQueries.create(member.id, {"title": "mine"})
    assert TodoQueries.list_for_user(member.id, tenant_id=tenant.id)["items"] == [todo]
    TenantMemberQueries.remove(tenant.id, member.id, owner.id)

    assert TodoQueries.list_for_user(member.id, tenant_id=tenant.id)["items"] == []
    assert TodoQueries.find_for_user(todo["id"], member.id) is None
    with pytest.raises(NotFoundError):
        TodoQueries.update(todo["id"], member.id, {"title": "still mine?"})
    with pytest.raises(NotFoundError):
        TodoQueries.toggle_complete(todo["id"], member.id)
    assert TodoQueries.delete(todo["id"], member.id) is False
    assert Todo.get_by_id(todo["id"]).title == "in the tenant"  # unchanged, still there
    # their personal todos are theirs whatever tenants they leave
    assert TodoQueries.update(personal["id"], member.id, {"title": "ok"})["title"] == "ok"


def _event(key: str, *, at: dt.datetime, tenant_id: str | None, **state: Any) -> dict[str, Any]:
    return {
        "provider": "polar",
        "event_id": f"evt_{key}_{at.timestamp()}_{tenant_id}",
        "event_type": "subscription.updated",
        "occurred_at": at.isoformat(),
        "tenant_id": tenant_id,
        "payload": None,
        "subscription": {"polar_subscription_id": key, "status": "active", "plan_id": "pro",
                         **state},
    }  # fmt: skip


def _events() -> int:
    return SubscriptionEvent.select().count()


def test_an_event_dated_in_8999_is_refused_and_cannot_freeze_the_subscription() -> None:
    tenant = make_tenant()
    now = utcnow()
    SubscriptionEventQueries.ingest(
        _event("sub_f", at=now - dt.timedelta(hours=1), tenant_id=tenant.id)
    )
    before = _events()
    far = dt.datetime(8999, 1, 1, tzinfo=dt.UTC)
    with pytest.raises(ValidationError) as caught:
        SubscriptionEventQueries.ingest(_event("sub_f", at=far, tenant_id=tenant.id, plan_id="x"))
    assert "occurred_at" in caught.value.messages
    with pytest.raises(ValidationError):  # the bound is 5 minutes by default
        SubscriptionEventQueries.ingest(
            _event("sub_f", at=now + dt.timedelta(minutes=10), tenant_id=tenant.id)
        )
    assert _events() == before
    genuine = _event("sub_f", at=now, tenant_id=tenant.id, plan_id="team")
    assert SubscriptionEventQueries.ingest(genuine) == "applied"
    assert Subscription.get(Subscription.polar_subscription_id == "sub_f").plan_id == "team"
    soon = _event("sub_f", at=now + dt.timedelta(minutes=10), tenant_id=tenant.id)
    assert SubscriptionEventQueries.ingest(soon, max_future_skew=3600) == "applied"


def test_an_event_naming_another_tenant_is_a_conflict_and_changes_nothing() -> None:
    a, b = make_tenant(), make_tenant()
    now = utcnow() - dt.timedelta(hours=1)
    SubscriptionEventQueries.ingest(_event("sub_a", at=now, tenant_id=a.id))
    before = _events()
    forged = _event("sub_a", at=now + dt.timedelta(minutes=1), tenant_id=b.id, plan_id="free")
    with pytest.raises(ConflictError):
        SubscriptionEventQueries.ingest(forged)
    sub = Subscription.get(Subscription.polar_subscription_id == "sub_a")
    assert (sub.tenant_id, sub.plan_id) == (a.id, "pro")
    assert _events() == before


def test_a_purchaser_outside_the_tenant_is_a_validation_error() -> None:
    buyer, outsider = make_user(), make_user()
    tenant = make_tenant(buyer)
    now = utcnow() - dt.timedelta(hours=1)
    before = _events()
    with pytest.raises(ValidationError) as caught:
        SubscriptionEventQueries.ingest(
            _event("sub_p", at=now, tenant_id=tenant.id, purchased_by_user_id=outsider.id)
        )
    assert "purchased_by_user_id" in caught.value.messages["subscription"]
    assert _events() == before
    ok = _event("sub_p", at=now, tenant_id=tenant.id, purchased_by_user_id=buyer.id)
    assert SubscriptionEventQueries.ingest(ok) == "applied"
    later = _event("sub_p", at=now + dt.timedelta(minutes=1), tenant_id=None,
                   purchased_by_user_id=outsider.id)  # fmt: skip
    with pytest.raises(ValidationError):  # also once the subscription exists
        SubscriptionEventQueries.ingest(later)
