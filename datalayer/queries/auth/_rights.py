"""A user's data rights: export every row about them, erase them (UserQueries.export/erase).

Each table that can refer to a user is listed once, in ``_ABOUT``: how to find the
user's rows and the dumper that makes them DTOs (secrets are never dumped). Erasure
deletes those rows itself, table by table, so it can return exact counts, and
anonymizes the rows that must outlive the user: notifications they acted in, the
impersonation history about them, subscriptions they bought, JSON data and payloads
that mention them (``_mentions``), and the audit log (whose append-only trigger lets
only that redaction through, only for a user who no longer exists, and only for the
rows the erasure's own USER_ERASE row names). Free text others wrote about them is
listed for a person to review. ``export`` returns every row ``erase`` touches.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

from datalayer import models as m
from datalayer.connection.database import db
from datalayer.errors import ConflictError, NotFoundError
from datalayer.queries.admin_rights import USERS_WRITE, require_admin
from datalayer.queries.auth._mentions import (
    Needles,
    mentioning,
    review,
    scrub_json,
)
from datalayer.queries.base import for_update
from datalayer.schemas.admin import admin_audit_log_dumper
from datalayer.schemas.admin_console import (
    admin_flag_dumper,
    admin_impersonation_session_dumper,
    admin_user_note_dumper,
)
from datalayer.schemas.auth import (
    ErasureResult,
    account_dumper,
    session_dumper,
    user_dumper,
    verification_dumper,
)
from datalayer.schemas.features import todo_dumper, user_activity_daily_dumper, waitlist_dumper
from datalayer.schemas.notifications import (
    notification_delivery_dumper,
    notification_dumper,
    notification_preference_dumper,
    notification_target_dumper,
)
from datalayer.schemas.rights import UserExport
from datalayer.schemas.subscriptions import subscription_dumper, subscription_event_dumper
from datalayer.schemas.tenant import tenant_invite_dumper, tenant_member_dumper

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
        raise NotFoundError(entity="user", id=user_id)
    return row


def export_user(user_id: str) -> UserExport:
    """Every row about the user, by table name, as DTOs (one query per table)."""
    _, email, _ = _user(user_id)
    exported: dict[str, list[Any]] = {}
    for table, model, dumper, rows in _about():
        query = dumper.select().where(rows(model, user_id, email)).order_by(model._meta.primary_key)
        exported[table] = dumper.many(query)
    exported.update(
        _kept_about(user_id, email, Needles(user_id, email, exported["user"][0]["name"]))
    )
    return cast(UserExport, exported)  # the keys: tests/test_result_types.py


def _ids(query: Any) -> list[Any]:
    return [row[0] for row in query.tuples()]


def _by_ids(dumper: Any, model: Any, ids: list[Any]) -> list[Any]:
    key = model._meta.primary_key
    return dumper.many(dumper.select().where(key.in_(ids)).order_by(key)) if ids else []


def _kept_about(user_id: str, email: str, needles: Needles) -> dict[str, list[Any]]:
    """The rows erase keeps but anonymizes or scrubs: exported too (every row it touches)."""
    n, i, a = m.Notification, m.AdminImpersonationSession, m.AdminAuditLog
    bought = m.Subscription.purchased_by_user == user_id
    others = [
        r[0] for r in mentioning(n, ["title", "body", "data"], needles, n.recipient_user != user_id)
    ]
    acted = _ids(n.select(n.id).where(n.actor_user == user_id))
    sessions = _ids(i.select(i.id).where(i.target_user == user_id))
    sessions += [r[0] for r in mentioning(i, ["reason", "metadata"], needles)]
    audit = _ids(a.select(a.id).where(_audit_target(user_id)))
    audit += _audit_mentions(user_id, needles)
    events = [r[0] for r in mentioning(m.SubscriptionEvent, ["payload"], needles)]
    verifications = m.Verification.identifier == email
    return {
        "notifications_about": _by_ids(notification_dumper, n, sorted({*acted, *others})),
        "subscriptions": subscription_dumper.many(subscription_dumper.select().where(bought)),
        "admin_impersonation_sessions": _by_ids(
            admin_impersonation_session_dumper, i, sorted(set(sessions))
        ),
        "admin_audit_log": _by_ids(admin_audit_log_dumper, a, sorted(set(audit))),
        "subscription_events": _by_ids(subscription_event_dumper, m.SubscriptionEvent, events),
        "verification": verification_dumper.many(verification_dumper.select().where(verifications)),
    }


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


def _anonymize_acted(user_id: str, needles: Needles) -> int:
    """Notifications the user acted in (others' inboxes): no id, name or email of theirs."""
    n = m.Notification
    query: Any = n.select(n.id, n.title, n.body, n.data).where(n.actor_user == user_id)
    rows: list[tuple[Any, ...]] = list(query.tuples())
    for note_id, title, body, data in rows:
        n.update(
            actor_user=None,
            title=needles.scrub(title),
            body=needles.scrub(body),
            data=needles.scrub(data),
        ).where(n.id == note_id).execute()
    return len(rows)


def _anonymize_impersonations(user_id: str, needles: Needles) -> int:
    """Impersonations of the user lose their target; any reason or metadata naming them is scrubbed."""
    i = m.AdminImpersonationSession
    count = int(i.update(target_user=None).where(i.target_user == user_id).execute())
    for row_id, reason, metadata in mentioning(i, ["reason", "metadata"], needles):
        i.update(reason=needles.scrub(reason), metadata=needles.scrub(metadata)).where(
            i.id == row_id
        ).execute()
        count += 1
    return count


def _set_null(model_name: str, column: str, user_id: str) -> int:
    model = getattr(m, model_name, None)
    if model is None:
        return 0
    field = getattr(model, column)
    return int(model.update({field: None}).where(field == user_id).execute())


def _audit_target(user_id: str) -> Any:
    a = m.AdminAuditLog
    return (a.target_type == "user") & (a.target_id == user_id) & (a.action != "USER_ERASE")


def _audit_mentions(user_id: str, needles: Needles) -> list[str]:
    """Other audit rows whose reason, user agent or metadata mention the user."""
    a = m.AdminAuditLog
    others = ~_audit_target(user_id) & (a.action != "USER_ERASE")
    return [r[0] for r in mentioning(a, ["reason", "user_agent", "metadata"], needles, others)]


def _scrub_audit(row_ids: list[str], needles: Needles) -> int:
    """Scrub the user's identifiers from the audit rows the USER_ERASE row lists."""
    a, p = m.AdminAuditLog, db.obj.param
    sql = (
        f"UPDATE admin_audit_log SET reason = {p}, user_agent = {p}, metadata = {p} WHERE id = {p}"
    )
    query: Any = a.select(a.id, a.reason, a.user_agent, a.metadata).where(a.id.in_(row_ids))
    for row_id, reason, agent, metadata in query.tuples() if row_ids else ():
        scrubbed = needles.scrub(metadata)
        values = [needles.scrub(reason), needles.scrub(agent), json.dumps(scrubbed), row_id]
        db.execute_sql(sql, values)
    return len(row_ids)


def _redact_audit(user_id: str) -> int:
    """Audit rows about the user lose their target id and personal details.

    The append-only trigger allows exactly this UPDATE (target_id to NULL, the row's
    identity unchanged) of a 'user' row once a USER_ERASE row names that user and the
    user no longer exists; the model refuses every update, so it is written as SQL.
    """
    p = db.obj.param
    sql = (
        "UPDATE admin_audit_log SET target_id = NULL, reason = NULL, ip = NULL, "
        f"user_agent = NULL, metadata = {p} "
        f"WHERE target_type = 'user' AND target_id = {p} AND action <> 'USER_ERASE'"
    )
    return int(db.execute_sql(sql, [json.dumps({"erased": True}), user_id]).rowcount)


def erase_user(
    user_id: str, actor_admin_id: str, reason: str, *, session_token: str | None
) -> ErasureResult:
    """Delete the user and what is theirs; anonymize what must stay; audit it. One transaction.

    The actor needs ``users:write`` and, given ``session_token``, a stepped-up session;
    ``None`` is for ``datalayer user erase``, which acts with the database's credentials.
    """
    require_admin(
        actor_admin_id, USERS_WRITE, session_token=session_token, step_up=session_token is not None
    )
    _, email, name = _user(user_id, lock=True)
    refuse_last_owner(user_id)
    needles = Needles(user_id, email, name)
    counts: dict[str, int] = {}
    counts["notifications_acted_in_anonymized"] = _anonymize_acted(user_id, needles)
    counts["notifications_data_scrubbed"] = scrub_json(m.Notification, "data", needles)
    counts["subscription_events_scrubbed"] = scrub_json(m.SubscriptionEvent, "payload", needles)
    counts["subscriptions_anonymized"] = _set_null("Subscription", "purchased_by_user", user_id)
    counts["impersonation_sessions_anonymized"] = _anonymize_impersonations(user_id, needles)
    for table, model, _, rows in reversed(_about()):  # children before the user row
        counts[table] = int(model.delete().where(rows(model, user_id, email)).execute())
    counts["verification"] = int(
        m.Verification.delete().where(m.Verification.identifier == email).execute()
    )
    mentions = _audit_mentions(user_id, needles)
    m.AdminAuditLog.insert(
        id=m.new_id(), admin_user=actor_admin_id, action="USER_ERASE", target_type="user",
        target_id=user_id, reason=needles.scrub(reason),
        metadata={"deleted": dict(counts), "redacted_audit_rows": mentions},
    ).execute()  # fmt: skip
    redacted = _redact_audit(user_id) + _scrub_audit(mentions, needles)
    counts["admin_audit_log_redacted"] = redacted
    return {"counts": counts, "review": review(needles)}
