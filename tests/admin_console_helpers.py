"""Helpers of the admin console tests: admins with permissions, audit rows, row counts."""

from __future__ import annotations

import itertools
from typing import Any

from datalayer import AdminRoleQueries, AdminUserQueries
from datalayer.models import AdminAuditLog

_seq = itertools.count(1)


def new_admin(*permissions: str, **data: Any) -> str:
    """Create an active admin holding ``permissions`` (through a role of its own)."""
    n = next(_seq)
    data.setdefault("email", f"console-admin{n}-{id(data)}@example.com")
    data.setdefault("status", "active")
    admin = AdminUserQueries.create(None, data)["id"]
    if permissions:
        key = f"console_role_{n}_{id(data)}"
        AdminRoleQueries.upsert_role(key, name=key, permissions=list(permissions))
        AdminRoleQueries.grant(admin, admin, role_key=key)
    return admin


def audit_rows(**where: Any) -> list[AdminAuditLog]:
    """The audit rows matching every ``column=value`` given, oldest first."""
    query = AdminAuditLog.select()
    for column, value in where.items():
        query = query.where(getattr(AdminAuditLog, column) == value)
    return list(query.order_by(AdminAuditLog.created_at, AdminAuditLog.id))


def actions(**where: Any) -> list[str]:
    return [row.action for row in audit_rows(**where)]
