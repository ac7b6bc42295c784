"""The XxxQueries namespaces, a package per domain: the only thing callers need."""

from __future__ import annotations

from datalayer.connection.tracing import instrument_namespaces
from datalayer.errors import guard_namespace
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

# The boundary: whatever happens inside a public function, only a DataLayerError leaves
# it (the argument checks name the argument first; this is the net under them).
for _name in __all__:
    guard_namespace(globals()[_name])

# Optional OpenTelemetry: each public function a span named after it (datalayer.connection.tracing;
# without opentelemetry-api installed nothing is wrapped).
instrument_namespaces(globals()[_name] for _name in __all__)
