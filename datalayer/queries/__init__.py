"""The XxxQueries namespaces, one module per domain: the only thing callers need."""

from __future__ import annotations

from datalayer.queries import admin, auth, features, notifications, subscriptions, tenant
from datalayer.queries.admin import *  # noqa: F403
from datalayer.queries.auth import *  # noqa: F403
from datalayer.queries.features import *  # noqa: F403
from datalayer.queries.notifications import *  # noqa: F403
from datalayer.queries.subscriptions import *  # noqa: F403
from datalayer.queries.tenant import *  # noqa: F403

__all__ = [
    *auth.__all__,
    *tenant.__all__,
    *notifications.__all__,
    *subscriptions.__all__,
    *features.__all__,
    *admin.__all__,
]
