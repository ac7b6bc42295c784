"""Tenant scope: whatever ids it is given, no function returns or changes another tenant's rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from factories import add_member, make_tenant, make_user

from datalayer import (
    DataLayerError,
    NotFoundError,
    PermissionDeniedError,
    TenantActivityQueries,
    TenantInviteQueries,
    TenantMemberQueries,
    TenantQueries,
)
from datalayer.models import Tenant, TenantActivityDaily, TenantInvite, TenantMember, User

pytestmark = pytest.mark.usefixtures("txn")

DAY = dt.date(2030, 1, 1)


def _snapshot(tenant_id: str) -> tuple[Any, ...]:
    """Everything stored for one tenant, to compare before and after."""
    return (
        list(Tenant.select().where(Tenant.id == tenant_id).tuples()),
        sorted(TenantMember.select().where(TenantMember.tenant == tenant_id).tuples()),
        sorted(TenantInvite.select().where(TenantInvite.tenant == tenant_id).tuples()),
        sorted(
            TenantActivityDaily.select().where(TenantActivityDaily.tenant == tenant_id).tuples()
        ),
    )


@pytest.fixture
def two_tenants() -> dict[str, Any]:
    """Tenants a and b, each with an owner, an admin, a member, an invite and activity.

    The owner of a is also a plain member of b.
    """
    ids: dict[str, Any] = {}
    for key in ("a", "b"):
        owner, admin, member = make_user(), make_user(), make_user()
        tenant = make_tenant(owner)
        add_member(tenant, admin, role="admin")
        add_member(tenant, member)
        invite, token = TenantInviteQueries.create(tenant.id, owner.id, email=f"guest-{key}@example.com")
        TenantActivityQueries.record(tenant.id, day=DAY, events=3)
        ids[key] = {
            "tenant": tenant.id,
            "owner": owner.id,
            "admin": admin.id,
            "member": member.id,
            "invite": invite["id"],
            "token": token,
        }
    add_member(Tenant.get_by_id(ids["b"]["tenant"]), User.get_by_id(ids["a"]["owner"]))
    return ids


def test_writes_aimed_at_another_tenant_change_nothing(two_tenants: dict[str, Any]) -> None:
    a, b = two_tenants["a"], two_tenants["b"]
    before = _snapshot(b["tenant"])
    Members, Invites, Tenants = TenantMemberQueries, TenantInviteQueries, TenantQueries  # noqa: N806
    denied, missing = PermissionDeniedError, NotFoundError
    attempts: list[
        tuple[type[DataLayerError], Callable[..., Any], tuple[Any, ...], dict[str, Any]]
    ] = [
        # a's owner acting on b, where they are only a member
        (denied, Tenants.update, (b["tenant"], a["owner"], {"name": "x"}), {}),
        (denied, Tenants.delete, (b["tenant"], a["owner"]), {}),
        (denied, Members.change_role, (b["tenant"], b["member"], a["owner"]), {"role": "admin"}),
        (denied, Members.remove, (b["tenant"], b["member"], a["owner"]), {}),
        (denied, Members.transfer_ownership, (b["tenant"], b["member"], a["owner"]), {}),
        (denied, Invites.create, (b["tenant"], a["owner"]), {"email": "new@example.com"}),
        (denied, Invites.revoke, (b["invite"], a["owner"]), {}),
        # a's tenant id with b's users: not members of a
        (missing, Members.change_role, (a["tenant"], b["member"], a["owner"]), {"role": "admin"}),
        (missing, Members.change_role, (a["tenant"], b["owner"], a["owner"]), {"role": "member"}),
        (missing, Members.remove, (a["tenant"], b["admin"], a["owner"]), {}),
        (missing, Members.leave, (a["tenant"], b["member"]), {}),
        (missing, Members.transfer_ownership, (a["tenant"], b["member"], a["owner"]), {}),
        # b's staff acting through a's tenant id
        (denied, Tenants.update, (a["tenant"], b["owner"], {"name": "x"}), {}),
        (denied, Tenants.delete, (a["tenant"], b["owner"]), {}),
        (denied, Members.remove, (a["tenant"], b["member"], b["owner"]), {}),
        (denied, Invites.revoke, (a["invite"], b["admin"]), {}),
    ]
    for error, function, args, kwargs in attempts:
        with pytest.raises(error):
            function(*args, **kwargs)
    TenantActivityQueries.record(a["tenant"], day=DAY, events=5)
    assert _snapshot(b["tenant"]) == before


def test_reads_never_return_another_tenants_rows(two_tenants: dict[str, Any]) -> None:
    a, b = two_tenants["a"], two_tenants["b"]
    assert TenantMemberQueries.find(a["tenant"], b["member"]) is None
    listed = TenantMemberQueries.list_for_tenant(a["tenant"])["items"]
    assert {m["user_id"] for m in listed} == {a["owner"], a["admin"], a["member"]}
    assert {m["tenant_id"] for m in listed} == {a["tenant"]}
    assert TenantMemberQueries.count_owners(a["tenant"]) == 1
    assert [i["id"] for i in TenantInviteQueries.list_pending(a["tenant"], a["owner"])] == [
        a["invite"]]
    with pytest.raises(PermissionDeniedError):  # a's owner is a plain member of b
        TenantInviteQueries.list_pending(b["tenant"], a["owner"])
    rows = TenantActivityQueries.list_range(a["tenant"], start=DAY, end=DAY)
    assert [(r["tenant_id"], r["event_count"]) for r in rows] == [(a["tenant"], 3)]
    roles = {t["id"]: t["role"] for t in TenantQueries.list_for_user(a["owner"])}
    assert roles == {a["tenant"]: "owner", b["tenant"]: "member"}
    assert {t["id"] for t in TenantQueries.list_for_user(b["member"])} == {b["tenant"]}


def test_accepting_joins_only_the_invites_tenant(two_tenants: dict[str, Any]) -> None:
    a, b = two_tenants["a"], two_tenants["b"]
    before = _snapshot(b["tenant"])
    guest = make_user(email="guest-a@example.com", email_verified=True)
    member = TenantInviteQueries.accept(a["token"], guest.id)
    assert member["tenant_id"] == a["tenant"]
    assert TenantMemberQueries.find(b["tenant"], guest.id) is None
    assert _snapshot(b["tenant"]) == before
