"""datalayer: the data layer of a multi-tenant SaaS on PostgreSQL (and SQLite).

    from datalayer import init_db, TodoQueries
    init_db()  # DATABASE_URL, else the embedded SQLite file datalayer.sqlite3
    page = TodoQueries.list_for_user(user_id)
"""

from __future__ import annotations

from datalayer.connection.database import atomic, connection_context, db, init_db
from datalayer.connection.retrying import retrying
from datalayer.errors import (
    ConflictError,
    DataLayerError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
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
    JwksQueries,
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
from datalayer.queries.base import Page

__all__ = [
    "ConflictError",
    "DataLayerError",
    "NotFoundError",
    "Page",
    "PermissionDeniedError",
    "ValidationError",
    "atomic",
    "connection_context",
    "db",
    "init_db",
    "retrying",
    # the query namespaces (datalayer.queries)
    # auth
    "UserQueries",
    "SessionQueries",
    "AccountQueries",
    "VerificationQueries",
    "JwksQueries",
    # tenant
    "TenantQueries",
    "TenantMemberQueries",
    "TenantInviteQueries",
    "TenantActivityQueries",
    # notifications
    "NotificationQueries",
    "DeliveryQueries",
    "PreferenceQueries",
    "TargetQueries",
    # subscriptions
    "SubscriptionEventQueries",
    "SubscriptionQueries",
    # features
    "TodoQueries",
    "WaitlistQueries",
    "UserActivityQueries",
    # admin
    "AdminUserQueries",
    "AdminRoleQueries",
    "AuditLogQueries",
    "AdminSessionQueries",
    "ImpersonationQueries",
    "AdminFlagQueries",
    "AdminNoteQueries",
]
