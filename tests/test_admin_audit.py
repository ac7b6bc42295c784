"""AuditLogQueries on both backends, and the append-only guarantee (model and trigger)."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import peewee
import pytest
from helpers import APP_ROLE, postgres_only

from datalayer import (
    AuditLogQueries,
    PermissionDeniedError,
    ValidationError,
    db,
)
from datalayer.errors import sqlstate, translate_errors
from datalayer.models import AdminAuditLog, AdminUser

pytestmark = pytest.mark.usefixtures("txn")

T0 = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
_seq = itertools.count(1)


def new_admin() -> str:
    return str(AdminUser.create(email=f"audit{next(_seq)}@example.com", status="active").id)


def old_entry(admin_id: str, minutes: int, action: str = "USER_UPDATE", **fields: Any) -> str:
    """An entry made ``minutes`` after T0 (append always stamps the current time)."""
    fields.setdefault("target_type", "user")
    row = AdminAuditLog.create(
        admin_user=admin_id, action=action, created_at=T0 + dt.timedelta(minutes=minutes), **fields
    )
    return row.id


def all_pages(**filters: Any) -> list[dict[str, Any]]:
    items, cursor = [], None
    while True:
        page = AuditLogQueries.list(**filters, limit=3, cursor=cursor)
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def test_append_returns_the_entry() -> None:
    admin = new_admin()
    entry = AuditLogQueries.append(
        admin,
        action="USER_VIEW",
        target_type="user",
        target_id="u1",
        reason="ticket 42",
        metadata={"ticket": 42, "tags": ["a"]},
        ip="198.51.100.7",
        user_agent="Mozilla/5.0",
        impersonation_session_id="imp_1",
    )
    assert entry["admin_user_id"] == admin and entry["action"] == "USER_VIEW"
    assert (entry["target_type"], entry["target_id"], entry["reason"]) == (
        "user",
        "u1",
        "ticket 42",
    )
    assert entry["metadata"] == {"ticket": 42, "tags": ["a"]}
    assert (entry["ip"], entry["user_agent"], entry["impersonation_session_id"]) == (
        "198.51.100.7",
        "Mozilla/5.0",
        "imp_1",
    )
    assert AuditLogQueries.list(admin_user_id=admin)["items"] == [entry]
    minimal = AuditLogQueries.append(admin, action="SYSTEM_CHECK", target_type="system")
    assert minimal["target_id"] is None and minimal["metadata"] is None


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        (("user_update", "user"), {}, "action"),
        (("", "user"), {}, "action"),
        (("USER_UPDATE", "planet"), {}, "target_type"),
        (("USER_UPDATE", "user"), {"metadata": {"x": float("inf")}}, "metadata"),
        (("USER_UPDATE", "user"), {"ip": "x" * 65}, "ip"),
        (("USER_UPDATE", "user"), {"target_id": ""}, "target_id"),
        (("USER_UPDATE", "user"), {"reason": "nul\x00"}, "reason"),
    ],
)
def test_append_refuses_bad_input(args: tuple, kwargs: dict[str, Any], field: str) -> None:
    admin = new_admin()
    with pytest.raises(ValidationError) as info:
        action, target_type = args
        AuditLogQueries.append(admin, action=action, target_type=target_type, **kwargs)
    assert field in info.value.messages
    assert AdminAuditLog.select().where(AdminAuditLog.admin_user == admin).count() == 0


def test_append_needs_an_existing_active_admin() -> None:
    before = AdminAuditLog.select().count()
    with pytest.raises(PermissionDeniedError):
        AuditLogQueries.append("no-such-admin", action="USER_UPDATE", target_type="user")
    suspended = str(AdminUser.create(email="gone@example.com", status="suspended").id)
    with pytest.raises(PermissionDeniedError):
        AuditLogQueries.append(suspended, action="USER_UPDATE", target_type="user")
    assert AdminAuditLog.select().count() == before


def test_list_filters_and_pages_newest_first() -> None:
    a, b = new_admin(), new_admin()
    ids = {
        "a_user": old_entry(a, 1, target_id="u1"),
        "a_tenant": old_entry(a, 2, "TENANT_UPDATE", target_type="tenant", target_id="t1"),
        "b_user": old_entry(b, 3, target_id="u1"),
        "b_user2": old_entry(b, 4, target_id="u2"),
        "a_login": old_entry(a, 5, "ADMIN_LOGIN", target_type="admin_user", target_id=a),
        "b_tenant": old_entry(b, 6, "TENANT_UPDATE", target_type="tenant", target_id="t1"),
        "a_user3": old_entry(a, 7, target_id="u1"),
    }

    def listed(**filters: Any) -> list[str]:
        names = {v: k for k, v in ids.items()}
        return [names[item["id"]] for item in all_pages(**filters)]

    assert listed(since=T0, until=T0 + dt.timedelta(hours=1)) == [
        "a_user3",
        "b_tenant",
        "a_login",
        "b_user2",
        "b_user",
        "a_tenant",
        "a_user",
    ]
    assert listed(admin_user_id=a) == ["a_user3", "a_login", "a_tenant", "a_user"]
    assert listed(action="TENANT_UPDATE") == ["b_tenant", "a_tenant"]
    assert listed(target_type="user", target_id="u1") == ["a_user3", "b_user", "a_user"]
    assert listed(target_type="tenant", admin_user_id=b) == ["b_tenant"]
    assert listed(
        admin_user_id=b, since=T0 + dt.timedelta(minutes=4), until=T0 + dt.timedelta(minutes=6)
    ) == ["b_user2"]
    assert listed(action="NEVER_HAPPENED") == []


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"target_type": "planet"}, "target_type"),
        ({"since": dt.datetime(2020, 1, 1)}, "since"),
        ({"until": "2020-01-01"}, "until"),
        ({"admin_user_id": ""}, "admin_user_id"),
        ({"limit": 0}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_list_refuses_bad_filters(filters: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        AuditLogQueries.list(**filters)
    assert field in info.value.messages


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"admin_user_id": "ADMIN"},
        {"action": "USER_UPDATE"},
        {"target_type": "user", "target_id": "u1"},
    ],
)
def test_list_costs_constant_queries(query_counter, filters: dict[str, Any]) -> None:
    admin = new_admin()
    filters = {k: (admin if v == "ADMIN" else v) for k, v in filters.items()}
    old_entry(admin, 0, target_id="u1")
    query_counter.statements.clear()
    assert len(AuditLogQueries.list(**filters, limit=100)["items"]) >= 1
    one = query_counter.count
    for minute in range(1, 120):
        old_entry(admin, minute, target_id="u1")
    query_counter.statements.clear()
    page = AuditLogQueries.list(**filters, limit=100)
    assert len(page["items"]) == 100 and page["next_cursor"] is not None
    assert query_counter.count == one
    query_counter.statements.clear()
    AuditLogQueries.list(**filters, limit=100, cursor=page["next_cursor"])
    assert query_counter.count == one


def test_summary_counts_by_action_and_admin_in_the_window() -> None:
    a, b = new_admin(), new_admin()
    old_entry(a, 0)  # before the window
    old_entry(a, 10)
    old_entry(a, 11, "ADMIN_LOGIN", target_type="admin_user")
    old_entry(b, 12)
    old_entry(b, 19)
    old_entry(b, 20)  # at `until`: outside
    since, until = T0 + dt.timedelta(minutes=10), T0 + dt.timedelta(minutes=20)
    summary = AuditLogQueries.summary(since=since, until=until)
    assert summary == {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "total": 4,
        "by_action": {"ADMIN_LOGIN": 1, "USER_UPDATE": 3},
        "by_admin": {a: 2, b: 2},
    }
    empty = AuditLogQueries.summary(since=since, until=since)
    assert (empty["total"], empty["by_action"], empty["by_admin"]) == (0, {}, {})
    with pytest.raises(ValidationError) as info:
        AuditLogQueries.summary(since=until, until=since)
    assert "until" in info.value.messages
    with pytest.raises(ValidationError) as info:
        AuditLogQueries.summary(since=dt.datetime(2020, 1, 1), until=until)
    assert "since" in info.value.messages


def test_the_model_refuses_update_and_delete() -> None:
    admin = new_admin()
    entry = AuditLogQueries.append(admin, action="USER_UPDATE", target_type="user", reason="original")
    row = AdminAuditLog.get_by_id(entry["id"])
    row.reason = "rewritten"
    for attempt in (
        row.save,
        row.delete_instance,
        lambda: AdminAuditLog.update(reason="rewritten"),
        lambda: AdminAuditLog.delete(),
    ):
        with pytest.raises(PermissionDeniedError):
            attempt()
    assert AuditLogQueries.list(admin_user_id=admin)["items"] == [entry]


@postgres_only
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE admin_audit_log SET reason = 'rewritten' WHERE id = %s",
        "DELETE FROM admin_audit_log WHERE id = %s",
    ],
)
def test_the_database_refuses_update_and_delete(sql: str) -> None:
    admin = new_admin()
    entry = AuditLogQueries.append(admin, action="USER_UPDATE", target_type="user", reason="original")
    with pytest.raises(peewee.DatabaseError) as info, db.atomic():
        db.execute_sql(sql, (entry["id"],))
    # the trigger refuses it; as the app role (py311-approle), its privileges already do
    refusal = "permission denied" if APP_ROLE else "append-only"
    assert refusal in str(info.value)
    assert sqlstate(info.value) == "42501"  # insufficient_privilege
    with pytest.raises(PermissionDeniedError), translate_errors(), db.atomic():
        db.execute_sql(sql, (entry["id"],))
    assert AuditLogQueries.list(admin_user_id=admin)["items"] == [entry]
