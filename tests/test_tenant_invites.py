"""TenantInviteQueries on both backends."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from factories import add_member, make_tenant, make_user

from datalayer import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    TenantInviteQueries,
    TenantMemberQueries,
    ValidationError,
)
from datalayer.models import TenantInvite, TenantMember, utcnow

pytestmark = pytest.mark.usefixtures("txn")

Invites = TenantInviteQueries


def _team():
    owner, admin, member = make_user(), make_user(), make_user()
    tenant = make_tenant(owner)
    add_member(tenant, admin, role="admin")
    add_member(tenant, member)
    return tenant, owner, admin, member


def _invite_count(tenant) -> int:
    return TenantInvite.select().where(TenantInvite.tenant == tenant.id).count()


def test_create_returns_token_once_and_stores_only_its_hash() -> None:
    tenant, owner, _, _ = _team()
    invite, token = Invites.create(tenant.id, owner.id, email="  New.Person@Example.COM ", role="admin")
    assert len(token) >= 43  # 32 random bytes, URL-safe base64
    assert set(invite) == {
        "id",
        "tenant_id",
        "invited_by",
        "email",
        "role",
        "status",
        "expires_at",
        "accepted_at",
        "created_at",
        "updated_at",
    }
    assert (invite["tenant_id"], invite["invited_by"], invite["email"], invite["role"]) == (
        tenant.id,
        owner.id,
        "new.person@example.com",
        "admin",
    )
    assert invite["status"] == "pending" and invite["accepted_at"] is None
    stored = TenantInvite.get_by_id(invite["id"])
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {stored.token_hash, stored.email, stored.id}
    expires = dt.datetime.fromisoformat(invite["expires_at"])
    assert (
        dt.timedelta(days=7) - dt.timedelta(minutes=1) < expires - utcnow() <= dt.timedelta(days=7)
    )
    _, other_token = Invites.create(tenant.id, owner.id, email="someone@example.com", ttl_seconds=60)
    assert other_token != token


def test_create_refusals_write_nothing() -> None:
    tenant, owner, admin, member = _team()
    cases = [
        ((tenant.id, member.id, "x@example.com"), {}, PermissionDeniedError),
        ((tenant.id, make_user().id, "x@example.com"), {}, PermissionDeniedError),
        (("no-such-tenant", owner.id, "x@example.com"), {}, NotFoundError),
        ((tenant.id, admin.id, admin.email.upper()), {}, ConflictError),  # own email
        ((tenant.id, owner.id, member.email), {}, ConflictError),  # already a member
        ((tenant.id, owner.id, "not-an-email"), {}, ValidationError),
        ((tenant.id, owner.id, "x@example.com"), {"role": "owner"}, ValidationError),
        ((tenant.id, owner.id, "x@example.com"), {"ttl_seconds": 0}, ValidationError),
        ((tenant.id, owner.id, "x@example.com"), {"ttl_seconds": True}, ValidationError),
    ]
    for args, kwargs, error in cases:
        with pytest.raises(error):
            tenant_id, actor_user_id, email = args
            Invites.create(tenant_id, actor_user_id, email=email, **kwargs)
    assert _invite_count(tenant) == 0


def test_second_pending_invite_for_same_email_is_a_conflict() -> None:
    tenant, owner, admin, _ = _team()
    first, _ = Invites.create(tenant.id, owner.id, email="dup@example.com")
    with pytest.raises(ConflictError, match="pending invite"):
        Invites.create(tenant.id, admin.id, email="DUP@example.com")
    assert _invite_count(tenant) == 1
    # Another tenant may invite the same email; once revoked, this one may again.
    Invites.create(make_tenant(owner).id, owner.id, email="dup@example.com")
    Invites.revoke(first["id"], owner.id)
    again, _ = Invites.create(tenant.id, owner.id, email="dup@example.com")
    assert again["status"] == "pending"


def test_overdue_pending_invite_does_not_block_a_new_one() -> None:
    tenant, owner, _, _ = _team()
    old, _ = Invites.create(tenant.id, owner.id, email="late@example.com")
    TenantInvite.update(expires_at=utcnow() - dt.timedelta(seconds=1)).where(
        TenantInvite.id == old["id"]
    ).execute()
    new, _ = Invites.create(tenant.id, owner.id, email="late@example.com")
    assert TenantInvite.get_by_id(old["id"]).status == "expired"
    assert new["status"] == "pending"


def test_find_by_token() -> None:
    tenant, owner, _, _ = _team()
    invite, token = Invites.create(tenant.id, owner.id, email="f@example.com")
    assert Invites.find_by_token(token) == invite
    assert Invites.find_by_token(token + "x") is None
    assert Invites.find_by_token(hashlib.sha256(token.encode()).hexdigest()) is None
    with pytest.raises(ValidationError):
        Invites.find_by_token("")


def test_list_pending() -> None:
    tenant, owner, _, _ = _team()
    a, _ = Invites.create(tenant.id, owner.id, email="a@example.com")
    b, _ = Invites.create(tenant.id, owner.id, email="b@example.com")
    c, _ = Invites.create(tenant.id, owner.id, email="c@example.com")
    d, _ = Invites.create(tenant.id, owner.id, email="d@example.com")
    Invites.revoke(c["id"], owner.id)
    TenantInvite.update(expires_at=utcnow() - dt.timedelta(seconds=1)).where(
        TenantInvite.id == d["id"]
    ).execute()
    Invites.create(make_tenant(owner).id, owner.id, email="elsewhere@example.com")
    assert [i["id"] for i in Invites.list_pending(tenant.id, owner.id)] == [b["id"], a["id"]]
    assert Invites.list_pending(make_tenant(owner).id, owner.id) == []


def test_accept_creates_membership_with_invite_role() -> None:
    tenant, owner, _, _ = _team()
    invitee = make_user(email_verified=True)
    invite, token = Invites.create(tenant.id, owner.id, email=invitee.email, role="admin")
    member = Invites.accept(token, invitee.id)
    assert (member["tenant_id"], member["user_id"], member["role"]) == (
        tenant.id,
        invitee.id,
        "admin",
    )
    stored = TenantInvite.get_by_id(invite["id"])
    assert stored.status == "accepted" and stored.accepted_at is not None
    assert TenantMemberQueries.find(tenant.id, invitee.id) == member
    with pytest.raises(ConflictError):
        Invites.accept(token, invitee.id)  # single use
    assert TenantMember.select().where(TenantMember.user == invitee.id).count() == 1


def test_accept_refusals_change_nothing() -> None:
    tenant, owner, _, _ = _team()
    invitee, stranger = make_user(email_verified=True), make_user(email_verified=True)
    invite, token = Invites.create(tenant.id, owner.id, email=invitee.email)
    with pytest.raises(PermissionDeniedError):
        Invites.accept(token, stranger.id)  # another user's invite
    with pytest.raises(NotFoundError):
        Invites.accept("no-such-token", invitee.id)
    with pytest.raises(NotFoundError):
        Invites.accept(token, "no-such-user")
    with pytest.raises(ValidationError):
        Invites.accept(token, "")
    TenantInvite.update(expires_at=utcnow() - dt.timedelta(seconds=1)).where(
        TenantInvite.id == invite["id"]
    ).execute()
    with pytest.raises(ConflictError, match="expired"):
        Invites.accept(token, invitee.id)
    assert TenantInvite.get_by_id(invite["id"]).status == "pending"
    assert TenantMemberQueries.find(tenant.id, invitee.id) is None


def test_accept_revoked_invite_is_a_conflict() -> None:
    tenant, owner, _, _ = _team()
    invitee = make_user(email_verified=True)
    invite, token = Invites.create(tenant.id, owner.id, email=invitee.email)
    Invites.revoke(invite["id"], owner.id)
    with pytest.raises(ConflictError, match="revoked"):
        Invites.accept(token, invitee.id)
    assert TenantMemberQueries.find(tenant.id, invitee.id) is None


def test_accept_by_someone_already_a_member_rolls_back() -> None:
    tenant, owner, _, _ = _team()
    invitee = make_user(email_verified=True)
    invite, token = Invites.create(tenant.id, owner.id, email=invitee.email)
    add_member(tenant, invitee)  # joined meanwhile
    with pytest.raises(ConflictError, match="already a member"):
        Invites.accept(token, invitee.id)
    assert TenantInvite.get_by_id(invite["id"]).status == "pending"


def test_revoke() -> None:
    tenant, owner, admin, member = _team()
    invite, _ = Invites.create(tenant.id, owner.id, email="r@example.com")
    for actor, error in [
        (member.id, PermissionDeniedError),
        (make_user().id, PermissionDeniedError),
    ]:
        with pytest.raises(error):
            Invites.revoke(invite["id"], actor)
    with pytest.raises(NotFoundError):
        Invites.revoke("no-such-invite", owner.id)
    assert TenantInvite.get_by_id(invite["id"]).status == "pending"
    revoked = Invites.revoke(invite["id"], admin.id)
    assert revoked["id"] == invite["id"] and revoked["status"] == "revoked"
    with pytest.raises(ConflictError):
        Invites.revoke(invite["id"], owner.id)


def test_expire_overdue() -> None:
    tenant, owner, _, _ = _team()
    soon, _ = Invites.create(tenant.id, owner.id, email="soon@example.com", ttl_seconds=60)
    later, _ = Invites.create(tenant.id, owner.id, email="later@example.com", ttl_seconds=3600)
    gone, _ = Invites.create(tenant.id, owner.id, email="gone@example.com", ttl_seconds=60)
    Invites.revoke(gone["id"], owner.id)
    assert Invites.expire_overdue() == 0
    in_two_minutes = utcnow() + dt.timedelta(minutes=2)
    assert Invites.expire_overdue(now=in_two_minutes) == 1
    assert Invites.expire_overdue(now=in_two_minutes) == 0
    statuses = {i.id: i.status for i in TenantInvite.select()}
    assert (statuses[soon["id"]], statuses[later["id"]], statuses[gone["id"]]) == (
        "expired",
        "pending",
        "revoked",
    )
    with pytest.raises(ValidationError) as info:
        Invites.expire_overdue(now=dt.datetime(2030, 1, 1))
    assert "now" in info.value.messages
