"""TenantMemberQueries on both backends."""

from __future__ import annotations

import pytest
from factories import add_member, make_tenant, make_user

from datalayer import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    TenantMemberQueries,
    ValidationError,
)
from datalayer.models import TenantMember, User

pytestmark = pytest.mark.usefixtures("txn")

Members = TenantMemberQueries


def _role(tenant, user) -> str | None:
    query = TenantMember.select(TenantMember.role).where(
        (TenantMember.tenant == tenant.id) & (TenantMember.user == user.id)
    )
    return query.scalar()


def _team():
    """A tenant with an owner, an admin and a member."""
    owner, admin, member = make_user(), make_user(), make_user()
    tenant = make_tenant(owner)
    add_member(tenant, admin, role="admin")
    add_member(tenant, member, member_role="viewer")
    return tenant, owner, admin, member


def test_find() -> None:
    tenant, owner, _, member = _team()
    found = Members.find(tenant.id, member.id)
    assert found is not None
    assert set(found) == {
        "id",
        "tenant_id",
        "user_id",
        "role",
        "member_role",
        "joined_at",
        "updated_at",
    }
    assert (found["tenant_id"], found["user_id"], found["role"], found["member_role"]) == (
        tenant.id,
        member.id,
        "member",
        "viewer",
    )
    assert Members.find(tenant.id, make_user().id) is None
    assert Members.find(make_tenant().id, owner.id) is None
    with pytest.raises(ValidationError):
        Members.find(tenant.id, "")


def test_list_for_tenant_pages_with_user_fields() -> None:
    tenant, owner, admin, member = _team()
    User.update(image="https://img.example/a.png").where(User.id == admin.id).execute()
    other = make_tenant(make_user())  # another tenant's members never show
    add_member(other, member)
    seen, cursor = [], None
    while True:
        page = Members.list_for_tenant(tenant.id, limit=2, cursor=cursor)
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [m["user_id"] for m in seen] == [member.id, admin.id, owner.id]  # newest first
    by_user = {m["user_id"]: m for m in seen}
    assert by_user[admin.id]["name"] == admin.name
    assert by_user[admin.id]["email"] == admin.email
    assert by_user[admin.id]["image"] == "https://img.example/a.png"
    assert by_user[owner.id]["image"] is None
    assert all(m["tenant_id"] == tenant.id for m in seen)
    assert Members.list_for_tenant("no-such-tenant") == {"items": [], "next_cursor": None}
    for bad in ({"limit": 0}, {"cursor": "garbage!"}):
        with pytest.raises(ValidationError):
            Members.list_for_tenant(tenant.id, **bad)


def test_list_for_tenant_costs_constant_queries(query_counter) -> None:
    owner = make_user()
    tenant = make_tenant(owner)
    query_counter.statements.clear()
    assert len(Members.list_for_tenant(tenant.id)["items"]) == 1
    one = query_counter.count
    for _ in range(99):
        add_member(tenant, make_user())
    query_counter.statements.clear()
    assert len(Members.list_for_tenant(tenant.id, limit=100)["items"]) == 100
    assert query_counter.count == one == 1


def test_count_owners() -> None:
    tenant, owner, admin, _ = _team()
    assert Members.count_owners(tenant.id) == 1
    add_member(tenant, make_user(), role="owner")
    assert Members.count_owners(tenant.id) == 2
    assert Members.count_owners(make_tenant().id) == 0


def test_change_role_by_manager() -> None:
    tenant, owner, admin, member = _team()
    changed = Members.change_role(tenant.id, member.id, admin.id, role="member", member_role="editor")
    assert (changed["role"], changed["member_role"]) == ("member", "editor")
    changed = Members.change_role(tenant.id, member.id, owner.id, role="admin")
    assert (changed["role"], changed["member_role"]) == ("admin", "editor")
    assert Members.change_role(tenant.id, member.id, owner.id, role="owner")["role"] == "owner"
    assert Members.count_owners(tenant.id) == 2
    # Now an owner: another owner may demote them; the tenant keeps an owner.
    assert Members.change_role(tenant.id, member.id, owner.id, role="member")["role"] == "member"


def test_change_role_refusals() -> None:
    tenant, owner, admin, member = _team()
    cases = [
        ((member.id, admin.id, "member"), PermissionDeniedError),  # plain members do not manage
        ((admin.id, owner.id, "admin"), PermissionDeniedError),  # only an owner changes an owner
        ((admin.id, member.id, "owner"), PermissionDeniedError),  # only an owner makes an owner
        ((owner.id, owner.id, "admin"), PermissionDeniedError),  # nobody changes their own role
        ((admin.id, admin.id, "owner"), PermissionDeniedError),
        ((make_user().id, member.id, "admin"), PermissionDeniedError),  # outsider
        ((owner.id, make_user().id, "admin"), NotFoundError),  # target is not a member
    ]
    for (actor, target, role), error in cases:
        with pytest.raises(error):
            Members.change_role(tenant.id, target, actor, role=role)
    with pytest.raises(NotFoundError):
        Members.change_role("no-such-tenant", member.id, owner.id, role="admin")
    for role, member_role, field in [("boss", None, "role"), ("member", "king", "member_role")]:
        with pytest.raises(ValidationError) as info:
            Members.change_role(tenant.id, member.id, owner.id, role=role, member_role=member_role)
        assert field in info.value.messages
    assert [_role(tenant, u) for u in (owner, admin, member)] == ["owner", "admin", "member"]


def test_last_owner_cannot_be_demoted() -> None:
    tenant, owner, _, _ = _team()
    second = make_user()
    add_member(tenant, second, role="owner")
    Members.change_role(tenant.id, owner.id, second.id, role="admin")
    # second is now the last owner: nobody can demote them (owner.id is only an admin now).
    with pytest.raises(PermissionDeniedError):
        Members.change_role(tenant.id, second.id, owner.id, role="member")
    assert Members.count_owners(tenant.id) == 1


def test_remove() -> None:
    tenant, owner, admin, member = _team()
    User.update(active_tenant=tenant.id).where(User.id == member.id).execute()
    removed = Members.remove(tenant.id, member.id, admin.id)
    assert removed["user_id"] == member.id and removed["tenant_id"] == tenant.id
    assert Members.find(tenant.id, member.id) is None
    assert User.get_by_id(member.id).active_tenant_id is None
    with pytest.raises(NotFoundError):
        Members.remove(tenant.id, member.id, admin.id)
    with pytest.raises(PermissionDeniedError):
        Members.remove(tenant.id, owner.id, admin.id)  # only an owner removes an owner
    assert Members.remove(tenant.id, admin.id, owner.id)["role"] == "admin"
    with pytest.raises(ConflictError):
        Members.remove(tenant.id, owner.id, owner.id)  # the last owner
    assert Members.find(tenant.id, owner.id) is not None


def test_remove_refusals_change_nothing() -> None:
    tenant, owner, admin, member = _team()
    second = make_user()
    add_member(tenant, second, role="owner")
    with pytest.raises(PermissionDeniedError):
        Members.remove(tenant.id, admin.id, member.id)  # members do not manage
    with pytest.raises(PermissionDeniedError):
        Members.remove(tenant.id, member.id, make_user().id)
    with pytest.raises(NotFoundError):
        Members.remove("no-such-tenant", member.id, owner.id)
    assert TenantMember.select().where(TenantMember.tenant == tenant.id).count() == 4
    assert Members.remove(tenant.id, second.id, owner.id)["role"] == "owner"  # not the last


def test_leave() -> None:
    tenant, owner, admin, member = _team()
    User.update(active_tenant=tenant.id).where(User.id.in_([admin.id, owner.id])).execute()
    assert Members.leave(tenant.id, admin.id)["user_id"] == admin.id
    assert User.get_by_id(admin.id).active_tenant_id is None
    with pytest.raises(NotFoundError):
        Members.leave(tenant.id, admin.id)
    with pytest.raises(ConflictError):
        Members.leave(tenant.id, owner.id)
    assert User.get_by_id(owner.id).active_tenant_id == tenant.id
    second = make_user()
    add_member(tenant, second, role="owner")
    Members.leave(tenant.id, owner.id)
    assert Members.count_owners(tenant.id) == 1
    with pytest.raises(ConflictError):
        Members.leave(tenant.id, second.id)


def test_transfer_ownership() -> None:
    tenant, owner, admin, member = _team()
    new_owner = Members.transfer_ownership(tenant.id, member.id, owner.id)
    assert new_owner["user_id"] == member.id and new_owner["role"] == "owner"
    assert _role(tenant, owner) == "admin"
    assert Members.count_owners(tenant.id) == 1
    # The old owner (now admin) cannot transfer any more.
    with pytest.raises(PermissionDeniedError):
        Members.transfer_ownership(tenant.id, admin.id, owner.id)
    with pytest.raises(PermissionDeniedError):
        Members.transfer_ownership(tenant.id, owner.id, admin.id)
    with pytest.raises(NotFoundError):
        Members.transfer_ownership(tenant.id, make_user().id, member.id)
    with pytest.raises(NotFoundError):
        Members.transfer_ownership("no-such-tenant", owner.id, member.id)
    with pytest.raises(ValidationError) as info:
        Members.transfer_ownership(tenant.id, member.id, member.id)
    assert "to_user_id" in info.value.messages
    assert [_role(tenant, u) for u in (owner, admin, member)] == ["admin", "admin", "owner"]
