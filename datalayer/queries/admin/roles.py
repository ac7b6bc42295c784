"""Admin roles: named permission sets, granted to admin users (audited)."""

from __future__ import annotations

from typing import Any, cast

from datalayer.errors import error_boundary
from datalayer.models import AdminRole, AdminUser, AdminUserRole
from datalayer.queries.admin._audit import audit
from datalayer.queries.base import read, write
from datalayer.schemas.admin import AdminRoleDTO, admin_role_dumper, upsert_admin_role_schema
from datalayer.schemas.base import check_id, load, require
from datalayer.types import AdminUserId


def _permission(value: Any) -> str:
    return cast(
        str,
        require(
            "permission",
            value,
            lambda v: isinstance(v, str) and 0 < len(v) <= 200,
            "Must be a non-empty permission string.",
        ),
    )


@error_boundary
class AdminRoleQueries:
    """Roles and grants. ``grant`` and ``revoke`` are idempotent and return whether they
    changed anything; only a change is audited (the audit trail records what happened,
    and a repeated grant changes nothing).
    """

    @staticmethod
    def upsert_role(
        key: str, *, name: str, permissions: list[str], description: str | None = None
    ) -> AdminRoleDTO:
        """Create the role, or replace its name, permissions and description.

        Back-office code (setting the console's roles up). Permissions are stored sorted
        and without duplicates.

        Returns:
            The role as it is now.

        Raises:
            ValidationError: ``key``, ``name``, ``permissions`` or ``description`` is not
                valid; nothing was written.
        """
        values = load(
            upsert_admin_role_schema,
            {"key": key, "name": name, "permissions": permissions, "description": description},
        )
        values["permissions"] = sorted(set(values["permissions"]))
        query = (
            AdminRole.insert(**values)
            .on_conflict(
                conflict_target=[AdminRole.key],
                preserve=[AdminRole.name, AdminRole.permissions, AdminRole.description],
            )
            .returning(*admin_role_dumper.fields)
        )
        with write():
            return admin_role_dumper.written_one(query)

    @staticmethod
    def grant(
        admin_user_id: AdminUserId, actor_admin_id: AdminUserId, *, role_key: str, reason: str | None = None
    ) -> bool:
        """Grant the role (audited); False, and no audit row, when it was already granted.

        Back-office code acting as ``actor_admin_id``; the permission the acting admin
        needs is in "Who may do what in the console".

        Returns:
            True when it was granted now; False when the admin already held it.

        Raises:
            ValidationError: an id or ``reason`` is not valid.
            NotFoundError: the admin, the role or the actor does not exist.
        """
        check_id("admin_user_id", admin_user_id)
        check_id("role_key", role_key)
        check_id("actor_admin_id", actor_admin_id)
        query = (
            AdminUserRole.insert(
                admin_user=admin_user_id, role_key=role_key, granted_by=actor_admin_id
            )
            .on_conflict(
                action="NOTHING", conflict_target=[AdminUserRole.admin_user, AdminUserRole.role_key]
            )
            .returning(AdminUserRole.admin_user)
        )
        with write():
            if not list(query.tuples().execute()):
                return False
            audit(
                actor_admin_id,
                "ADMIN_ROLE_GRANT",
                "admin_user",
                admin_user_id,
                reason=reason,
                metadata={"role_key": role_key},
            )
        return True

    @staticmethod
    def revoke(
        admin_user_id: AdminUserId, actor_admin_id: AdminUserId, *, role_key: str, reason: str | None = None
    ) -> bool:
        """Revoke the role (audited); False, and no audit row, when it was not granted.

        Back-office code acting as ``actor_admin_id``.

        Returns:
            True when it was revoked now; False when the admin did not hold it.

        Raises:
            ValidationError: an id or ``reason`` is not valid.
            NotFoundError: the actor does not exist.
        """
        check_id("admin_user_id", admin_user_id)
        check_id("role_key", role_key)
        check_id("actor_admin_id", actor_admin_id)
        query = AdminUserRole.delete().where(
            (AdminUserRole.admin_user == admin_user_id) & (AdminUserRole.role_key == role_key)
        )
        with write():
            if query.execute() == 0:
                return False
            audit(
                actor_admin_id,
                "ADMIN_ROLE_REVOKE",
                "admin_user",
                admin_user_id,
                reason=reason,
                metadata={"role_key": role_key},
            )
        return True

    @staticmethod
    def permissions_for(admin_user_id: AdminUserId) -> list[str]:
        """Return the sorted union of the admin's roles' permissions (none when suspended).

        Back-office code deciding what an admin may do.

        Returns:
            The permissions; an empty list when the admin holds no role, is suspended or
            does not exist.

        Raises:
            ValidationError: ``admin_user_id`` is not a valid id.
        """
        check_id("admin_user_id", admin_user_id)
        query: Any = (
            AdminRole.select(AdminRole.permissions)
            .join(AdminUserRole, on=(AdminUserRole.role_key == AdminRole.key))
            .join(AdminUser, on=(AdminUser.id == AdminUserRole.admin_user))
            .where((AdminUser.id == admin_user_id) & (AdminUser.status != "suspended"))
        )
        with read():
            return sorted({p for (permissions,) in query.tuples() for p in permissions or ()})

    @staticmethod
    def has_permission(admin_user_id: AdminUserId, *, permission: str) -> bool:
        """Tell whether one of the admin's roles grants ``permission`` (exact match).

        Back-office code deciding what an admin may do.

        Returns:
            True when it does; False otherwise (also for a suspended or unknown admin).

        Raises:
            ValidationError: the id or ``permission`` is not valid.
        """
        return _permission(permission) in AdminRoleQueries.permissions_for(admin_user_id)

    @staticmethod
    def find_role(key: str) -> AdminRoleDTO | None:
        """Return the role with this key, or None.

        Back-office code.

        Returns:
            The role, or None when no role has this key.

        Raises:
            ValidationError: ``key`` is not valid.
        """
        check_id("key", key)
        with read():
            return admin_role_dumper.one(admin_role_dumper.select().where(AdminRole.key == key))


__all__ = ["AdminRoleQueries"]
