"""Queries of the admin domain: back-office users, roles, the audit trail, and the admin
console's sessions, impersonations, support flags and notes."""

from __future__ import annotations

from datalayer.queries.admin.audit_log import AuditLogQueries
from datalayer.queries.admin.flags import AdminFlagQueries
from datalayer.queries.admin.impersonations import ImpersonationQueries
from datalayer.queries.admin.notes import AdminNoteQueries
from datalayer.queries.admin.roles import AdminRoleQueries
from datalayer.queries.admin.sessions import AdminSessionQueries
from datalayer.queries.admin.users import AdminUserQueries

__all__ = [
    "AdminFlagQueries",
    "AdminNoteQueries",
    "AdminRoleQueries",
    "AdminSessionQueries",
    "AdminUserQueries",
    "AuditLogQueries",
    "ImpersonationQueries",
]
