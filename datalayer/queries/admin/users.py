"""Queries of the admin domain: back-office users.

Every change an admin makes to another admin is written with its audit row in the same
transaction: either both are stored or neither is.
"""

from __future__ import annotations

from typing import Any

from datalayer import arguments
from datalayer.errors import NotFoundError, PermissionDeniedError, error_boundary
from datalayer.models import AdminUser
from datalayer.models.admin import ADMIN_STATUSES
from datalayer.models.base import utcnow
from datalayer.queries.admin._audit import audit
from datalayer.queries.admin._bootstrap import bootstrap_admin
from datalayer.queries.admin_rights import (
    ADMIN_ROLES_WRITE,
    keep_a_roles_writer,
    lock_rights,
    not_themselves,
    require_admin,
)
from datalayer.queries.base import for_update, read, write
from datalayer.schemas.admin import (
    AdminUserDTO,
    CreateAdminUserInput,
    admin_user_dumper,
    create_admin_user_schema,
)
from datalayer.schemas.base import check_id, load, require
from datalayer.types import AdminStatus, AdminUserId


def _is_email(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value.strip()) <= 255 and "\x00" not in value


@error_boundary
class AdminUserQueries:
    """Back-office users. ``password_hash`` is stored (already hashed) but never returned."""

    @staticmethod
    def find_by_id(admin_user_id: AdminUserId) -> AdminUserDTO | None:
        """Return the admin user with this id, or None.

        Back-office code (the console's own sign-in and pages).

        Returns:
            The admin user (no password hash), or None when none has this id.

        Raises:
            ValidationError: ``admin_user_id`` is not a valid id.
        """
        check_id("admin_user_id", admin_user_id)
        query = admin_user_dumper.select().where(AdminUser.id == admin_user_id)
        with read():
            return admin_user_dumper.one(query)

    @staticmethod
    def find_by_email(email: str) -> AdminUserDTO | None:
        """Return the admin user with this email (any letter case), or None.

        Back-office code (the console's sign-in).

        Returns:
            The admin user, or None when none has this email.

        Raises:
            ValidationError: ``email`` is not an email address.
        """
        require("email", email, _is_email, "Must be an email address.")
        # Emails are stored normalized (NFKC, trimmed, lower-cased: the Email field), so an
        # equality on the normalized input is case-insensitive and uses the unique index.
        query = admin_user_dumper.select().where(AdminUser.email == arguments.normalize_email(email))
        with read():
            return admin_user_dumper.one(query)

    @staticmethod
    def create(actor_admin_id: AdminUserId, data: CreateAdminUserInput) -> AdminUserDTO:
        """Create an admin user invited by ``actor_admin_id``, who needs ``admin_roles:write``
        (audited ADMIN_USER_CREATE; the first admin: ``bootstrap``).

        Back-office code acting as ``actor_admin_id``; the permission the acting admin
        needs is in "Who may do what in the console".

        Returns:
            The new admin user.

        Raises:
            ValidationError: ``data`` or the id is not valid; nothing was written.
            NotFoundError: ``actor_admin_id`` names no admin.
            ConflictError: an admin already has this email.
        """
        check_id("actor_admin_id", actor_admin_id)
        values = load(create_admin_user_schema, data)
        query = AdminUser.insert(invited_by=actor_admin_id, **values).returning(
            *admin_user_dumper.fields
        )
        with write():
            require_admin(actor_admin_id, ADMIN_ROLES_WRITE)
            row = admin_user_dumper.written_one(query)
            audit(actor_admin_id, "ADMIN_USER_CREATE", "admin_user", row["id"],
                  metadata={"email": row["email"], "status": row["status"]})  # fmt: skip
        return row

    @staticmethod
    def set_status(
        admin_user_id: AdminUserId, actor_admin_id: AdminUserId, *, status: AdminStatus, reason: str | None = None
    ) -> AdminUserDTO:
        """Change an admin's status, audited; a status already set changes and audits nothing.

        Needs ``admin_roles:write``; no admin changes their own status. A suspended admin
        holds no permission and cannot open a session.

        Returns:
            The admin user as it is now.

        Raises:
            ValidationError: ``status`` (active, suspended, pending), ``reason`` or an id
                is not valid.
            PermissionDeniedError: the actor is not an active admin with
                ``admin_roles:write``, or changes their own status.
            NotFoundError: ``admin_user_id`` names no admin.
            ConflictError: the admin is the last active holder of ``admin_roles:write``.
        """
        check_id("admin_user_id", admin_user_id)
        check_id("actor_admin_id", actor_admin_id)
        not_themselves(actor_admin_id, admin_user_id, "status")
        require(
            "status",
            status,
            lambda v: v in ADMIN_STATUSES,
            f"Must be one of: {', '.join(ADMIN_STATUSES)}.",
        )
        current_query = for_update(admin_user_dumper.select().where(AdminUser.id == admin_user_id))
        with write():
            lock_rights()  # first: the actor's right is read after a concurrent change
            require_admin(actor_admin_id, ADMIN_ROLES_WRITE)
            current = admin_user_dumper.one(current_query)
            if current is None:
                raise NotFoundError(entity="admin_user", id=admin_user_id)
            if current["status"] == status:
                return current
            query = (
                AdminUser.update(status=status)
                .where(AdminUser.id == admin_user_id)
                .returning(*admin_user_dumper.fields)
            )
            changed = admin_user_dumper.written_one(query)  # the row is locked above
            keep_a_roles_writer()
            audit(
                actor_admin_id,
                "ADMIN_STATUS_CHANGE",
                "admin_user",
                admin_user_id,
                reason=reason,
                metadata={"from": current["status"], "to": status},
            )
        return changed

    @staticmethod
    def record_login(
        admin_user_id: AdminUserId, *, ip: str | None = None, user_agent: str | None = None
    ) -> AdminUserDTO:
        """Stamp the admin's last login, audited; PermissionDeniedError when suspended.

        The console's sign-in, once it checked the admin's credentials.

        Returns:
            The admin user with its new ``last_login_at``.

        Raises:
            ValidationError: the id, ``ip`` or ``user_agent`` is not valid.
            PermissionDeniedError: the admin is suspended.
            NotFoundError: no admin has this id.
        """
        check_id("admin_user_id", admin_user_id)
        query = (
            AdminUser.update(last_login_at=utcnow())
            .where((AdminUser.id == admin_user_id) & (AdminUser.status != "suspended"))
            .returning(*admin_user_dumper.fields)
        )
        with write():
            rows = list(query.tuples().execute())
            if not rows:
                if AdminUser.select().where(AdminUser.id == admin_user_id).exists():
                    raise PermissionDeniedError(f"admin user {admin_user_id} is suspended")
                raise NotFoundError(entity="admin_user", id=admin_user_id)
            audit(
                admin_user_id,
                "ADMIN_LOGIN",
                "admin_user",
                admin_user_id,
                ip=ip,
                user_agent=user_agent,
            )
        return admin_user_dumper.row(rows[0])

    @staticmethod
    def bootstrap(email: str, *, name: str | None = None) -> AdminUserDTO:
        """Make the first admin: ``email`` becomes an active admin with the role
        super_admin (``admin_roles:write``), audited ADMIN_BOOTSTRAP. PermissionDeniedError
        once an active admin holds ``admin_roles:write`` (``datalayer admin bootstrap``).

        Whoever installs the product, once, from the command line.

        Returns:
            The admin user (created, or the existing one with this email).

        Raises:
            ValidationError: ``email`` or ``name`` is not valid.
            PermissionDeniedError: an active admin already holds ``admin_roles:write``.
        """
        with write():
            return bootstrap_admin(email, name)


__all__ = ["AdminUserQueries"]
