"""PreferenceQueries and TargetQueries on both backends, with racing first writes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from factories import add_member, make_tenant, make_user
from helpers import race

from datalayer import (
    NotFoundError,
    PreferenceQueries,
    TargetQueries,
    ValidationError,
    db,
)
from datalayer.models import NotificationPreference, NotificationTarget

T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
DEFAULTS = {
    "in_app_enabled": True,
    "push_enabled": False,
    "email_enabled": True,
    "marketing_email_enabled": False,
}


def flags(resolved: dict[str, Any]) -> dict[str, Any]:
    return {k: resolved[k] for k in DEFAULTS}


@pytest.mark.usefixtures("txn")
class TestPreferences:
    def test_resolve_falls_back_tenant_then_global_then_defaults(self) -> None:
        user = make_user()
        tenant, other = make_tenant(user), make_tenant(user)
        resolved = PreferenceQueries.resolve(user.id, tenant_id=tenant.id)
        assert resolved == {
            "user_id": user.id,
            "tenant_id": tenant.id,
            **DEFAULTS,
            "source": "default",
        }
        PreferenceQueries.upsert(user.id, {"push_enabled": True})
        assert PreferenceQueries.resolve(user.id)["source"] == "global"
        assert PreferenceQueries.resolve(user.id, tenant_id=tenant.id)["push_enabled"] is True
        PreferenceQueries.upsert(user.id, {"email_enabled": False}, tenant_id=tenant.id)
        in_tenant = PreferenceQueries.resolve(user.id, tenant_id=tenant.id)
        assert in_tenant["source"] == "tenant"
        assert flags(in_tenant) == {**DEFAULTS, "email_enabled": False}  # no merge with global
        assert PreferenceQueries.resolve(user.id, tenant_id=other.id)["source"] == "global"
        assert PreferenceQueries.resolve(make_user().id, tenant_id=tenant.id)["source"] == "default"

    def test_upsert_creates_then_changes_only_the_given_flags(self) -> None:
        user = make_user()
        tenant = make_tenant(user)
        created = PreferenceQueries.upsert(user.id, {"marketing_email_enabled": True})
        assert created["user_id"] == user.id and created["tenant_id"] is None
        assert flags(created) == {**DEFAULTS, "marketing_email_enabled": True}
        changed = PreferenceQueries.upsert(user.id, {"in_app_enabled": False})
        assert changed["id"] == created["id"] and changed["updated_at"] >= created["updated_at"]
        assert flags(changed) == {
            **DEFAULTS,
            "marketing_email_enabled": True,
            "in_app_enabled": False,
        }
        assert PreferenceQueries.upsert(user.id, {})["id"] == created["id"]
        scoped = PreferenceQueries.upsert(user.id, {"push_enabled": True}, tenant_id=tenant.id)
        assert scoped["id"] != created["id"] and scoped["tenant_id"] == tenant.id
        again = PreferenceQueries.upsert(user.id, {"push_enabled": False}, tenant_id=tenant.id)
        assert again["id"] == scoped["id"] and again["push_enabled"] is False
        rows = NotificationPreference.select().where(NotificationPreference.user == user.id)
        assert rows.count() == 2

    def test_upsert_refuses_bad_input_and_writes_nothing(self) -> None:
        user = make_user()
        for bad, field in [
            ({"push_enabled": "yes"}, "push_enabled"),
            ({"push_enabled": 1}, "push_enabled"),
            ({"user_id": "x"}, "user_id"),
            ({"tenant_id": "x"}, "tenant_id"),
            ({"id": "x"}, "id"),
        ]:
            with pytest.raises(ValidationError) as info:
                PreferenceQueries.upsert(user.id, bad)
            assert field in info.value.messages
        with pytest.raises(ValidationError):
            PreferenceQueries.upsert(user.id, [("push_enabled", True)])
        with pytest.raises(ValidationError):
            PreferenceQueries.upsert("", {})
        with pytest.raises(ValidationError):
            PreferenceQueries.resolve(user.id, tenant_id="")
        with pytest.raises(NotFoundError):
            PreferenceQueries.upsert(user.id, {}, tenant_id="no-such-tenant")
        with pytest.raises(NotFoundError):
            PreferenceQueries.upsert("no-such-user", {})
        assert (
            NotificationPreference.select().where(NotificationPreference.user == user.id).count()
            == 0
        )


@pytest.mark.usefixtures("txn")
class TestTargets:
    def test_upsert_sets_the_given_identities(self) -> None:
        user = make_user()
        created = TargetQueries.upsert(user.id, {"expo_push_token": "ExponentPushToken[a]"})
        assert created["user_id"] == user.id and created["novu_subscriber_id"] is None
        changed = TargetQueries.upsert(user.id, {"novu_subscriber_id": "sub-1"})
        assert changed["id"] == created["id"]
        assert changed["expo_push_token"] == "ExponentPushToken[a]"  # untouched
        cleared = TargetQueries.upsert(user.id, {"expo_push_token": None})
        assert cleared["expo_push_token"] is None and cleared["novu_subscriber_id"] == "sub-1"
        assert NotificationTarget.select().where(NotificationTarget.user == user.id).count() == 1

    def test_upsert_refuses_bad_input(self) -> None:
        user = make_user()
        for bad, field in [
            ({"expo_push_token": "t" * 256}, "expo_push_token"),
            ({"expo_push_token": ""}, "expo_push_token"),
            ({"last_active_at": T0.isoformat()}, "last_active_at"),
            ({"user_id": user.id}, "user_id"),
        ]:
            with pytest.raises(ValidationError) as info:
                TargetQueries.upsert(user.id, bad)
            assert field in info.value.messages
        with pytest.raises(NotFoundError):
            TargetQueries.upsert("no-such-user", {"expo_push_token": "t"})
        assert NotificationTarget.select().where(NotificationTarget.user == user.id).count() == 0

    def test_touch_and_is_active(self) -> None:
        user = make_user()
        assert TargetQueries.is_active(user.id, now=T0) is False  # no row yet
        touched = TargetQueries.touch(user.id, now=T0)  # creates the row
        assert touched["last_active_at"] == T0.isoformat()
        assert TargetQueries.is_active(user.id, now=T0 + dt.timedelta(seconds=120)) is True
        assert TargetQueries.is_active(user.id, now=T0 + dt.timedelta(seconds=121)) is False
        assert TargetQueries.is_active(user.id, within_seconds=600, now=T0 + dt.timedelta(seconds=121)) is True
        older = TargetQueries.touch(user.id, now=T0 - dt.timedelta(hours=1))
        assert older["last_active_at"] == T0.isoformat()  # never moves back
        later = T0 + dt.timedelta(minutes=5)
        assert TargetQueries.touch(user.id, now=later)["last_active_at"] == later.isoformat()
        assert TargetQueries.touch(user.id)["last_active_at"] > later.isoformat()
        assert TargetQueries.is_active(user.id) is True
        assert TargetQueries.is_active(make_user().id) is False

    def test_touch_and_is_active_refuse_bad_arguments(self) -> None:
        user = make_user()
        naive = dt.datetime(2024, 1, 1)
        for call, field in [
            (lambda: TargetQueries.touch(user.id, now=naive), "now"),
            (lambda: TargetQueries.touch("", now=T0), "user_id"),
            (lambda: TargetQueries.is_active(user.id, now=naive), "now"),
            (lambda: TargetQueries.is_active(user.id, within_seconds=-1), "within_seconds"),
            (lambda: TargetQueries.is_active(user.id, within_seconds="60"), "within_seconds"),
            (
                lambda: TargetQueries.is_active(user.id, within_seconds=float("inf")),
                "within_seconds",
            ),
        ]:
            with pytest.raises(ValidationError) as info:
                call()
            assert field in info.value.messages
        with pytest.raises(NotFoundError):
            TargetQueries.touch("no-such-user")
        assert NotificationTarget.select().where(NotificationTarget.user == user.id).count() == 0


@pytest.mark.usefixtures("fresh_db")
def test_racing_first_upserts_make_one_row_per_scope() -> None:
    """Without ON CONFLICT on the partial indexes, all but one racer gets a ConflictError."""
    users = [make_user() for _ in range(6)]
    tenant = make_tenant(users[0])
    for user in users[1:]:
        add_member(tenant, user)  # a tenant row needs the membership
    db.close()
    for user in users:
        flags_by_thread = race(
            lambda i, u=user: PreferenceQueries.upsert(
                u.id,
                {"push_enabled": i % 2 == 0},
                tenant_id=tenant.id if i % 2 else None,
            )
        )
        ids = {(dto["tenant_id"], dto["id"]) for dto in flags_by_thread}
        assert len(ids) == 2, ids  # one global row, one tenant row
        rows = NotificationPreference.select().where(NotificationPreference.user == user.id)
        assert rows.count() == 2


@pytest.mark.usefixtures("fresh_db")
def test_racing_touches_make_one_target_and_keep_the_latest_time() -> None:
    users = [make_user() for _ in range(6)]
    db.close()
    for user in users:
        race(lambda i, u=user: TargetQueries.touch(u.id, now=T0 + dt.timedelta(seconds=i)))
        target = NotificationTarget.get(NotificationTarget.user == user.id)
        assert target.last_active_at == T0 + dt.timedelta(seconds=7)
