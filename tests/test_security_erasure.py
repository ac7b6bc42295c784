"""Issue 23, "Erasure leaves personal data behind" and "Audit gaps" (the USER_ERASE rule),
on both backends: after erase the user's id, email and name are nowhere the library
stored them but the bare id of the USER_ERASE row; free text others wrote is listed for
review; export holds every row erase touches; a USER_ERASE row for a live user lets
nothing through the audit trail's trigger."""

from __future__ import annotations

import json
from typing import Any

import pytest
from admin_console_helpers import erase, give
from click.testing import CliRunner
from factories import add_member, make_tenant, make_user

from datalayer import AuditLogQueries, PermissionDeniedError, UserQueries, db, init_db
from datalayer import models as m
from datalayer.cli.main import main
from datalayer.models.base import new_id, utcnow

NAME, EMAIL = "Philippa Oddbody", "philippa.oddbody@example.net"


def seed_mentions() -> dict[str, Any]:
    """A user mentioned in every JSON column and in free text others wrote."""
    user = make_user(name=NAME, email=EMAIL)
    other = make_user()
    tenant = make_tenant(other)
    add_member(tenant, user)
    admin = m.AdminUser.create(id=new_id(), email="ops@example.net", status="active")
    give(admin.id, "users:write")
    ids: dict[str, str] = {"user": user.id}

    def row(model: Any, key: str, **fields: Any) -> None:
        ids[key] = model.create(id=new_id(), **fields).id

    row(m.AdminAuditLog, "audit_tenant", admin_user=admin.id, action="TENANT_UPDATE",
        target_type="tenant", target_id=tenant.id, reason=f"asked by {NAME}",
        metadata={"contact": EMAIL.upper(), "nested": [{"who": user.id}]})  # fmt: skip
    row(m.AdminAuditLog, "audit_other", admin_user=admin.id, action="TENANT_UPDATE",
        target_type="tenant", target_id=tenant.id, reason="unrelated", metadata={"k": 1})
    row(m.AdminImpersonationSession, "impersonation", admin_user=admin.id,
        target_user=other.id, reason=f"{NAME} reported a bug",
        metadata={"ticket_from": EMAIL}, expires_at=utcnow())  # fmt: skip
    row(m.Notification, "notification_data", recipient_user=other.id, type="direct_message",
        title="New message", body="hello", data={"from": {"email": EMAIL, "name": NAME}})
    row(m.SubscriptionEvent, "event", provider="polar", event_id="evt_1",
        event_type="subscription.updated", payload={"customer": {"email": EMAIL}},
        occurred_at=utcnow())  # fmt: skip
    row(m.Todo, "todo_other", user=other.id, title=f"call {NAME}", description="soon")
    row(m.AdminTenantNote, "tenant_note", tenant=tenant.id, admin_user=admin.id,
        note=f"billing contact {EMAIL}")  # fmt: skip
    row(m.Notification, "notification_title", recipient_user=other.id,
        type="direct_message", title=f"{NAME} mentioned you", body="b")  # fmt: skip
    return {"ids": ids, "admin": admin, "user": user}


def rows_mentioning(needles: tuple[str, ...]) -> list[tuple[str, tuple[Any, ...]]]:
    found = []
    for model in m.ALL_MODELS:
        for values in model.select().tuples():
            text = json.dumps([str(v) for v in values], ensure_ascii=False).lower()
            if any(n.lower() in text for n in needles):
                found.append((model._meta.table_name, values))
    return found


def snapshot() -> set[tuple[str, str]]:
    """Every row of every table, as (table, its values as text)."""
    return {(model._meta.table_name, json.dumps([str(v) for v in values]))
            for model in m.ALL_MODELS for values in model.select().tuples()}  # fmt: skip


@pytest.mark.usefixtures("txn")
def test_erase_scrubs_every_json_value_and_lists_free_text_for_review() -> None:
    world = seed_mentions()
    ids, user = world["ids"], world["user"]
    result = erase(user.id, world["admin"].id, reason=f"request from {EMAIL}")
    assert result["counts"]["subscription_events_scrubbed"] == 1
    assert result["counts"]["notifications_data_scrubbed"] == 1
    review = {(i["table"], i["row_id"], i["column"]) for i in result["review"]}
    assert review == {
        ("todos", ids["todo_other"], "title"),
        ("admin_tenant_notes", ids["tenant_note"], "note"),
        ("notifications", ids["notification_title"], "title"),
    }
    leftovers = rows_mentioning((user.id, EMAIL, NAME))
    # the free text listed for review, and the bare id of the USER_ERASE row
    assert sorted(t for t, _ in leftovers) == [
        "admin_audit_log", "admin_tenant_notes", "notifications", "todos"]  # fmt: skip
    erasure = next(r for t, r in leftovers if t == "admin_audit_log")
    assert "USER_ERASE" in erasure and EMAIL not in json.dumps([str(v) for v in erasure])
    audit = m.AdminAuditLog.get_by_id(ids["audit_tenant"])
    assert audit.reason == "asked by [erased]"
    assert audit.metadata == {"contact": "[erased]", "nested": [{"who": "[erased]"}]}
    assert m.AdminAuditLog.get_by_id(ids["audit_other"]).metadata == {"k": 1}
    imp = m.AdminImpersonationSession.get_by_id(ids["impersonation"])
    assert (imp.reason, imp.metadata) == ("[erased] reported a bug", {"ticket_from": "[erased]"})
    data = m.Notification.get_by_id(ids["notification_data"]).data
    assert data == {"from": {"email": "[erased]", "name": "[erased]"}}
    payload = m.SubscriptionEvent.get_by_id(ids["event"]).payload
    assert payload == {"customer": {"email": "[erased]"}}


@pytest.mark.usefixtures("txn")
def test_export_holds_every_row_erase_touches() -> None:
    world = seed_mentions()
    user = world["user"]
    exported = UserQueries.export(user.id)
    exported_ids = {str(r["id"]) for rows in exported.values() for r in rows}
    before = snapshot()
    erase(user.id, world["admin"].id, reason="request")
    after = snapshot()
    # rows deleted or changed, by their first column (their id)
    touched = {json.loads(values)[0] for _, values in before - after}
    assert touched, "erase changed nothing"
    assert touched - exported_ids == set()
    for key in ("audit_tenant", "impersonation", "notification_data", "event"):
        assert world["ids"][key] in touched


@pytest.mark.usefixtures("txn")
def test_only_erase_writes_user_erase_rows() -> None:
    user, admin = make_user(), m.AdminUser.create(id=new_id(), email="x@example.net", status="active")
    for action in ("USER_ERASE", "IMPERSONATION_START", "ADMIN_ROLE_GRANT"):
        with pytest.raises(PermissionDeniedError):
            AuditLogQueries.append(admin.id, action=action, target_type="user", target_id=user.id)
    assert m.AdminAuditLog.select().count() == 0


def test_a_user_erase_row_for_a_live_user_lets_nothing_through(fresh_db: str) -> None:
    user, admin = make_user(), m.AdminUser.create(id=new_id(), email="y@example.net")
    trail = m.AdminAuditLog.create(id=new_id(), admin_user=admin.id, action="USER_UPDATE",
                                   target_type="user", target_id=user.id, reason="kept")  # fmt: skip
    # written past the library (a raw insert, as the app role may): the user still exists
    m.AdminAuditLog.create(id=new_id(), admin_user=admin.id, action="USER_ERASE",
                           target_type="user", target_id=user.id,
                           metadata={"redacted_audit_rows": [trail.id]})  # fmt: skip
    p = db.obj.param
    for sql in (f"UPDATE admin_audit_log SET target_id = NULL WHERE id = {p}",
                f"UPDATE admin_audit_log SET reason = NULL WHERE id = {p}"):  # fmt: skip
        with pytest.raises(Exception, match="append-only"), db.atomic():
            db.execute_sql(sql, [trail.id])
    assert m.AdminAuditLog.get_by_id(trail.id).reason == "kept"


def test_after_an_erasure_only_the_rows_it_lists_can_change(fresh_db: str) -> None:
    world = seed_mentions()
    erase(world["user"].id, world["admin"].id, reason="request")
    p = db.obj.param
    listed, unlisted = world["ids"]["audit_tenant"], world["ids"]["audit_other"]
    with pytest.raises(Exception, match="append-only"), db.atomic():
        db.execute_sql(f"UPDATE admin_audit_log SET reason = 'x' WHERE id = {p}", [unlisted])
    with pytest.raises(Exception, match="append-only"), db.atomic():  # identity stays
        db.execute_sql(f"UPDATE admin_audit_log SET action = 'X' WHERE id = {p}", [listed])


def test_user_erase_command_lists_the_free_text_to_review(fresh_db: str) -> None:
    world = seed_mentions()
    db.close()
    args = ["user", "erase", EMAIL, "--actor", "ops@example.net", "--reason", "asked",
            "--database", fresh_db, "--yes"]  # fmt: skip
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    assert "3 free-text value(s)" in out.output
    for key in ("todo_other", "tenant_note", "notification_title"):
        assert world["ids"][key] in out.output
    init_db(fresh_db)
