"""The result of ``UserQueries.export``: every row about a user, by table, as DTOs."""

from __future__ import annotations

from typing import TypedDict

from datalayer.schemas.admin import AdminAuditLogDTO
from datalayer.schemas.admin_console import (
    AdminFlagDTO,
    AdminImpersonationSessionDTO,
    AdminUserNoteDTO,
)
from datalayer.schemas.auth import AccountDTO, SessionDTO, UserDTO, VerificationDTO
from datalayer.schemas.features import TodoDTO, UserActivityDailyDTO, WaitlistDTO
from datalayer.schemas.notifications import (
    NotificationDeliveryDTO,
    NotificationDTO,
    NotificationPreferenceDTO,
    NotificationTargetDTO,
)
from datalayer.schemas.subscriptions import SubscriptionDTO, SubscriptionEventDTO
from datalayer.schemas.tenant import TenantInviteDTO, TenantMemberDTO


class UserExport(TypedDict):
    """Every row about a user (``UserQueries.export``), by table name; no secret in any.

    ``notifications`` are the ones they received, ``notifications_about`` the others
    that name them (as actor or in their data); the admin tables and the billing events
    hold the rows about them that erasure anonymizes or scrubs.
    """

    user: list[UserDTO]
    session: list[SessionDTO]
    account: list[AccountDTO]
    tenant_members: list[TenantMemberDTO]
    tenant_invites: list[TenantInviteDTO]
    notifications: list[NotificationDTO]
    notification_deliveries: list[NotificationDeliveryDTO]
    notification_preferences: list[NotificationPreferenceDTO]
    notification_targets: list[NotificationTargetDTO]
    todos: list[TodoDTO]
    user_activity_daily: list[UserActivityDailyDTO]
    waitlist: list[WaitlistDTO]
    admin_user_notes: list[AdminUserNoteDTO]
    admin_flags: list[AdminFlagDTO]
    notifications_about: list[NotificationDTO]
    subscriptions: list[SubscriptionDTO]
    admin_impersonation_sessions: list[AdminImpersonationSessionDTO]
    admin_audit_log: list[AdminAuditLogDTO]
    subscription_events: list[SubscriptionEventDTO]
    verification: list[VerificationDTO]


__all__ = ["UserExport"]
