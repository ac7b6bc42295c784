"""Scope where the spec was silent: tenant preferences need the membership, a tenant's
notification needs its recipient's and actor's membership, and a tenant's pending
invites are listed to its owners and admins. An outsider is refused, nothing written."""

from __future__ import annotations

import pytest
from factories import add_member, make_tenant, make_user

from datalayer import (
    NotFoundError,
    NotificationQueries,
    PermissionDeniedError,
    PreferenceQueries,
    TenantInviteQueries,
)
from datalayer.models import Notification, NotificationDelivery, NotificationPreference

pytestmark = pytest.mark.usefixtures("txn")


def counts() -> tuple[int, int, int]:
    return (Notification.select().count(), NotificationDelivery.select().count(),
            NotificationPreference.select().count())


def test_tenant_preferences_need_the_membership() -> None:
    member, outsider = make_user(), make_user()
    tenant = make_tenant(member)
    before = counts()
    with pytest.raises(PermissionDeniedError, match="not a member"):
        PreferenceQueries.upsert(outsider.id, {"push_enabled": True}, tenant_id=tenant.id)
    with pytest.raises(NotFoundError):
        PreferenceQueries.upsert(member.id, {"push_enabled": True}, tenant_id="no-such-tenant")
    assert counts() == before
    assert PreferenceQueries.upsert(outsider.id, {"push_enabled": True})["tenant_id"] is None
    row = PreferenceQueries.upsert(member.id, {"push_enabled": True}, tenant_id=tenant.id)
    assert row["tenant_id"] == tenant.id


def test_a_tenants_notification_needs_members_on_both_ends() -> None:
    recipient, actor, outsider = make_user(), make_user(), make_user()
    tenant = make_tenant(recipient)
    add_member(tenant, actor)
    before = counts()
    for kwargs in (
        {"recipient_user_id": outsider.id, "actor_user_id": actor.id},  # recipient outside
        {"recipient_user_id": recipient.id, "actor_user_id": outsider.id},  # actor outside
        {"recipient_user_id": outsider.id},
    ):
        with pytest.raises(PermissionDeniedError, match="not a member"):
            NotificationQueries.notify(type="kudos_sent", title="t", body="b",
                                       tenant_id=tenant.id, **kwargs)
    with pytest.raises(NotFoundError):
        NotificationQueries.notify(recipient.id, type="kudos_sent", title="t", body="b", tenant_id="no-such")
    assert counts() == before
    sent = NotificationQueries.notify(recipient.id, type="kudos_sent", title="t", body="b",
                                      tenant_id=tenant.id, actor_user_id=actor.id)
    assert sent["tenant_id"] == tenant.id and len(sent["deliveries"]) == 2
    # Without a tenant, no membership is involved (a personal notification).
    assert NotificationQueries.notify(outsider.id, type="milestone", title="t", body="b",
                                      actor_user_id=actor.id)["tenant_id"] is None


def test_pending_invites_are_listed_to_owners_and_admins_only() -> None:
    owner, admin, member, outsider = make_user(), make_user(), make_user(), make_user()
    tenant = make_tenant(owner)
    add_member(tenant, admin, role="admin")
    add_member(tenant, member)
    invite, _ = TenantInviteQueries.create(tenant.id, owner.id, email="new@example.com")
    for actor in (owner, admin):
        assert [i["id"] for i in TenantInviteQueries.list_pending(tenant.id, actor.id)] == [
            invite["id"]]
    for actor in (member, outsider):
        with pytest.raises(PermissionDeniedError):
            TenantInviteQueries.list_pending(tenant.id, actor.id)
    with pytest.raises(NotFoundError):
        TenantInviteQueries.list_pending("no-such-tenant", owner.id)
