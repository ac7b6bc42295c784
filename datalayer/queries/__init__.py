"""The XxxQueries namespaces, a package per domain: the only thing callers need."""

from __future__ import annotations

from datalayer.connection.tracing import instrument_namespaces
from datalayer.queries.admin import (
    AdminFlagQueries,
    AdminNoteQueries,
    AdminRoleQueries,
    AdminSessionQueries,
    AdminUserQueries,
    AuditLogQueries,
    ImpersonationQueries,
)
from datalayer.queries.auth import (
    AccountQueries,
    JwksQueries,
    SessionQueries,
    UserQueries,
    VerificationQueries,
)
from datalayer.queries.features import (
    TodoQueries,
    UserActivityQueries,
    WaitlistQueries,
)
from datalayer.queries.notifications import (
    DeliveryQueries,
    NotificationQueries,
    PreferenceQueries,
    TargetQueries,
)
from datalayer.queries.subscriptions import (
    SubscriptionEventQueries,
    SubscriptionQueries,
)
from datalayer.queries.tenant import (
    TenantActivityQueries,
    TenantInviteQueries,
    TenantMemberQueries,
    TenantQueries,
)

__all__ = [
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

# The error boundary is on each namespace, where it is defined (@error_boundary).
# Optional OpenTelemetry: each public function a span named after it (datalayer.connection.tracing;
# without opentelemetry-api installed nothing is wrapped).
instrument_namespaces(globals()[_name] for _name in __all__)
