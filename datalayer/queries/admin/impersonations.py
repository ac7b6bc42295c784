"""Impersonation: an admin acting as a user, for a reason, for at most an hour.

At most one session per admin is active: a partial unique index on admin_user_id
``WHERE ended_at IS NULL`` holds it, whatever runs concurrently. ``start`` ends the
admin's open session (``revoked``, or ``expired`` when its time was up) and inserts the
new one without asking first; a start that loses a race with another start of the same
admin meets the index and is refused (ConflictError) with nothing written. Every start
and end writes its audit row (IMPERSONATION_START / IMPERSONATION_END, carrying the
session id) in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeGuard, cast

import peewee

from datalayer.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    error_boundary,
    translate,
)
from datalayer.models import (
    AdminAuditLog,
    AdminImpersonationSession,
    AdminUser,
    TenantMember,
    User,
)
from datalayer.models.base import new_id
from datalayer.queries.admin._audit import audit
from datalayer.queries.admin_rights import ADMIN_ROLES_WRITE, check_token, db_now, require_admin
from datalayer.queries.base import read, write
from datalayer.schemas.admin_console import (
    AdminImpersonationSessionDTO,
    admin_impersonation_session_dumper,
    end_impersonation_schema,
    start_impersonation_schema,
)
from datalayer.schemas.base import check_id, check_now, load, require
from datalayer.types import (
    AdminUserId,
    ImpersonationEndReason,
    ImpersonationScope,
    ImpersonationSessionId,
    TenantId,
    UserId,
)

I = AdminImpersonationSession  # noqa: E741 - the table, as in the other query modules
dumper = admin_impersonation_session_dumper

IMPERSONATE = "users:impersonate"
WRITE = "users:write"
MAX_TTL_SECONDS = 3600


def _is_ttl(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_TTL_SECONDS


def _check_ttl(value: Any) -> int:
    return require(
        "ttl_seconds", value, _is_ttl, f"Must be an integer between 1 and {MAX_TTL_SECONDS}."
    )


def _audit_ends(
    ended: list[tuple[str, str, str | None, str]], now: dt.datetime, actor: str | None = None
) -> None:
    """One IMPERSONATION_END row per (session, admin, target user, end reason), by the
    session's admin or ``actor`` when another admin ended it."""
    if ended:
        AdminAuditLog.insert_many(
            [
                {
                    "id": new_id(),
                    "admin_user": actor or admin,
                    "action": "IMPERSONATION_END",
                    "target_type": "user",
                    "target_id": target,
                    "reason": reason,
                    "metadata": {"end_reason": reason},
                    "impersonation_session_id": session_id,
                    "created_at": now,
                }
                for session_id, admin, target, reason in ended
            ]
        ).execute()


def _end(
    condition: Any, reason: Any, now: dt.datetime, actor: str | None = None
) -> list[tuple[str, str, str | None, str]]:
    """End the open sessions matching ``condition``; audit each; return them."""
    query = (
        I.update(ended_at=now, end_reason=reason)
        .where(condition & I.ended_at.is_null())
        .returning(I.id, I.admin_user, I.target_user, I.end_reason)
    )
    ended = cast("list[tuple[str, str, str | None, str]]", list(query.tuples().execute()))
    _audit_ends(ended, now, actor)
    return ended


def _require_target(target_user_id: str, target_tenant_id: str | None) -> None:
    """The target exists, is not staff, and belongs to the tenant when one is named."""
    staff_account = AdminUser.select(AdminUser.id).where(AdminUser.email == User.email)
    query: Any = User.select(User.admin_role, peewee.fn.EXISTS(staff_account)).where(
        User.id == target_user_id
    )
    row = query.tuples().first()
    if row is None:
        raise NotFoundError(entity="user", id=target_user_id)
    if row[0] is not None or row[1]:
        raise PermissionDeniedError(
            f"user {target_user_id} is staff (an admin role, or an admin account): staff "
            "are not impersonated"
        )
    if target_tenant_id is not None:
        member = TenantMember.select(TenantMember.id).where(
            (TenantMember.tenant == target_tenant_id) & (TenantMember.user == target_user_id)
        )
        if not member.exists():
            raise NotFoundError(
                f"user {target_user_id} is not a member of tenant {target_tenant_id}"
            )


def _unexpired() -> Any:
    return I.expires_at > db_now(I.expires_at)


@error_boundary
class ImpersonationQueries:
    """Impersonation sessions: start, end, find the active one, check a write."""

    @staticmethod
    def start(
        target_user_id: UserId,
        actor_admin_id: AdminUserId,
        *,
        reason: str,
        scope: ImpersonationScope = "read_only",
        ttl_seconds: int = 1800,
        session_token: str,
        target_tenant_id: TenantId | None = None,
        metadata: Any = None,
    ) -> AdminImpersonationSessionDTO:
        """Start impersonating ``target_user_id`` (in ``target_tenant_id``, which the user
        must belong to). Needs ``users:impersonate`` (``read_write`` needs ``users:write``
        too) and ``session_token``, the actor's stepped-up admin session; staff (users
        with an admin role or an admin account) are refused. Ends the admin's open session
        first (``revoked``).

        At most ``ttl_seconds`` (an hour at most), one active session per admin, also when
        two starts race; audited IMPERSONATION_START.

        Returns:
            The new session.

        Raises:
            ValidationError: ``reason`` (required), ``scope`` (read_only, read_write),
                ``ttl_seconds``, ``metadata`` or an id is not valid; nothing was written.
            PermissionDeniedError: the admin is not active, lacks ``users:impersonate``
                (or ``users:write`` for ``read_write``), is not acting through a
                stepped-up session, or the target is staff.
            NotFoundError: the target user does not exist, or is not a member of
                ``target_tenant_id``.
        """
        check_id("actor_admin_id", actor_admin_id)
        token = check_token("session_token", session_token)
        values = load(
            start_impersonation_schema,
            {
                "target_user_id": target_user_id,
                "target_tenant_id": target_tenant_id,
                "scope": scope,
                "reason": reason,
                "metadata": metadata,
            },
        )
        ttl = _check_ttl(ttl_seconds)
        with write():
            needs = (IMPERSONATE, WRITE) if values.get("scope") == "read_write" else (IMPERSONATE,)
            require_admin(actor_admin_id, *needs, session_token=token, step_up=True)
            _require_target(target_user_id, target_tenant_id)
            now = check_now(None)
            expired_or_revoked = peewee.Case(None, [(I.expires_at <= now, "expired")], "revoked")
            _end(I.admin_user == actor_admin_id, expired_or_revoked, now)
            insert = I.insert(
                admin_user=actor_admin_id,
                target_user=values.pop("target_user_id"),
                target_tenant=values.pop("target_tenant_id", None),
                started_at=now,
                expires_at=now + dt.timedelta(seconds=ttl),
                **values,
            )
            try:
                row = dumper.written_one(insert)
            except peewee.IntegrityError as exc:
                error = translate(exc)
                if isinstance(error, ConflictError):  # the one-active index: a race lost
                    error = ConflictError(
                        f"admin {actor_admin_id} started another impersonation at the same "
                        "time; nothing was changed"
                    )
                raise error from exc
            audit(
                actor_admin_id,
                "IMPERSONATION_START",
                "user",
                target_user_id,
                reason=row["reason"],
                metadata={
                    "scope": row["scope"],
                    "expires_at": row["expires_at"],
                    "target_tenant_id": row["target_tenant_id"],
                },
                impersonation_session_id=row["id"],
            )
        return row

    @staticmethod
    def end(
        session_id: ImpersonationSessionId,
        actor_admin_id: AdminUserId,
        *,
        reason: ImpersonationEndReason = "manual",
    ) -> bool:
        """End an open session (audited): the session's admin, or another admin holding
        ``admin_roles:write``.

        Returns:
            True when it was ended now; False when no session has this id or it has ended.

        Raises:
            ValidationError: an id or ``reason`` (manual, expired, revoked, logout) is not
                valid.
            PermissionDeniedError: another admin's session, and the actor lacks
                ``admin_roles:write``.
        """
        check_id("session_id", session_id)
        check_id("actor_admin_id", actor_admin_id)
        end_reason = load(end_impersonation_schema, {"end_reason": reason})["end_reason"]
        with write():
            owner = I.select(I.admin_user).where(I.id == session_id).scalar()
            if owner is None:
                return False
            if owner != actor_admin_id:
                require_admin(actor_admin_id, ADMIN_ROLES_WRITE)
            ended = _end(I.id == session_id, end_reason, check_now(None), actor_admin_id)
        return bool(ended)

    @staticmethod
    def active_for(admin_user_id: AdminUserId) -> AdminImpersonationSessionDTO | None:
        """Return the admin's session that has neither ended nor expired (the database's
        clock), or None.

        Back-office code (the console's banner "you are impersonating …").

        Returns:
            The session, or None when the admin has no active one.

        Raises:
            ValidationError: the id is not valid.
        """
        check_id("admin_user_id", admin_user_id)
        query = dumper.select().where(
            (I.admin_user == admin_user_id) & I.ended_at.is_null() & _unexpired()
        )
        with read():
            return dumper.one(query)

    @staticmethod
    def check_write(session_id: ImpersonationSessionId) -> AdminImpersonationSessionDTO:
        """Return the session if it is active (not ended, not expired on the database's
        clock) and ``read_write``; else PermissionDeniedError (also for an unknown one).

        Back-office code, before every write made while impersonating.

        Returns:
            The session.

        Raises:
            ValidationError: the id is not valid.
            PermissionDeniedError: no such session, it ended or expired, or it is
                ``read_only``.
        """
        check_id("session_id", session_id)
        with read():
            row = dumper.one(dumper.select().where((I.id == session_id) & _unexpired()))
            expired = row is None and I.select().where(I.id == session_id).exists()
        if expired:
            raise PermissionDeniedError("the impersonation session has expired")
        if row is None or row["ended_at"] is not None:
            raise PermissionDeniedError("no active impersonation session")
        if row["scope"] != "read_write":
            raise PermissionDeniedError("the impersonation session is read-only")
        return row

    @staticmethod
    def expire_overdue(*, now: dt.datetime | None = None) -> int:
        """End every open session whose time is up (``expired``, audited); return how many.

        Trusted code (``datalayer maintain`` calls it).

        Returns:
            How many were ended; 0 when none was due.

        Raises:
            ValidationError: ``now`` is not a timezone-aware datetime.
        """
        now = check_now(now)
        with write():
            return len(_end(I.expires_at <= now, "expired", now))


__all__ = ["ImpersonationQueries"]
