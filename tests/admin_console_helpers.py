"""Helpers of the admin console tests: admins with permissions, stepped-up sessions, audit rows.

Rows are written through the models (a factory, like tests/factories.py): the queries
under test check who acts, and a test's own setup should not depend on them.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from typing import Any

from datalayer.models import AdminAuditLog, AdminRole, AdminSession, AdminUser, AdminUserRole
from datalayer.models.base import new_id, utcnow

_seq = itertools.count(1)

ROLES_WRITE = "admin_roles:write"


def new_admin(*permissions: str, **data: Any) -> str:
    """Create an active admin holding ``permissions`` (through a role of its own)."""
    n = next(_seq)
    data.setdefault("email", f"console-admin{n}-{id(data)}@example.com")
    data.setdefault("status", "active")
    admin = AdminUser.create(id=new_id(), **data).id
    if permissions:
        key = f"console_role_{n}_{id(data)}"
        AdminRole.create(key=key, name=key, permissions=sorted(set(permissions)))
        AdminUserRole.create(admin_user=admin, role_key=key, granted_by=admin)
    return str(admin)


def session_of(admin_id: str, *, step_up_seconds: int | None = 900, hours: float = 8) -> str:
    """Open a session of the admin, stepped up for ``step_up_seconds`` (None: not at all),
    by writing its row; return its token. Tests move the clock by writing these times."""
    now = utcnow()
    token = f"tok-{uuid.uuid4().hex}"
    until = None if step_up_seconds is None else now + dt.timedelta(seconds=step_up_seconds)
    AdminSession.create(
        id=new_id(), admin_user=admin_id, token=token, expires_at=now + dt.timedelta(hours=hours),
        step_up_verified_at=None if until is None else now, step_up_expires_at=until,
    )  # fmt: skip
    return token


def audit_rows(**where: Any) -> list[AdminAuditLog]:
    """The audit rows matching every ``column=value`` given, oldest first."""
    query = AdminAuditLog.select()
    for column, value in where.items():
        query = query.where(getattr(AdminAuditLog, column) == value)
    return list(query.order_by(AdminAuditLog.created_at, AdminAuditLog.id))


def actions(**where: Any) -> list[str]:
    return [row.action for row in audit_rows(**where)]


def give(admin_id: str, *permissions: str) -> None:
    """Grant the admin ``permissions`` through a new role (written through the models)."""
    key = f"given_{next(_seq)}_{uuid.uuid4().hex[:6]}"
    AdminRole.create(key=key, name=key, permissions=sorted(set(permissions)))
    AdminUserRole.create(admin_user=admin_id, role_key=key, granted_by=admin_id)


def erase(user_id: str, admin_id: str, **options: Any) -> Any:
    """``UserQueries.erase`` by ``admin_id``, given ``users:write`` and a stepped-up session."""
    from datalayer import UserQueries

    give(admin_id, "users:write")
    return UserQueries.erase(user_id, admin_id, session_token=session_of(admin_id), **options)
