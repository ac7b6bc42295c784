"""The first admin: made while no active admin holds ``admin_roles:write``
(``AdminUserQueries.bootstrap``, the ``datalayer admin bootstrap EMAIL`` command)."""

from __future__ import annotations

from typing import Any

from datalayer.errors import PermissionDeniedError
from datalayer.models import AdminRole, AdminUser, AdminUserRole
from datalayer.queries.admin._audit import audit
from datalayer.queries.admin_rights import (
    ADMIN_ROLES_WRITE,
    TENANTS_WRITE,
    USERS_IMPERSONATE,
    USERS_WRITE,
    lock_rights,
    roles_writers,
)
from datalayer.schemas.admin import AdminUserDTO, admin_user_dumper, create_admin_user_schema
from datalayer.schemas.base import load

BOOTSTRAP_ROLE = "super_admin"
BOOTSTRAP_PERMISSIONS = (
    ADMIN_ROLES_WRITE,
    "tenants:read",
    TENANTS_WRITE,
    USERS_IMPERSONATE,
    "users:read",
    USERS_WRITE,
)


def _role() -> None:
    """Make the super_admin role (or give it ``admin_roles:write`` if it lacks it)."""
    current: Any = AdminRole.select(AdminRole.permissions).where(AdminRole.key == BOOTSTRAP_ROLE)
    row = current.tuples().first()
    if row is None:
        AdminRole.insert(
            key=BOOTSTRAP_ROLE, name="Super admin", permissions=list(BOOTSTRAP_PERMISSIONS)
        ).execute()
    elif ADMIN_ROLES_WRITE not in (row[0] or ()):
        permissions = sorted({*(row[0] or ()), ADMIN_ROLES_WRITE})
        AdminRole.update(permissions=permissions).where(AdminRole.key == BOOTSTRAP_ROLE).execute()


def bootstrap_admin(email: str, name: str | None = None) -> AdminUserDTO:
    """Make ``email`` an active admin holding ``admin_roles:write`` (audited ADMIN_BOOTSTRAP);
    PermissionDeniedError once an active admin holds it. Call inside write()."""
    values = load(create_admin_user_schema, {"email": email, "name": name})
    lock_rights()
    if roles_writers():
        raise PermissionDeniedError(
            f"an active admin already holds {ADMIN_ROLES_WRITE}: they create admins "
            "(AdminUserQueries.create) and grant roles"
        )
    query: Any = (
        AdminUser.insert(status="active", **values)
        .on_conflict(conflict_target=[AdminUser.email], preserve=[AdminUser.status])
        .returning(*admin_user_dumper.fields)
    )
    admin = admin_user_dumper.written_one(query)
    _role()
    AdminUserRole.insert(
        admin_user=admin["id"], role_key=BOOTSTRAP_ROLE, granted_by=admin["id"]
    ).on_conflict_ignore().execute()
    audit(admin["id"], "ADMIN_BOOTSTRAP", "admin_user", admin["id"],
          metadata={"role_key": BOOTSTRAP_ROLE})  # fmt: skip
    return admin


__all__ = ["BOOTSTRAP_PERMISSIONS", "BOOTSTRAP_ROLE", "bootstrap_admin"]
