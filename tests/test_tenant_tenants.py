"""TenantQueries on both backends."""

from __future__ import annotations

import pytest
from factories import add_member, make_tenant, make_user

from datalayer import (
    NotFoundError,
    PermissionDeniedError,
    TenantQueries,
    ValidationError,
    db,
)
from datalayer.models import Tenant, TenantMember, User

pytestmark = pytest.mark.usefixtures("txn")


def _active_tenant(user: User) -> str | None:
    return User.select(User.active_tenant).where(User.id == user.id).scalar()


def test_create_with_owner_makes_owner_and_active_tenant() -> None:
    user = make_user()
    tenant = TenantQueries.create_with_owner(user.id, {"name": "Acme", "type": "team"})
    assert set(tenant) == {"id", "name", "type", "created_at", "updated_at"}
    assert tenant["name"] == "Acme" and tenant["type"] == "team"
    assert TenantQueries.find_by_id(tenant["id"]) == tenant
    member = TenantMember.get(TenantMember.tenant == tenant["id"])
    assert member.user_id == user.id and member.role == "owner"
    assert _active_tenant(user) == tenant["id"]
    # A second tenant does not replace the active one.
    second = TenantQueries.create_with_owner(user.id, {"name": "Beta"})
    assert second["type"] == "group"
    assert _active_tenant(user) == tenant["id"]


def test_create_with_owner_rejects_bad_input_and_writes_nothing() -> None:
    user = make_user()
    before = Tenant.select().count()
    for bad, field in [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "ok", "type": "club"}, "type"),
        ({"name": "nul\x00"}, "name"),
        ({"name": "ok", "id": "chosen"}, "id"),
    ]:
        with pytest.raises(ValidationError) as info:
            TenantQueries.create_with_owner(user.id, bad)
        assert field in info.value.messages
    with pytest.raises(ValidationError) as info:
        TenantQueries.create_with_owner("", {"name": "ok"})
    assert "owner_user_id" in info.value.messages
    assert Tenant.select().count() == before
    assert _active_tenant(user) is None


def test_create_with_owner_for_missing_user_leaves_nothing() -> None:
    before = Tenant.select().count()
    with pytest.raises(NotFoundError):
        TenantQueries.create_with_owner("no-such-user", {"name": "Ghost"})
    assert Tenant.select().count() == before


def test_create_with_owner_nests_in_callers_transaction() -> None:
    user = make_user()
    with db.atomic() as outer:
        tenant = TenantQueries.create_with_owner(user.id, {"name": "Rolled back"})
        outer.rollback()
    assert TenantQueries.find_by_id(tenant["id"]) is None
    assert TenantMember.select().where(TenantMember.user == user.id).count() == 0
    assert _active_tenant(user) is None


def test_find_by_id() -> None:
    assert TenantQueries.find_by_id("missing") is None
    with pytest.raises(ValidationError):
        TenantQueries.find_by_id(None)  # type: ignore[arg-type]


def test_list_for_user_adds_role_in_joining_order() -> None:
    user, other = make_user(), make_user()
    owned = TenantQueries.create_with_owner(user.id, {"name": "Mine"})
    joined = make_tenant(other)
    add_member(joined, user, role="admin")
    make_tenant(other)  # not the user's
    listed = TenantQueries.list_for_user(user.id)
    assert [(t["id"], t["role"]) for t in listed] == [(owned["id"], "owner"), (joined.id, "admin")]
    assert {k: v for k, v in listed[0].items() if k != "role"} == owned
    assert TenantQueries.list_for_user(make_user().id) == []


def test_update_by_owner_or_admin() -> None:
    owner, admin, member, outsider = make_user(), make_user(), make_user(), make_user()
    tenant = TenantQueries.create_with_owner(owner.id, {"name": "Before"})
    add_member(Tenant.get_by_id(tenant["id"]), admin, role="admin")
    add_member(Tenant.get_by_id(tenant["id"]), member)
    updated = TenantQueries.update(tenant["id"], owner.id, {"name": "After"})
    assert updated["name"] == "After" and updated["updated_at"] >= tenant["updated_at"]
    assert TenantQueries.update(tenant["id"], admin.id, {"type": "family"})["type"] == "family"
    for actor in (member, outsider):
        with pytest.raises(PermissionDeniedError):
            TenantQueries.update(tenant["id"], actor.id, {"name": "Hijacked"})
    with pytest.raises(NotFoundError):
        TenantQueries.update("no-such-tenant", owner.id, {"name": "x"})
    with pytest.raises(ValidationError) as info:
        TenantQueries.update(tenant["id"], owner.id, {"name": ""})
    assert "name" in info.value.messages
    assert TenantQueries.find_by_id(tenant["id"])["name"] == "After"  # type: ignore[index]


def test_delete_by_owner_only() -> None:
    owner, admin, outsider = make_user(), make_user(), make_user()
    tenant = TenantQueries.create_with_owner(owner.id, {"name": "Doomed"})
    add_member(Tenant.get_by_id(tenant["id"]), admin, role="admin")
    for actor in (admin, outsider):
        with pytest.raises(PermissionDeniedError):
            TenantQueries.delete(tenant["id"], actor.id)
    assert TenantQueries.find_by_id(tenant["id"]) is not None
    assert TenantQueries.delete(tenant["id"], owner.id) is None
    assert TenantQueries.find_by_id(tenant["id"]) is None
    assert TenantMember.select().where(TenantMember.tenant == tenant["id"]).count() == 0
    assert _active_tenant(owner) is None  # ON DELETE SET NULL
    with pytest.raises(NotFoundError):
        TenantQueries.delete(tenant["id"], owner.id)


def test_list_for_user_costs_constant_queries(query_counter) -> None:
    user = make_user()
    TenantQueries.create_with_owner(user.id, {"name": "first"})
    query_counter.statements.clear()
    assert len(TenantQueries.list_for_user(user.id)) == 1
    one = query_counter.count
    for i in range(99):
        add_member(make_tenant(name=f"t{i}"), user)
    query_counter.statements.clear()
    assert len(TenantQueries.list_for_user(user.id)) == 100
    assert query_counter.count == one == 1
