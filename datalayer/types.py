"""The id of each table as its own type, and the closed sets of values as ``Literal``s.

An id is a ``str`` at run time (``typing.NewType`` costs nothing); to mypy a ``TodoId``
is not a ``UserId``, so a call with two ids swapped is an error before it runs:

    todo = TodoQueries.create(user["id"], {"title": "x"})
    TodoQueries.delete(user["id"], todo["id"])   # mypy: expected "TodoId", got "UserId"

Ids come typed out of every DTO. An id from elsewhere (a URL, a message) is wrapped
once where it enters: ``TodoId(request.path_params["todo_id"])``.

The ``Literal``s are the one spelling of each closed set: the models' tuples, and so
the database's CHECK constraints and the schemas' choices, are ``get_args`` of them.
This module imports nothing of the package (the lowest layer).
"""

from __future__ import annotations

from typing import Literal, NewType

__all__ = [
    # ids
    "AccountId",
    "AdminFlagId",
    "AdminSessionId",
    "AdminUserId",
    "AuditLogId",
    "DeliveryId",
    "ImpersonationSessionId",
    "JwksId",
    "NoteId",
    "NotificationId",
    "NotificationPreferenceId",
    "NotificationTargetId",
    "SessionId",
    "SubscriptionEventId",
    "SubscriptionId",
    "TenantActivityId",
    "TenantId",
    "TenantInviteId",
    "TenantMemberId",
    "TodoId",
    "UserActivityId",
    "UserId",
    "VerificationId",
    "WaitlistId",
    # closed sets
    "AdminStatus",
    "AnalyticsConsent",
    "AuditTargetType",
    "Channel",
    "DeliveryStatus",
    "IngestOutcome",
    "FlagTargetType",
    "FlagType",
    "ImpersonationEndReason",
    "ImpersonationScope",
    "InviteRole",
    "InviteStatus",
    "LifecycleStage",
    "MemberSubRole",
    "NotificationType",
    "Provider",
    "Role",
    "SubscriptionStatus",
    "TenantType",
    "UserAdminRole",
]

# -- ids, one per table (auth, tenant, notifications, subscriptions, features, admin) --
UserId = NewType("UserId", str)
SessionId = NewType("SessionId", str)
AccountId = NewType("AccountId", str)
VerificationId = NewType("VerificationId", str)
JwksId = NewType("JwksId", str)
TenantId = NewType("TenantId", str)
TenantMemberId = NewType("TenantMemberId", str)
TenantInviteId = NewType("TenantInviteId", str)
TenantActivityId = NewType("TenantActivityId", str)
NotificationId = NewType("NotificationId", str)
DeliveryId = NewType("DeliveryId", str)
NotificationPreferenceId = NewType("NotificationPreferenceId", str)
NotificationTargetId = NewType("NotificationTargetId", str)
SubscriptionId = NewType("SubscriptionId", str)
SubscriptionEventId = NewType("SubscriptionEventId", str)
TodoId = NewType("TodoId", str)
WaitlistId = NewType("WaitlistId", str)
UserActivityId = NewType("UserActivityId", str)
AdminUserId = NewType("AdminUserId", str)
AuditLogId = NewType("AuditLogId", str)
AdminSessionId = NewType("AdminSessionId", str)
ImpersonationSessionId = NewType("ImpersonationSessionId", str)
AdminFlagId = NewType("AdminFlagId", str)
NoteId = NewType("NoteId", str)  # admin_user_notes and admin_tenant_notes

# -- closed sets ------------------------------------------------------------------------
# auth
AnalyticsConsent = Literal["disabled", "anonymous", "enabled"]
LifecycleStage = Literal["new", "activated", "engaged", "at_risk", "churned"]
UserAdminRole = Literal["read_only", "support_rw", "super_admin"]
# tenant
TenantType = Literal["team", "organization", "group", "family"]
Role = Literal["owner", "admin", "member"]
MemberSubRole = Literal["editor", "viewer", "contributor", "moderator"]
InviteRole = Literal["admin", "member"]
InviteStatus = Literal["pending", "accepted", "expired", "revoked"]
# notifications (the original package's catalogue of types)
NotificationType = Literal[
    "direct_message",
    "milestone",
    "kudos_sent",
    "todo_assigned",
    "todo_nudge",
    "todo_completed",
    "event_created",
    "event_reminder",
    "event_changed",
    "achievement",
    "limit_alert",
    "survey_created",
    "member_joined",
    "member_invited",
    "settings_changed",
]
Channel = Literal["in_app", "push", "email"]
DeliveryStatus = Literal["pending", "processing", "sent", "failed", "skipped"]
# subscriptions
SubscriptionStatus = Literal["trialing", "active", "past_due", "canceled", "expired", "paused"]
Provider = Literal["polar", "revenuecat"]
IngestOutcome = Literal[
    "applied", "duplicate_ignored", "stale_ignored", "ignored_type", "not_linked"
]
# admin
AdminStatus = Literal["active", "suspended", "pending"]
AuditTargetType = Literal[
    "user", "tenant", "subscription", "admin_user", "webhook_event", "system"
]
ImpersonationScope = Literal["read_only", "read_write"]
ImpersonationEndReason = Literal["manual", "expired", "revoked", "logout"]
FlagTargetType = Literal["user", "tenant"]
FlagType = Literal["at_risk", "vip", "do_not_contact", "under_review", "beta_tester", "custom"]
