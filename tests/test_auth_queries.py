"""UserQueries on both backends (sessions, verifications, accounts, keys: test_auth_*.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from admin_console_helpers import actions, new_admin
from factories import add_member, make_tenant, make_user

from datalayer import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    UserQueries,
    ValidationError,
)
from datalayer.models import Tenant, User
from datalayer.schemas.auth import UserDTO

pytestmark = pytest.mark.usefixtures("txn")

T0 = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)


def _users() -> int:
    return User.select().count()


def test_create_normalizes_and_finds() -> None:
    user = UserQueries.create({"name": "Ada", "email": "  Ada.Lovelace@Example.COM "})
    assert user["email"] == "ada.lovelace@example.com"
    assert user["email_verified"] is False and user["analytics_consent"] == "anonymous"
    assert user["lifecycle_stage"] == "new" and user["preferred_language"] == "en"
    assert user["first_seen_at"] is None and user["active_tenant_id"] is None
    assert set(user) == set(UserDTO.__annotations__)
    assert UserQueries.find_by_id(user["id"]) == user
    assert UserQueries.find_by_email("ADA.lovelace@example.com") == user
    assert UserQueries.find_by_email(" ada.lovelace@EXAMPLE.com ") == user
    assert UserQueries.find_by_email("nobody@example.com") is None
    assert UserQueries.find_by_id("no-such-id") is None


@pytest.mark.parametrize("bad", [None, "", 42, "a\x00b"])
def test_find_refuses_bad_arguments(bad: Any) -> None:
    with pytest.raises(ValidationError) as info:
        UserQueries.find_by_email(bad)
    assert "email" in info.value.messages
    with pytest.raises(ValidationError) as info:
        UserQueries.find_by_id(bad)
    assert "user_id" in info.value.messages


def test_create_refuses_duplicate_email_whatever_its_case() -> None:
    UserQueries.create({"name": "A", "email": "dup@example.com"})
    before = _users()
    with pytest.raises(ConflictError):
        UserQueries.create({"name": "B", "email": "DUP@Example.com"})
    assert _users() == before


_OK = {"name": "A", "email": "a@example.com"}


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"email": "a@example.com"}, "name"),
        ({"name": "A"}, "email"),
        ({**_OK, "name": ""}, "name"),
        ({**_OK, "email": "not-an-email"}, "email"),
        ({**_OK, "image": "javascript:alert(1)"}, "image"),
        ({**_OK, "email_verified": "yes"}, "email_verified"),
        ({**_OK, "analytics_consent": "always"}, "analytics_consent"),
        ({**_OK, "id": "chosen"}, "id"),
        ({**_OK, "created_at": T0.isoformat()}, "created_at"),
        ({**_OK, "active_tenant_id": "t"}, "active_tenant_id"),
        ({**_OK, "admin_role": "super_admin"}, "admin_role"),
        ({**_OK, "name": "nul\x00"}, "name"),
    ],
)
def test_create_rejects_bad_input_and_writes_nothing(bad: dict[str, Any], field: str) -> None:
    before = _users()
    with pytest.raises(ValidationError) as info:
        UserQueries.create(bad)
    assert field in info.value.messages, (bad, info.value.messages)
    assert _users() == before


def test_update_changes_profile_only() -> None:
    user = UserQueries.create({"name": "A", "email": "upd@example.com"})
    updated = UserQueries.update(
        user["id"],
        {
            "name": "B",
            "email": "New@Example.com",
            "image": "https://cdn.example.com/a.png",
            "lifecycle_stage": "engaged",
            "churn_risk_score": 40,
            "is_power_user": True,
        },
    )
    assert updated["name"] == "B" and updated["email"] == "new@example.com"
    assert updated["image"] == "https://cdn.example.com/a.png"
    assert updated["lifecycle_stage"] == "engaged" and updated["is_power_user"] is True
    assert updated["updated_at"] >= user["updated_at"]
    assert updated["created_at"] == user["created_at"] and updated["id"] == user["id"]
    assert UserQueries.find_by_id(user["id"]) == updated


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"id": "other"}, "id"),
        ({"created_at": T0.isoformat()}, "created_at"),
        ({"lifecycle_stage": "zombie"}, "lifecycle_stage"),
        ({"churn_risk_score": 2**31}, "churn_risk_score"),
        ({"name": None}, "name"),
        ({"first_seen_at": T0.isoformat()}, "first_seen_at"),
    ],
)
def test_a_refused_update_names_the_field_and_writes_nothing(
    bad: dict[str, Any], field: str
) -> None:
    user = UserQueries.create({"name": "A", "email": "a1@example.com"})
    with pytest.raises(ValidationError) as info:
        UserQueries.update(user["id"], bad)
    assert field in info.value.messages
    assert UserQueries.find_by_id(user["id"]) == user


def test_update_refusals_write_nothing() -> None:
    user = UserQueries.create({"name": "A", "email": "a1@example.com"})
    UserQueries.create({"name": "B", "email": "b1@example.com"})
    with pytest.raises(ConflictError):
        UserQueries.update(user["id"], {"email": "B1@example.com"})
    with pytest.raises(NotFoundError):
        UserQueries.update("no-such-id", {"name": "X"})
    assert UserQueries.find_by_id(user["id"]) == user


def test_delete() -> None:
    user = UserQueries.create({"name": "A", "email": "del@example.com"})
    assert UserQueries.delete(user["id"]) is True
    assert UserQueries.delete(user["id"]) is False
    assert UserQueries.find_by_id(user["id"]) is None
    with pytest.raises(ValidationError):
        UserQueries.delete("")


def test_set_active_tenant_needs_membership() -> None:
    owner, outsider = make_user(), make_user()
    tenant = make_tenant(owner)
    assert UserQueries.set_active_tenant(owner.id, tenant_id=tenant.id)["active_tenant_id"] == tenant.id
    with pytest.raises(PermissionDeniedError):
        UserQueries.set_active_tenant(outsider.id, tenant_id=tenant.id)
    with pytest.raises(PermissionDeniedError):
        UserQueries.set_active_tenant(owner.id, tenant_id="no-such-tenant")
    with pytest.raises(NotFoundError):
        UserQueries.set_active_tenant("no-such-user", tenant_id=tenant.id)
    with pytest.raises(ValidationError):
        UserQueries.set_active_tenant(owner.id, tenant_id="")
    assert UserQueries.find_by_id(outsider.id)["active_tenant_id"] is None  # type: ignore[index]
    add_member(tenant, outsider)
    assert UserQueries.set_active_tenant(outsider.id, tenant_id=tenant.id)["active_tenant_id"] == tenant.id
    assert UserQueries.set_active_tenant(outsider.id, tenant_id=None)["active_tenant_id"] is None


def test_active_tenant_cleared_when_tenant_deleted() -> None:
    owner = make_user()
    tenant = make_tenant(owner)
    UserQueries.set_active_tenant(owner.id, tenant_id=tenant.id)
    Tenant.delete().where(Tenant.id == tenant.id).execute()
    assert UserQueries.find_by_id(owner.id)["active_tenant_id"] is None  # type: ignore[index]


def test_set_admin_role() -> None:
    user, admin = make_user(), new_admin("admin_roles:write")
    changed = UserQueries.set_admin_role(user.id, admin, role="support_rw")
    assert changed["admin_role"] == "support_rw"
    with pytest.raises(ValidationError) as info:
        UserQueries.set_admin_role(user.id, admin, role="god")
    assert "role" in info.value.messages
    with pytest.raises(NotFoundError):
        UserQueries.set_admin_role("no-such-user", admin, role=None)
    assert UserQueries.set_admin_role(user.id, admin, role=None)["admin_role"] is None
    assert actions(target_id=user.id) == ["USER_UPDATE", "USER_UPDATE"]  # audited, each
    with pytest.raises(PermissionDeniedError):  # admin_roles:write is needed
        UserQueries.set_admin_role(user.id, new_admin("users:write"), role="super_admin")
    assert actions(target_id=user.id) == ["USER_UPDATE", "USER_UPDATE"]


def test_touch_last_active_writes_at_most_once_a_minute() -> None:
    user = make_user()
    assert UserQueries.touch_last_active(user.id, now=T0) is True
    first = UserQueries.find_by_id(user.id)
    assert first is not None
    assert first["first_seen_at"] == first["last_active_at"] == T0.isoformat()
    assert UserQueries.touch_last_active(user.id, now=T0 + dt.timedelta(seconds=30)) is False
    assert UserQueries.touch_last_active(user.id, now=T0 + dt.timedelta(seconds=59.9)) is False
    later = T0 + dt.timedelta(seconds=60)
    assert UserQueries.touch_last_active(user.id, now=later) is True
    after = UserQueries.find_by_id(user.id)
    assert after is not None
    assert after["last_active_at"] == later.isoformat()
    assert after["first_seen_at"] == T0.isoformat()  # set once, kept
    # An aware time in another zone is the same instant, stored in UTC.
    tokyo = dt.timezone(dt.timedelta(hours=9))
    third = later + dt.timedelta(minutes=2)
    assert UserQueries.touch_last_active(user.id, now=third.astimezone(tokyo)) is True
    assert UserQueries.find_by_id(user.id)["last_active_at"] == third.isoformat()  # type: ignore[index]
    # The real clock (years before T0) never moves the stamp back.
    assert UserQueries.touch_last_active(user.id) is False


def test_touch_last_active_defaults_to_the_clock() -> None:
    user = make_user()
    assert UserQueries.touch_last_active(user.id) is True
    assert UserQueries.touch_last_active(user.id) is False
    row = UserQueries.find_by_id(user.id)
    assert row is not None and row["first_seen_at"] == row["last_active_at"] is not None


def test_touch_last_active_refusals() -> None:
    user = make_user()
    with pytest.raises(ValidationError) as info:
        UserQueries.touch_last_active(user.id, now=dt.datetime(2030, 1, 1))  # naive
    assert "now" in info.value.messages
    with pytest.raises(ValidationError):
        UserQueries.touch_last_active("", now=T0)
    assert UserQueries.touch_last_active("no-such-user", now=T0) is False
    row = UserQueries.find_by_id(user.id)
    assert row is not None and row["last_active_at"] is None and row["first_seen_at"] is None
