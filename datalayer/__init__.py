"""datalayer: the data layer of a multi-tenant SaaS on PostgreSQL (and SQLite)."""

from __future__ import annotations

from datalayer.db import atomic, connection_context, db, init_db, retrying
from datalayer.errors import (
    ConflictError,
    DataLayerError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)

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
]
