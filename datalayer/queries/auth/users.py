"""Queries of the auth domain: users."""

from __future__ import annotations

import datetime as dt
from typing import Any

from peewee import Case, fn

from datalayer import arguments
from datalayer.errors import NotFoundError, PermissionDeniedError, error_boundary
from datalayer.models import AdminAuditLog, TenantMember, User, new_id
from datalayer.models.auth import USER_ADMIN_ROLES
from datalayer.queries.admin_rights import ADMIN_ROLES_WRITE, require_admin
from datalayer.queries.auth._arguments import required_text
from datalayer.queries.auth._rights import (
    erase_user,
    export_user,
    refuse_last_owner,
)
from datalayer.queries.base import read, stamp, write
from datalayer.schemas.auth import (
    CreateUserInput,
    ErasureResult,
    UpdateUserInput,
    UserDTO,
    create_user_schema,
    update_user_schema,
    user_dumper,
)
from datalayer.schemas.base import check_id, check_now, load, require
from datalayer.schemas.rights import UserExport
from datalayer.types import AdminUserId, TenantId, UserAdminRole, UserId

# touch_last_active writes at most once per interval per user.
TOUCH_INTERVAL = dt.timedelta(seconds=60)


def _changed(query: Any, user_id: str) -> UserDTO:
    row = user_dumper.written(query)
    if row is None:
        raise NotFoundError(entity="user", id=user_id)
    return row


@error_boundary
class UserQueries:
    """Users: profiles, the active tenant, and activity stamps."""

    @staticmethod
    def find_by_id(user_id: UserId) -> UserDTO | None:
        """Return the user with this id, or None.

        Trusted code (the sign-in layer, the back office, the user's own profile page).

        Returns:
            The user (no secret in it), or None when none has this id.

        Raises:
            ValidationError: ``user_id`` is not a valid id.
        """
        check_id("user_id", user_id)
        with read():
            return user_dumper.one(user_dumper.select().where(User.id == user_id))

    @staticmethod
    def find_by_email(email: str) -> UserDTO | None:
        """Return the user with this email, whatever its case, or None.

        Trusted code (sign-in, sign-up, the back office). The email is normalized as
        stored (trimmed, NFKC, lower-cased) before the lookup.

        Returns:
            The user, or None when no user has this email.

        Raises:
            ValidationError: ``email`` is not a valid address.
        """
        # Emails are stored normalized (NFKC, trimmed, lower-cased: the Email field), so
        # an equality on the normalized argument is case-insensitive and uses the unique index.
        email = arguments.email("email", email)
        with read():
            query = user_dumper.select().where(User.email == email)
            return user_dumper.one(query)

    @staticmethod
    def create(data: CreateUserInput) -> UserDTO:
        """Create a user; ConflictError when the email is taken.

        Trusted code (sign-up). The email is stored normalized (lower-cased, NFKC).

        Returns:
            The new user.

        Raises:
            ValidationError: ``data`` (``name``, ``email``, …) is not valid; nothing was
                written.
            ConflictError: a user already has this email (whatever its case).
        """
        values = load(create_user_schema, data)
        with write():
            return user_dumper.written_one(User.insert(**values))

    @staticmethod
    def update(user_id: UserId, data: UpdateUserInput) -> UserDTO:
        """Change a user's profile; ConflictError when the new email is taken.

        Trusted code acting for the user (their profile settings) or the back office. A
        new email resets ``email_verified`` unless ``data`` sets it.

        Returns:
            The changed user.

        Raises:
            ValidationError: ``data`` or the id is not valid; nothing was written.
            NotFoundError: no user has this id.
            ConflictError: another user has the new email.
        """
        check_id("user_id", user_id)
        values = load(update_user_schema, data)
        if "email" in values and "email_verified" not in values:
            # A new address is not verified yet (the old one was): else anyone could take
            # an invitee's address and accept their invite. The same address keeps its flag.
            values["email_verified"] = Case(
                None, [(User.email == values["email"], User.email_verified)], False
            )
        with write():
            return _changed(User.update(values).where(User.id == user_id), user_id)

    @staticmethod
    def delete(user_id: UserId) -> bool:
        """Delete a user (their sessions and accounts go too); False when there was none.

        Trusted code (account deletion after the user confirmed; for the right to be
        forgotten use ``erase``, which also anonymizes what must stay).

        Returns:
            True when the user was deleted; False when no user has this id.

        Raises:
            ValidationError: ``user_id`` is not a valid id.
            ConflictError: the user is a tenant's last owner (transfer or delete it first).
        """
        check_id("user_id", user_id)
        with write():
            refuse_last_owner(user_id)
            return bool(User.delete().where(User.id == user_id).execute() > 0)

    @staticmethod
    def set_active_tenant(user_id: UserId, *, tenant_id: TenantId | None) -> UserDTO:
        """Make a tenant the user's active one (None clears it); the user must be a member.

        Any caller acting for ``user_id``.

        Returns:
            The changed user.

        Raises:
            ValidationError: an id is not valid.
            NotFoundError: the user does not exist.
            PermissionDeniedError: the user is not a member of the tenant.
        """
        check_id("user_id", user_id)
        query = User.update(active_tenant=tenant_id).where(User.id == user_id)
        if tenant_id is not None:
            check_id("tenant_id", tenant_id)
            member = TenantMember.select(TenantMember.id).where(
                (TenantMember.tenant == tenant_id) & (TenantMember.user == user_id)
            )
            # One statement: the membership is checked where the row is written.
            query = query.where(fn.EXISTS(member))
        with write():
            row = user_dumper.written(query)
            if row is None:
                if not User.select(User.id).where(User.id == user_id).exists():
                    raise NotFoundError(entity="user", id=user_id)
                raise PermissionDeniedError("the user is not a member of this tenant")
        return row

    @staticmethod
    def set_admin_role(
        user_id: UserId, actor_admin_id: AdminUserId, *, role: UserAdminRole | None
    ) -> UserDTO:
        """Set (or clear, with None) the user's admin role; kept out of ``update`` on purpose.

        The role is a privilege, which is why a profile update cannot set it: the actor
        needs ``admin_roles:write``; audited USER_UPDATE.

        Returns:
            The changed user.

        Raises:
            ValidationError: ``role`` is not ``read_only``, ``support_rw``,
                ``super_admin`` or None, or an id is not valid.
            PermissionDeniedError: the actor is not an active admin with ``admin_roles:write``.
            NotFoundError: no user has this id.
        """
        check_id("user_id", user_id)
        check_id("actor_admin_id", actor_admin_id)
        require(
            "role",
            role,
            lambda v: v is None or v in USER_ADMIN_ROLES,
            f"Must be one of: {', '.join(USER_ADMIN_ROLES)}; or None.",
        )
        with write():
            require_admin(actor_admin_id, ADMIN_ROLES_WRITE)
            row = _changed(User.update(admin_role=role).where(User.id == user_id), user_id)
            AdminAuditLog.insert(
                id=new_id(), admin_user=actor_admin_id, action="USER_UPDATE", target_type="user",
                target_id=user_id, metadata={"admin_role": role},
            ).execute()  # fmt: skip
        return row

    @staticmethod
    def touch_last_active(user_id: UserId, *, now: dt.datetime | None = None) -> bool:
        """Stamp the user's activity at most once a minute; tell whether it wrote.

        Trusted code on the user's requests (cheap enough to call on each one).

        Returns:
            True when it wrote; False when the last stamp is less than a minute old or no
            user has this id.

        Raises:
            ValidationError: the id or ``now`` is not valid.
        """
        check_id("user_id", user_id)
        now = check_now(now)
        last = User.last_active_at
        # One conditional UPDATE: of concurrent calls within a minute, the first writes and
        # the others find the condition false once they see its row (no read-then-write).
        query = User.update(
            last_active_at=now,
            first_seen_at=fn.COALESCE(User.first_seen_at, stamp(User.first_seen_at, now)),
        ).where((User.id == user_id) & (last.is_null() | (last <= now - TOUCH_INTERVAL)))
        with write():
            return bool(query.execute() > 0)

    @staticmethod
    def export(user_id: UserId) -> UserExport:
        """Return every row about the user, by table name, as DTOs (their right of access).

        Their profile, sessions and accounts (no token, no password), memberships, invites
        they sent or received, notifications and their deliveries, preferences, targets,
        todos, activity, waitlist entry, subscriptions they bought, and the admin notes
        and flags about them. For a data-rights request (``datalayer user export``),
        after the requester's identity was checked.

        Returns:
            The rows by table name; a table with nothing about them maps to an empty list.

        Raises:
            ValidationError: ``user_id`` is not a valid id.
            NotFoundError: no user has this id.
        """
        check_id("user_id", user_id)
        with read():
            return export_user(user_id)

    @staticmethod
    def erase(
        user_id: UserId, actor_admin_id: AdminUserId, *, reason: str, session_token: str
    ) -> ErasureResult:
        """Erase the user in one transaction; return the rows deleted or anonymized per
        table (``counts``) and the free text others wrote about them (``review``).

        Refused (ConflictError) while they are a tenant's last owner. Rows that outlive
        them (the audit log, impersonation history, notifications they acted in,
        subscriptions they bought, JSON data and payloads) keep no id, email or name of
        theirs; free text written by others that mentions them (notes, other users'
        todos, notification titles) is listed in ``review`` by table, row and column, for
        a person to read; a USER_ERASE audit row by ``actor_admin_id`` records the erasure.
        The actor needs ``users:write`` and ``session_token``, their stepped-up admin
        session (``datalayer user erase`` acts with the database's credentials instead).

        Returns:
            ``counts`` per table and the ``review`` list (empty when nothing needs a
            person's reading).

        Raises:
            ValidationError: an id or ``reason`` (required) is not valid; nothing was
                written.
            PermissionDeniedError: the actor is not an active admin with ``users:write``
                acting through a stepped-up session.
            NotFoundError: the user does not exist.
            ConflictError: the user is a tenant's last owner.
        """
        check_id("user_id", user_id)
        check_id("actor_admin_id", actor_admin_id)
        reason = required_text("reason", reason)
        token = required_text("session_token", session_token)
        with write():
            return erase_user(user_id, actor_admin_id, reason, session_token=token)


__all__ = ["UserQueries"]
