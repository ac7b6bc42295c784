"""UserQueries.export / erase and `datalayer user export|erase`, on both backends."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from admin_console_helpers import erase, give
from click.testing import CliRunner
from factories import add_member, make_tenant, make_user

from datalayer import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    UserQueries,
    db,
    init_db,
)
from datalayer import models as m
from datalayer.cli.main import main
from datalayer.models.base import new_id, utcnow

NAME, EMAIL = "Zebediah Quillfeather", "zebediah.quill@example.org"
SECRETS = ("pw-hash-$argon2id$secret", "access-token-secret", "refresh-token-secret",
           "id-token-secret", "session-token-secret", "invite-hash-secret",
           "verification-value-secret")  # fmt: skip


def seed_everywhere() -> dict[str, Any]:
    """A user with a row in every table that can refer to them; return the ids by table."""
    now = utcnow()
    user = make_user(name=NAME, email=EMAIL)
    other = make_user()
    shared = make_tenant(other)  # they are a member; `other` owns it
    add_member(shared, user, role="member")
    co_owned = make_tenant(other)  # they co-own it: not its last owner
    add_member(co_owned, user, role="owner")
    ids: dict[str, Any] = {"user": [user.id]}

    def create(model: Any, table: str, **fields: Any) -> Any:
        row = model.create(id=new_id(), **fields)
        ids.setdefault(table, []).append(row.id)
        return row

    later = now + dt.timedelta(days=1)
    create(m.Session, "session", user=user.id, token=SECRETS[4], expires_at=later)
    create(m.Account, "account", user=user.id, account_id="acc-1", provider_id="credential",
           password=SECRETS[0], access_token=SECRETS[1], refresh_token=SECRETS[2],
           id_token=SECRETS[3])  # fmt: skip
    m.Verification.create(id=new_id(), identifier=EMAIL, value=SECRETS[6], expires_at=later)
    ids["tenant_members"] = [r.id for r in m.TenantMember.select().where(
        m.TenantMember.user == user.id)]  # fmt: skip
    create(m.TenantInvite, "tenant_invites", tenant=shared.id, invited_by=user.id,
           email="friend@example.org", token_hash=SECRETS[5], expires_at=later)  # fmt: skip
    create(m.TenantInvite, "tenant_invites", tenant=co_owned.id, invited_by=other.id,
           email=EMAIL, token_hash="h2", expires_at=later, role="admin")  # fmt: skip
    note = create(m.Notification, "notifications", recipient_user=user.id, type="mention",
                  title="hi", body="b", actor_user=other.id)  # fmt: skip
    create(m.NotificationDelivery, "notification_deliveries", notification=note.id,
           channel="email", next_attempt_at=now)  # fmt: skip
    acted = m.Notification.create(id=new_id(), recipient_user=other.id, type="mention",
                                  title=f"{NAME} sent you kudos", body=f"from {EMAIL}",
                                  actor_user=user.id, data={"by": user.id})  # fmt: skip
    create(m.NotificationPreference, "notification_preferences", user=user.id)
    create(m.NotificationTarget, "notification_targets", user=user.id, expo_push_token="tok")
    create(m.Todo, "todos", user=user.id, title="t")
    create(m.UserActivityDaily, "user_activity_daily", user=user.id, date=now.date())
    create(m.Waitlist, "waitlist", email=EMAIL)
    create(m.Subscription, "subscriptions", tenant=shared.id, purchased_by_user=user.id,
           plan_id="pro", provider="polar")  # fmt: skip
    admin = m.AdminUser.create(id=new_id(), email="support@example.org", status="active")
    give(admin.id, "users:write")
    m.AdminAuditLog.create(id=new_id(), admin_user=admin.id, action="USER_UPDATE",
                           target_type="user", target_id=user.id, reason=f"fix {NAME}",
                           metadata={"email": EMAIL}, ip="10.0.0.1")  # fmt: skip
    if hasattr(m, "AdminUserNote"):
        create(m.AdminUserNote, "admin_user_notes", user=user.id, admin_user=admin.id,
               note="called them")  # fmt: skip
    if hasattr(m, "AdminFlag"):
        create(m.AdminFlag, "admin_flags", target_type="user", target_id=user.id,
               flag_type="vip", reason="big customer", created_by=admin.id)  # fmt: skip
    if hasattr(m, "AdminImpersonationSession"):
        m.AdminImpersonationSession.create(
            id=new_id(), admin_user=admin.id, target_user=user.id, reason="support",
            expires_at=later)  # fmt: skip
    return {"ids": ids, "user": user, "other": other, "admin": admin, "acted": acted.id}


def rows_mentioning(needles: tuple[str, ...]) -> list[tuple[str, tuple[Any, ...]]]:
    """Every row of every table whose values mention one of ``needles``."""
    found = []
    for model in m.ALL_MODELS:
        for values in model.select().tuples():
            text = json.dumps([str(v) for v in values])
            if any(n in text for n in needles):
                found.append((model._meta.table_name, values))
    return found


@pytest.mark.usefixtures("txn")
def test_export_holds_every_row_about_the_user_and_no_secret() -> None:
    world = seed_everywhere()
    exported = UserQueries.export(world["user"].id)
    for table, seeded in world["ids"].items():
        assert {r["id"] for r in exported[table]} >= set(seeded), table
    assert exported["user"][0]["email"] == EMAIL
    # someone else's notification they acted in: erase anonymizes it, so export holds it
    assert [n["id"] for n in exported["notifications_about"]] == [world["acted"]]
    text = json.dumps(exported)
    assert not [s for s in SECRETS if s in text]
    with pytest.raises(NotFoundError):
        UserQueries.export(new_id())


@pytest.mark.usefixtures("txn")
def test_erase_leaves_no_trace_outside_the_erasure_audit_row() -> None:
    world = seed_everywhere()
    user, admin = world["user"], world["admin"]
    counts = erase(user.id, admin.id, reason="GDPR request #42")["counts"]
    assert counts["user"] == 1 and counts["todos"] == 1 and counts["session"] == 1
    assert counts["notifications"] == 1 and counts["notification_deliveries"] == 1
    assert counts["tenant_invites"] == 2 and counts["verification"] == 1
    assert counts["notifications_acted_in_anonymized"] == 1
    assert counts["admin_audit_log_redacted"] == 1
    leftovers = rows_mentioning((user.id, EMAIL, NAME))
    erasure = [r for t, r in leftovers if t == "admin_audit_log"]
    assert len(leftovers) == len(erasure) == 1, leftovers  # only the USER_ERASE row
    assert "USER_ERASE" in erasure[0] and "GDPR request #42" in erasure[0]
    acted = m.Notification.get_by_id(world["acted"])
    assert acted.actor_user_id is None and acted.title == "[erased] sent you kudos"
    a = m.AdminAuditLog
    assert a.select().where(a.action == "USER_UPDATE").count() == 1  # the trail keeps its rows
    assert m.Subscription.select().count() == 1  # the tenant keeps its subscription
    assert m.Tenant.select().count() == 2


@pytest.mark.usefixtures("txn")
def test_erase_refuses_a_last_owner_and_changes_nothing() -> None:
    owner, admin = make_user(), m.AdminUser.create(id=new_id(), email="a@example.org", status="active")
    make_tenant(owner)
    m.Todo.create(id=new_id(), user=owner.id, title="mine")
    with pytest.raises(ConflictError, match="last owner"):
        erase(owner.id, admin.id, reason="request")
    assert m.User.get_by_id(owner.id) and m.Todo.select().count() == 1
    assert m.AdminAuditLog.select().where(m.AdminAuditLog.action == "USER_ERASE").count() == 0
    with pytest.raises(PermissionDeniedError):
        UserQueries.erase(owner.id, new_id(), reason="no such admin", session_token="t")


def test_audit_trail_allows_only_the_erasure_redaction(fresh_db: str) -> None:
    user, admin = make_user(), m.AdminUser.create(id=new_id(), email="b@example.org", status="active")
    row = m.AdminAuditLog.create(id=new_id(), admin_user=admin.id, action="USER_UPDATE",
                                 target_type="user", target_id=user.id)  # fmt: skip
    redact = "UPDATE admin_audit_log SET target_id = NULL WHERE id = " + db.obj.param
    with pytest.raises(Exception, match="append-only"), db.atomic():  # no erasure yet
        db.execute_sql(redact, [row.id])
    erase(user.id, admin.id, reason="request")
    assert m.AdminAuditLog.get_by_id(row.id).target_id is None  # redacted by the erasure
    erase_row = m.AdminAuditLog.get(m.AdminAuditLog.action == "USER_ERASE")
    for statement in (
        "UPDATE admin_audit_log SET target_id = NULL WHERE id = " + db.obj.param,
        "UPDATE admin_audit_log SET reason = 'x' WHERE id = " + db.obj.param,
    ):
        with pytest.raises(Exception, match="append-only"), db.atomic():  # stays as written
            db.execute_sql(statement, [erase_row.id])


def test_user_commands_export_and_erase(fresh_db: str) -> None:
    world = seed_everywhere()
    db.close()
    runner = CliRunner()
    out = runner.invoke(main, ["user", "export", EMAIL.upper(), "--database", fresh_db])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["user"][0]["id"] == world["user"].id
    args = ["user", "erase", EMAIL, "--actor", "support@example.org", "--reason", "asked",
            "--database", fresh_db]  # fmt: skip
    refused = runner.invoke(main, args)  # no terminal and no --yes: refuses
    assert refused.exit_code != 0 and "--yes" in refused.output
    done = runner.invoke(main, [*args, "--yes"])
    assert done.exit_code == 0, done.output
    assert f"Erased {EMAIL}." in done.output
    init_db(fresh_db)
    assert m.User.select().where(m.User.email == EMAIL).count() == 0
