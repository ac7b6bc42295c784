"""Admin roles: named permission sets, granted to admin users (audited)."""

from __future__ import annotations

from typing import Any, cast

from datalayer.errors import error_boundary
from datalayer.models import AdminRole, AdminUser, AdminUserRole
from datalayer.queries.admin._audit import audit
from datalayer.queries.admin_rights import (
    ADMIN_ROLES_WRITE,
    check_token,
    keep_a_roles_writer,
    lock_rights,
    not_themselves,
    require_admin,
)
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


def _require_role_writer(admin_user_id: str, actor_admin_id: str, session_token: Any) -> None:
    """The actor changes someone else's roles, holds admin_roles:write, and is stepped up."""
    token = check_token("session_token", session_token)
    not_themselves(actor_admin_id, admin_user_id, "roles")
    require_admin(actor_admin_id, ADMIN_ROLES_WRITE, session_token=token, step_up=True)


@error_boundary
class AdminRoleQueries:
    """Roles and grants. ``grant`` and ``revoke`` are idempotent and return whether they
    changed anything; only a change is audited (the audit trail records what happened,
    and a repeated grant changes nothing).
    """

    @staticmethod
    def upsert_role(
        key: str,
        actor_admin_id: AdminUserId,
        *,
        name: str,
        permissions: list[str],
        description: str | None = None,
    ) -> AdminRoleDTO:
        """Create the role, or replace its name, permissions and description (audited
        ADMIN_ROLE_UPSERT).

        Permissions are stored sorted and without duplicates.

        Returns:
            The role as it is now.

        Raises:
            ValidationError: ``key``, ``name``, ``permissions`` or ``description`` is not
                valid; nothing was written.
            PermissionDeniedError: the actor is not an active admin with
                ``admin_roles:write``.
            ConflictError: the change would leave no active admin holding
                ``admin_roles:write``.
        """
        check_id("actor_admin_id", actor_admin_id)
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
            lock_rights()  # first: the actor's right is read after a concurrent change
            require_admin(actor_admin_id, ADMIN_ROLES_WRITE)
            before = admin_role_dumper.one(
                admin_role_dumper.select().where(AdminRole.key == values["key"])
            )
            row = admin_role_dumper.written_one(query)
            keep_a_roles_writer()
            audit(actor_admin_id, "ADMIN_ROLE_UPSERT", "system", row["key"],
                  metadata={"role_key": row["key"], "permissions": row["permissions"],
                            "before": None if before is None else before["permissions"]})  # fmt: skip
        return row

    @staticmethod
    def grant(
        admin_user_id: AdminUserId,
        actor_admin_id: AdminUserId,
        *,
        role_key: str,
        session_token: str,
        reason: str | None = None,
    ) -> bool:
        """Grant the role (audited); False, and no audit row, when it was already granted.

        Needs ``admin_roles:write`` and ``session_token``, the actor's stepped-up admin
        session; no admin changes their own roles.

        Returns:
            True when it was granted now; False when the admin already held it.

        Raises:
            ValidationError: an id or ``reason`` is not valid.
            PermissionDeniedError: the actor is not an active admin with
                ``admin_roles:write`` acting through a stepped-up session, or changes
                their own roles.
            NotFoundError: the admin or the role does not exist.
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
            _require_role_writer(admin_user_id, actor_admin_id, session_token)
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
        admin_user_id: AdminUserId,
        actor_admin_id: AdminUserId,
        *,
        role_key: str,
        session_token: str,
        reason: str | None = None,
    ) -> bool:
        """Revoke the role (audited); False, and no audit row, when it was not granted.

        As ``grant``; and the last active admin holding ``admin_roles:write`` keeps it.

        Returns:
            True when it was revoked now; False when the admin did not hold it.

        Raises:
            ValidationError: an id or ``reason`` is not valid.
            PermissionDeniedError: as for ``grant``.
            ConflictError: the admin is the last active holder of ``admin_roles:write``.
        """
        check_id("admin_user_id", admin_user_id)
        check_id("role_key", role_key)
        check_id("actor_admin_id", actor_admin_id)
        query = AdminUserRole.delete().where(
            (AdminUserRole.admin_user == admin_user_id) & (AdminUserRole.role_key == role_key)
        )
        with write():
            lock_rights()
            _require_role_writer(admin_user_id, actor_admin_id, session_token)
            if query.execute() == 0:
                return False
            keep_a_roles_writer()
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
