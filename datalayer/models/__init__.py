"""Peewee models, one module per domain; ``ALL_MODELS`` lists them in foreign-key order."""

from __future__ import annotations

import peewee

from datalayer.models.admin import (
    AUDIT_APPEND_ONLY_SQL,
    AUDIT_APPEND_ONLY_SQLITE,
    AdminAuditLog,
    AdminRole,
    AdminUser,
    AdminUserRole,
)
from datalayer.models.admin_console import (
    AdminFlag,
    AdminImpersonationSession,
    AdminSession,
    AdminTenantNote,
    AdminUserNote,
)
from datalayer.models.auth import Account, Jwks, Session, User, Verification
from datalayer.models.base import BaseModel, TimestampTZField, new_id, utcnow
from datalayer.models.features import Todo, UserActivityDaily, Waitlist
from datalayer.models.notifications import (
    Notification,
    NotificationDelivery,
    NotificationPreference,
    NotificationTarget,
)
from datalayer.models.subscriptions import Subscription, SubscriptionEvent
from datalayer.models.tenant import Tenant, TenantActivityDaily, TenantInvite, TenantMember

ALL_MODELS: list[type[BaseModel]] = [
    User,
    Tenant,
    Session,
    Account,
    Verification,
    Jwks,
    TenantMember,
    TenantInvite,
    TenantActivityDaily,
    Notification,
    NotificationDelivery,
    NotificationPreference,
    NotificationTarget,
    Subscription,
    SubscriptionEvent,
    Todo,
    Waitlist,
    UserActivityDaily,
    AdminUser,
    AdminRole,
    AdminUserRole,
    AdminAuditLog,
    AdminSession,
    AdminImpersonationSession,
    AdminFlag,
    AdminUserNote,
    AdminTenantNote,
]


def create_all(database: peewee.Database | None = None) -> None:
    """Create every table from the models (tests and tooling; production uses migrations)."""
    database = database or BaseModel._meta.database
    with database.bind_ctx(ALL_MODELS):
        database.create_tables(ALL_MODELS)
        if isinstance(database, peewee.SqliteDatabase):
            for statement in AUDIT_APPEND_ONLY_SQLITE:
                # peewee's stubs leave Database.execute_sql unannotated.
                database.execute_sql(statement)  # type: ignore[no-untyped-call]
        else:
            # peewee's stubs leave out Model._schema (the SchemaManager).
            User._schema.create_foreign_key(User.active_tenant)  # type: ignore[attr-defined]
            for statement in AUDIT_APPEND_ONLY_SQL:
                database.execute_sql(statement)


def drop_all(database: peewee.Database | None = None) -> None:
    """Drop every table the models declare."""
    database = database or BaseModel._meta.database
    with database.bind_ctx(ALL_MODELS):
        database.drop_tables(
            list(reversed(ALL_MODELS)), cascade=not isinstance(database, peewee.SqliteDatabase)
        )


__all__ = [
    "ALL_MODELS",
    "Account",
    "AdminAuditLog",
    "AdminFlag",
    "AdminImpersonationSession",
    "AdminRole",
    "AdminSession",
    "AdminTenantNote",
    "AdminUser",
    "AdminUserNote",
    "AdminUserRole",
    "BaseModel",
    "Jwks",
    "Notification",
    "NotificationDelivery",
    "NotificationPreference",
    "NotificationTarget",
    "Session",
    "Subscription",
    "SubscriptionEvent",
    "Tenant",
    "TenantActivityDaily",
    "TenantInvite",
    "TenantMember",
    "TimestampTZField",
    "Todo",
    "User",
    "UserActivityDaily",
    "Verification",
    "Waitlist",
    "create_all",
    "drop_all",
    "new_id",
    "utcnow",
]
