"""A user's data rights: export every row about them, erase them (UserQueries.export/erase).

Each table that can refer to a user is listed once, in ``_ABOUT``: how to find the
user's rows and the dumper that makes them DTOs (secrets are never dumped). Erasure
deletes those rows itself, table by table, so it can return exact counts, and
anonymizes the rows that must outlive the user: notifications they acted in, the
impersonation history about them, subscriptions they bought, and the audit log (whose
append-only trigger lets only that redaction through, and only after the erasure's own
USER_ERASE row is written).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from datalayer import models as m
from datalayer.connection.database import db
from datalayer.errors import ConflictError, NotFoundError
from datalayer.queries.base import for_update
from datalayer.schemas.admin_console import (
    admin_flag_dumper,
    admin_impersonation_session_dumper,
    admin_user_note_dumper,
)
from datalayer.schemas.auth import account_dumper, session_dumper, user_dumper
from datalayer.schemas.features import todo_dumper, user_activity_daily_dumper, waitlist_dumper
from datalayer.schemas.notifications import (
    notification_delivery_dumper,
    notification_dumper,
    notification_preference_dumper,
    notification_target_dumper,
)
from datalayer.schemas.subscriptions import subscription_dumper
from datalayer.schemas.tenant import tenant_invite_dumper, tenant_member_dumper

ERASED = "[erased]"

# table name -> (model, dumper, the user's rows): what export returns and erase deletes.
Rows = Callable[[Any, str, str], Any]  # (model, user id, email) -> condition


def _about() -> list[tuple[str, Any, Any, Rows]]:
    n, d = m.Notification, m.NotificationDelivery
    tables: list[tuple[str, Any, Any, Rows]] = [
        ("user", m.User, user_dumper, lambda t, uid, _: t.id == uid),
        ("session", m.Session, session_dumper, lambda t, uid, _: t.user == uid),
        ("account", m.Account, account_dumper, lambda t, uid, _: t.user == uid),
        ("tenant_members", m.TenantMember, tenant_member_dumper, lambda t, uid, _: t.user == uid),
        ("tenant_invites", m.TenantInvite, tenant_invite_dumper,
         lambda t, uid, email: (t.invited_by == uid) | (t.email == email)),
        ("notifications", n, notification_dumper, lambda t, uid, _: t.recipient_user == uid),
        ("notification_deliveries", d, notification_delivery_dumper,
         lambda t, uid, _: t.notification.in_(n.select(n.id).where(n.recipient_user == uid))),
        ("notification_preferences", m.NotificationPreference, notification_preference_dumper,
         lambda t, uid, _: t.user == uid),
        ("notification_targets", m.NotificationTarget, notification_target_dumper,
         lambda t, uid, _: t.user == uid),
        ("todos", m.Todo, todo_dumper, lambda t, uid, _: t.user == uid),
        ("user_activity_daily", m.UserActivityDaily, user_activity_daily_dumper,
         lambda t, uid, _: t.user == uid),
        ("waitlist", m.Waitlist, waitlist_dumper, lambda t, _, email: t.email == email),
    ]  # fmt: skip
    tables += [
        ("admin_user_notes", m.AdminUserNote, admin_user_note_dumper,
         lambda t, uid, _: t.user == uid),
        ("admin_flags", m.AdminFlag, admin_flag_dumper,
         lambda t, uid, _: (t.target_type == "user") & (t.target_id == uid)),
    ]  # fmt: skip
    return tables


def _user(user_id: str, *, lock: bool = False) -> Any:
    query: Any = m.User.select(m.User.id, m.User.email, m.User.name).where(m.User.id == user_id)
    row = (for_update(query) if lock else query).tuples().first()
    if row is None:
        raise NotFoundError(f"user {user_id} not found")
    return row


def export_user(user_id: str) -> dict[str, list[Any]]:
    """Every row about the user, by table name, as DTOs (one query per table)."""
    _, email, _ = _user(user_id)
    exported: dict[str, list[Any]] = {}
    for table, model, dumper, rows in _about():
        query = dumper.select().where(rows(model, user_id, email)).order_by(model._meta.primary_key)
        exported[table] = dumper.many(query)
    # Rows about them that erase keeps (anonymized): subscriptions they bought, the
    # impersonation sessions of which they were the target.
    bought = m.Subscription.purchased_by_user == user_id
    exported["subscriptions"] = subscription_dumper.many(subscription_dumper.select().where(bought))
    seen = m.AdminImpersonationSession.target_user == user_id
    exported["admin_impersonation_sessions"] = admin_impersonation_session_dumper.many(
        admin_impersonation_session_dumper.select().where(seen)
    )
    return exported


def refuse_last_owner(user_id: str) -> None:
    """ConflictError while the user is a tenant's last owner (owner rows locked, id order)."""
    tm = m.TenantMember
    owned = tm.select(tm.tenant).where((tm.user == user_id) & (tm.role == "owner"))
    owners: Any = (
        tm.select(tm.tenant, tm.user).where(tm.tenant.in_(owned) & (tm.role == "owner"))
        .order_by(tm.id)
    )  # fmt: skip
    count: dict[str, int] = {}
    for tenant_id, _ in for_update(owners).tuples():
        count[tenant_id] = count.get(tenant_id, 0) + 1
    alone = sorted(t for t, n in count.items() if n == 1)
    if alone:
        raise ConflictError(
            f"user {user_id} is the last owner of {len(alone)} tenant(s): transfer ownership "
            "or delete the tenant first"
        )


def _scrub(text: Any, needles: tuple[str, ...]) -> Any:
    if not isinstance(text, str):
        return text
    for needle in needles:
        if needle:
            text = text.replace(needle, ERASED)
    return text


def _anonymize_acted(user_id: str, needles: tuple[str, ...]) -> int:
    """Notifications the user acted in (others' inboxes): no id, name or email of theirs."""
    n = m.Notification
    query: Any = n.select(n.id, n.title, n.body, n.data).where(n.actor_user == user_id)
    rows: list[tuple[Any, ...]] = list(query.tuples())
    for note_id, title, body, data in rows:
        text = json.dumps(data) if data is not None else None
        mentioned = text is not None and any(x and x in text for x in needles)
        n.update(
            actor_user=None,
            title=_scrub(title, needles),
            body=_scrub(body, needles),
            data=None if mentioned else data,
        ).where(n.id == note_id).execute()
    return len(rows)


def _set_null(model_name: str, column: str, user_id: str) -> int:
    model = getattr(m, model_name, None)
    if model is None:
        return 0
    field = getattr(model, column)
    return int(model.update({field: None}).where(field == user_id).execute())


def _redact_audit(user_id: str) -> int:
    """Audit rows about the user lose their target id and personal details.

    The append-only trigger allows exactly this UPDATE (target_id to NULL, the row's
    identity unchanged) of a 'user' row once a USER_ERASE row names that user; the
    model refuses every update, so it is written as SQL.
    """
    p = db.obj.param
    sql = (
        "UPDATE admin_audit_log SET target_id = NULL, reason = NULL, ip = NULL, "
        f"user_agent = NULL, metadata = {p} "
        f"WHERE target_type = 'user' AND target_id = {p} AND action <> 'USER_ERASE'"
    )
    return int(db.execute_sql(sql, [json.dumps({"erased": True}), user_id]).rowcount)


def erase_user(user_id: str, actor_admin_id: str, reason: str) -> dict[str, int]:
    """Delete the user and what is theirs; anonymize what must stay; audit it. One transaction."""
    if m.AdminUser.select().where(m.AdminUser.id == actor_admin_id).count() == 0:
        raise NotFoundError(f"admin user {actor_admin_id} not found")
    _, email, name = _user(user_id, lock=True)
    refuse_last_owner(user_id)
    needles = tuple(x for x in (user_id, email, name) if x)
    counts: dict[str, int] = {}
    counts["notifications_acted_in_anonymized"] = _anonymize_acted(user_id, needles)
    counts["subscriptions_anonymized"] = _set_null("Subscription", "purchased_by_user", user_id)
    counts["impersonation_sessions_anonymized"] = _set_null(
        "AdminImpersonationSession", "target_user", user_id
    )
    for table, model, _, rows in reversed(_about()):  # children before the user row
        counts[table] = int(model.delete().where(rows(model, user_id, email)).execute())
    counts["verification"] = int(
        m.Verification.delete().where(m.Verification.identifier == email).execute()
    )
    m.AdminAuditLog.insert(
        id=m.new_id(), admin_user=actor_admin_id, action="USER_ERASE", target_type="user",
        target_id=user_id, reason=reason, metadata={"deleted": dict(counts)},
    ).execute()  # fmt: skip
    counts["admin_audit_log_redacted"] = _redact_audit(user_id)
    return counts
