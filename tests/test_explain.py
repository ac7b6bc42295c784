"""Every read in the query catalog runs on an index (PostgreSQL EXPLAIN).

Each catalog function is called for real; the statements it sends are captured and
EXPLAINed with sequential scans, bitmap scans and sorts disabled. With those settings
the planner still picks a sequential scan or a sort when no index can serve the query,
so any ``Seq Scan`` on a table that grows with usage, or a ``Sort`` under a page's
LIMIT, means a missing index, whatever the amount of test data.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable
from typing import Any

import pytest
from helpers import postgres_only

from datalayer import db
from datalayer.models import Notification, TenantMember
from datalayer.queries import (
    AccountQueries,
    AdminFlagQueries,
    AdminNoteQueries,
    AdminRoleQueries,
    AdminSessionQueries,
    AdminUserQueries,
    AuditLogQueries,
    DeliveryQueries,
    ImpersonationQueries,
    NotificationQueries,
    PreferenceQueries,
    SessionQueries,
    SubscriptionEventQueries,
    SubscriptionQueries,
    TargetQueries,
    TenantActivityQueries,
    TenantInviteQueries,
    TenantMemberQueries,
    TenantQueries,
    TodoQueries,
    UserActivityQueries,
    UserQueries,
    VerificationQueries,
    WaitlistQueries,
)

pytestmark = postgres_only

# The run on seeded data at the scale belongs to one env (py311-postgres in tox).
SCALE = os.environ.get("DATALAYER_TEST_SCALE") == "1"

# Tables whose size is fixed by configuration, not by usage: a scan there is fine.
SMALL_TABLES = {"jwks", "admin_roles", "migratehistory"}
NOW = dt.datetime.now(dt.UTC)


def _world() -> dict[str, Any]:
    ada = UserQueries.create({"name": "Ada", "email": "ada@example.com"})
    bob = UserQueries.create({"name": "Bob", "email": "bob@example.com"})
    team = TenantQueries.create_with_owner(ada["id"], {"name": "Team"})
    invite, token = TenantInviteQueries.create(team["id"], ada["id"], email="bob@example.com")
    todo = TodoQueries.create(ada["id"], {"title": "t"}, tenant_id=team["id"])
    TodoQueries.create(ada["id"], {"title": "personal"})
    note = NotificationQueries.notify(ada["id"], type="direct_message", title="Hi", body="Body", tenant_id=team["id"])
    root = AdminUserQueries.bootstrap("root@example.com")["id"]
    AdminSessionQueries.create(root, token="root-token", expires_at=NOW + dt.timedelta(hours=8))
    AdminSessionQueries.verify_step_up("root-token")
    admin = AdminUserQueries.create(root, {"email": "ops@example.com", "name": "Ops", "status": "active"})
    AdminRoleQueries.upsert_role("support_rw", root, name="Support",
                                 permissions=["users:read", "users:write", "tenants:write"])
    AdminRoleQueries.grant(admin["id"], root, role_key="support_rw", session_token="root-token")
    AdminRoleQueries.upsert_role("impersonator", root, name="Impersonation", permissions=["users:impersonate"])
    AdminRoleQueries.grant(admin["id"], root, role_key="impersonator", session_token="root-token")
    AdminSessionQueries.create(admin["id"], token="admin-token", expires_at=NOW + dt.timedelta(hours=8))
    AdminSessionQueries.verify_step_up("admin-token")
    impersonation = ImpersonationQueries.start(bob["id"], admin["id"], reason="ticket",
                                               session_token="admin-token")
    AdminFlagQueries.set("tenant", team["id"], admin["id"], flag_type="vip", reason="partner")
    AdminNoteQueries.add("user", ada["id"], admin["id"], note="called")
    AdminNoteQueries.add("tenant", team["id"], admin["id"], note="renewal")
    SessionQueries.create(ada["id"], token="session-token", expires_at=NOW + dt.timedelta(days=1))
    VerificationQueries.create("email:ada", "code", expires_at=NOW + dt.timedelta(minutes=5))
    SubscriptionEventQueries.ingest({
        "provider": "polar", "event_id": "evt_1", "event_type": "subscription.created",
        "occurred_at": NOW.isoformat(), "tenant_id": team["id"],
        "subscription": {"polar_subscription_id": "sub_1", "status": "active", "plan_id": "pro"},
    })
    return {"ada": ada, "bob": bob, "team": team, "invite": invite, "token": token,
            "todo": todo, "note": note, "admin": admin, "impersonation": impersonation}


def _calls(w: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    ada, team, admin = w["ada"]["id"], w["team"]["id"], w["admin"]["id"]
    day = NOW.date()
    return {
        "UserQueries.find_by_id": lambda: UserQueries.find_by_id(ada),
        "UserQueries.find_by_email": lambda: UserQueries.find_by_email("ADA@example.com"),
        "SessionQueries.find_valid": lambda: SessionQueries.find_valid("session-token"),
        "AccountQueries.find_by_provider": lambda: AccountQueries.find_by_provider("github", "1"),
        "AccountQueries.list_for_user": lambda: AccountQueries.list_for_user(ada),
        "VerificationQueries.consume": lambda: VerificationQueries.consume("email:ada", "x"),
        "TenantQueries.find_by_id": lambda: TenantQueries.find_by_id(team),
        "TenantQueries.list_for_user": lambda: TenantQueries.list_for_user(ada),
        "TenantMemberQueries.find": lambda: TenantMemberQueries.find(team, ada),
        "TenantMemberQueries.list_for_tenant": lambda: TenantMemberQueries.list_for_tenant(team),
        "TenantMemberQueries.count_owners": lambda: TenantMemberQueries.count_owners(team),
        "TenantInviteQueries.find_by_token": lambda: TenantInviteQueries.find_by_token(w["token"]),
        "TenantInviteQueries.list_pending": lambda: TenantInviteQueries.list_pending(team, ada),
        "TenantActivityQueries.list_range":
            lambda: TenantActivityQueries.list_range(team, start=day, end=day),
        "NotificationQueries.inbox": lambda: NotificationQueries.inbox(ada),
        "NotificationQueries.inbox(tenant)": lambda: NotificationQueries.inbox(ada, tenant_id=team),
        "NotificationQueries.unread_count": lambda: NotificationQueries.unread_count(ada),
        "NotificationQueries.unread_count(tenant)":
            lambda: NotificationQueries.unread_count(ada, tenant_id=team),
        "DeliveryQueries.claim": lambda: DeliveryQueries.claim("explain-worker", limit=5),
        "DeliveryQueries.release_stale": lambda: DeliveryQueries.release_stale(),
        "PreferenceQueries.resolve": lambda: PreferenceQueries.resolve(ada, tenant_id=team),
        "TargetQueries.is_active": lambda: TargetQueries.is_active(ada),
        "SubscriptionQueries.current_for_tenant":
            lambda: SubscriptionQueries.current_for_tenant(team),
        "SubscriptionQueries.has_access": lambda: SubscriptionQueries.has_access(team),
        "SubscriptionQueries.list_for_tenant": lambda: SubscriptionQueries.list_for_tenant(team),
        "TodoQueries.find_by_id": lambda: TodoQueries.find_by_id(w["todo"]["id"]),
        "TodoQueries.find_for_user": lambda: TodoQueries.find_for_user(w["todo"]["id"], ada),
        "TodoQueries.list_for_user": lambda: TodoQueries.list_for_user(ada),
        "TodoQueries.list_for_user(tenant)": lambda: TodoQueries.list_for_user(ada, tenant_id=team),
        "TodoQueries.list_for_user(completed)":
            lambda: TodoQueries.list_for_user(ada, tenant_id=team, completed=False),
        "WaitlistQueries.find_by_email": lambda: WaitlistQueries.find_by_email("a@b.co"),
        "WaitlistQueries.exists": lambda: WaitlistQueries.exists("a@b.co"),
        "WaitlistQueries.list": lambda: WaitlistQueries.list(),
        "UserActivityQueries.list_range": lambda: UserActivityQueries.list_range(ada, start=day, end=day),
        "AdminUserQueries.find_by_id": lambda: AdminUserQueries.find_by_id(admin),
        "AdminUserQueries.find_by_email": lambda: AdminUserQueries.find_by_email("ops@x.io"),
        "AdminRoleQueries.permissions_for": lambda: AdminRoleQueries.permissions_for(admin),
        "AuditLogQueries.list": lambda: AuditLogQueries.list(),
        "AuditLogQueries.list(admin)": lambda: AuditLogQueries.list(admin_user_id=admin),
        "AuditLogQueries.list(action)": lambda: AuditLogQueries.list(action="ADMIN_ROLE_GRANT"),
        "AuditLogQueries.list(target)":
            lambda: AuditLogQueries.list(target_type="admin_user", target_id=admin),
        "AuditLogQueries.summary":
            lambda: AuditLogQueries.summary(since=NOW - dt.timedelta(days=1), until=NOW),
        "AdminSessionQueries.find_valid": lambda: AdminSessionQueries.find_valid("admin-token"),
        "AdminSessionQueries.verify_step_up":
            lambda: AdminSessionQueries.verify_step_up("admin-token"),
        "AdminSessionQueries.revoke": lambda: AdminSessionQueries.revoke("admin-token"),
        "AdminSessionQueries.revoke_all": lambda: AdminSessionQueries.revoke_all(admin),
        "AdminSessionQueries.delete_expired": lambda: AdminSessionQueries.delete_expired(),
        "ImpersonationQueries.start":
            lambda: ImpersonationQueries.start(w["bob"]["id"], admin, reason="again",
                                               session_token="admin-token"),
        "ImpersonationQueries.active_for": lambda: ImpersonationQueries.active_for(admin),
        "ImpersonationQueries.end":
            lambda: ImpersonationQueries.end(w["impersonation"]["id"], admin),
        "ImpersonationQueries.expire_overdue": lambda: ImpersonationQueries.expire_overdue(),
        "AdminFlagQueries.list_for": lambda: AdminFlagQueries.list_for("tenant", team),
        "AdminFlagQueries.list_by_type": lambda: AdminFlagQueries.list_by_type(flag_type="vip"),
        "AdminFlagQueries.clear":
            lambda: AdminFlagQueries.clear("tenant", team, admin, flag_type="vip"),
        "AdminNoteQueries.list_for(user)": lambda: AdminNoteQueries.list_for("user", ada),
        "AdminNoteQueries.list_for(tenant)": lambda: AdminNoteQueries.list_for("tenant", team),
    }


def _statements(call: Callable[[], Any]) -> list[tuple[str, Any]]:
    captured: list[tuple[str, Any]] = []

    def hook(event: Any) -> None:
        # A write that makes deliveries due is sent with its NOTIFY in front of it (one
        # simple query, one transaction): the statement to explain is the one after it.
        sql = re.sub(r'^\s*NOTIFY\s+"?\w+"?\s*;\s*', "", event.sql, flags=re.I)
        if re.match(r"\s*(SELECT|UPDATE|DELETE|WITH)\b", sql, re.I):
            captured.append((sql, event.params))

    db.obj.query_hooks.append(hook)
    try:
        with db.atomic() as savepoint:
            call()
            savepoint.rollback()
    finally:
        db.obj.query_hooks.remove(hook)
    return captured


# Sorts that stay bounded whatever the data size, and why.
BOUNDED_SORTS = {
    "PreferenceQueries.resolve": "at most two rows per user: the tenant row and the global one",
    "SubscriptionQueries.current_for_tenant": "a tenant's own subscriptions (a handful)",
    "SubscriptionQueries.list_for_tenant": "a tenant's own subscriptions (a handful)",
}


def _plan(sql: str, params: Any, disabled: tuple[str, ...]) -> str:
    with db.atomic() as savepoint:
        for setting in disabled:
            db.execute_sql(f"SET LOCAL {setting} = off")
        plan = "\n".join(r[0] for r in db.execute_sql("EXPLAIN " + sql, params).fetchall())
        savepoint.rollback()
    return plan


def _problems(name: str, sql: str, params: Any) -> list[str]:
    found = []
    # With sequential scans made prohibitively expensive, one that remains means no index
    # can serve the query.
    plan = _plan(sql, params, ("enable_seqscan",))
    for table in re.findall(r"Seq Scan on (\w+)", plan):
        if table not in SMALL_TABLES:
            found.append(f"sequential scan on {table}\n{plan}")
    # With sorts (and bitmap scans, which lose order) made expensive too, a Sort under a
    # page's LIMIT means no index delivers the rows in page order.
    if name.split("(")[0] not in BOUNDED_SORTS and re.search(r"\bLIMIT\b", sql, re.I):
        plan = _plan(sql, params, ("enable_seqscan", "enable_bitmapscan", "enable_sort"))
        if re.search(r"(^|-> +)Sort\b", plan, re.M):
            found.append(f"sorts the whole set before the page's LIMIT\n{plan}")
    return found


@pytest.mark.usefixtures("txn")
def test_every_catalog_read_uses_an_index() -> None:
    calls = _calls(_world())
    failures = []
    for name, call in calls.items():
        statements = _statements(call)
        assert statements, f"{name} sent no statement"
        for sql, params in statements:
            for problem in _problems(name, sql, params):
                failures.append(f"{name}: {problem}\n  {sql}")
    assert not failures, "\n\n".join(failures)


@pytest.mark.skipif(not SCALE, reason="seeded 1,000,000-todo run: tox env py311-postgres "
                                      "(DATALAYER_TEST_SCALE=1)")
def test_catalog_reads_use_indexes_with_a_million_todos(fresh_db: str) -> None:
    from datalayer.seed import SeedPlan, seed

    written = seed(SeedPlan(tenants=1_000, users_per_tenant=10, todos_per_user=100,
                            notifications_per_user=10))
    assert written["todos"] == 1_000_000 and written["notifications"] == 100_000
    world = _world()
    member = TenantMember.select().where(TenantMember.role == "owner").first()
    user_id, tenant_id = member.user_id, member.tenant_id
    db.execute_sql("ANALYZE")
    calls = {
        **_calls(world),
        "TodoQueries.list_for_user(seeded)": lambda: TodoQueries.list_for_user(user_id),
        "TodoQueries.list_for_user(seeded tenant)":
            lambda: TodoQueries.list_for_user(user_id, tenant_id=tenant_id),
        "NotificationQueries.inbox(seeded)": lambda: NotificationQueries.inbox(user_id),
        "NotificationQueries.unread_count(seeded)":
            lambda: NotificationQueries.unread_count(user_id),
        "TenantMemberQueries.list_for_tenant(seeded)":
            lambda: TenantMemberQueries.list_for_tenant(tenant_id),
        "TenantQueries.list_for_user(seeded)": lambda: TenantQueries.list_for_user(user_id),
    }
    assert Notification.select().count() >= 100_000
    # "A large table": what the seed made big (user, tenant_members, todos, notifications);
    # the others hold a handful of rows here, and scanning those is the planner's right.
    large = {name for name, rows in db.execute_sql(
        "SELECT relname, reltuples FROM pg_class WHERE relkind = 'r' "
        "AND relnamespace = 'public'::regnamespace").fetchall() if rows >= 10_000}
    assert {"todos", "notifications", "user", "tenant_members"} <= large
    failures = []
    for name, call in calls.items():
        for sql, params in _statements(call):
            plan = _plan(sql, params, ())  # the planner as it is, on real statistics
            for table in re.findall(r"Seq Scan on (\w+)", plan):
                if table in large:
                    failures.append(f"{name}: sequential scan on {table}\n{plan}\n  {sql}")
    assert not failures, "\n\n".join(failures)
