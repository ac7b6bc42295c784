"""datalayer: the data layer of a multi-tenant SaaS on PostgreSQL (and SQLite).

    from datalayer import init_db, TodoQueries
    init_db()  # DATABASE_URL, else the embedded SQLite file datalayer.sqlite3
    page = TodoQueries.list_for_user(user_id)
"""

from __future__ import annotations

from datalayer import queries
from datalayer.db import atomic, connection_context, db, init_db, retrying
from datalayer.errors import (
    ConflictError,
    DataLayerError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from datalayer.queries import *  # noqa: F403

__all__ = [
    "ConflictError",
    "DataLayerError",
    "NotFoundError",
    "PermissionDeniedError",
    "ValidationError",
    "atomic",
    "connection_context",
    "db",
    "init_db",
    "retrying",
    *queries.__all__,
]
