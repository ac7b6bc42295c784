"""Queries of the admin domain: back-office users, roles, the audit trail."""

from __future__ import annotations

from datalayer.queries.admin.audit_log import AuditLogQueries
from datalayer.queries.admin.roles import AdminRoleQueries
from datalayer.queries.admin.users import AdminUserQueries

__all__ = [
    "AdminRoleQueries",
    "AdminUserQueries",
    "AuditLogQueries",
]
