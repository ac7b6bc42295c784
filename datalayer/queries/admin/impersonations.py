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
from datalayer.models import AdminAuditLog, AdminImpersonationSession, TenantMember, User
from datalayer.models.base import new_id
from datalayer.queries.admin._audit import audit
from datalayer.queries.admin.roles import AdminRoleQueries
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


def _audit_ends(ended: list[tuple[str, str, str | None, str]], now: dt.datetime) -> None:
    """One IMPERSONATION_END row per (session, admin, target user, end reason)."""
    if ended:
        AdminAuditLog.insert_many(
            [
                {
                    "id": new_id(),
                    "admin_user": admin,
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


def _end(condition: Any, reason: Any, now: dt.datetime) -> list[tuple[str, str, str | None, str]]:
    """End the open sessions matching ``condition``; audit each; return them."""
    query = (
        I.update(ended_at=now, end_reason=reason)
        .where(condition & I.ended_at.is_null())
        .returning(I.id, I.admin_user, I.target_user, I.end_reason)
    )
    ended = cast("list[tuple[str, str, str | None, str]]", list(query.tuples().execute()))
    _audit_ends(ended, now)
    return ended


def _require_target(target_user_id: str, target_tenant_id: str | None) -> None:
    if not User.select(User.id).where(User.id == target_user_id).exists():
        raise NotFoundError(f"user {target_user_id} not found")
    if target_tenant_id is not None:
        member = TenantMember.select(TenantMember.id).where(
            (TenantMember.tenant == target_tenant_id) & (TenantMember.user == target_user_id)
        )
        if not member.exists():
            raise NotFoundError(
                f"user {target_user_id} is not a member of tenant {target_tenant_id}"
            )


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
        target_tenant_id: TenantId | None = None,
        metadata: Any = None,
    ) -> AdminImpersonationSessionDTO:
        """Start impersonating ``target_user_id`` (in ``target_tenant_id``, which the user
        must belong to). Needs ``users:impersonate``; ``read_write`` needs ``users:write``
        too. Ends the admin's open session first (``revoked``).

        Back-office code acting as ``actor_admin_id``. At most ``ttl_seconds`` (an hour at
        most), one active session per admin, also when two starts race; audited
        IMPERSONATION_START.

        Returns:
            The new session.

        Raises:
            ValidationError: ``reason`` (required), ``scope`` (read_only, read_write),
                ``ttl_seconds``, ``metadata`` or an id is not valid; nothing was written.
            PermissionDeniedError: the admin lacks ``users:impersonate`` (or
                ``users:write`` for ``read_write``), or is suspended.
            NotFoundError: the target user does not exist, or is not a member of
                ``target_tenant_id``.
        """
        check_id("actor_admin_id", actor_admin_id)
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
            granted = set(AdminRoleQueries.permissions_for(actor_admin_id))
            if IMPERSONATE not in granted:
                raise PermissionDeniedError(f"impersonation needs the permission {IMPERSONATE}")
            if values.get("scope") == "read_write" and WRITE not in granted:
                raise PermissionDeniedError(f"a read_write impersonation needs {WRITE} too")
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
    def end(session_id: ImpersonationSessionId, actor_admin_id: AdminUserId, *, reason: ImpersonationEndReason = "manual") -> bool:
        """End the admin's own open session (audited); False when it is not theirs or
        already ended.

        Back-office code acting as ``actor_admin_id``, the session's admin.

        Returns:
            True when it was ended now; False when no session has this id, it is another
            admin's, or it has ended.

        Raises:
            ValidationError: an id or ``reason`` (manual, expired, revoked, logout) is not
                valid.
        """
        check_id("session_id", session_id)
        check_id("actor_admin_id", actor_admin_id)
        end_reason = load(end_impersonation_schema, {"end_reason": reason})["end_reason"]
        with write():
            ended = _end(
                (I.id == session_id) & (I.admin_user == actor_admin_id), end_reason, check_now(None)
            )
        return bool(ended)

    @staticmethod
    def active_for(
        admin_user_id: AdminUserId, *, now: dt.datetime | None = None
    ) -> AdminImpersonationSessionDTO | None:
        """Return the admin's session that has neither ended nor expired at ``now``, or None.

        Back-office code (the console's banner "you are impersonating …").

        Returns:
            The session, or None when the admin has no active one.

        Raises:
            ValidationError: the id or ``now`` is not valid.
        """
        check_id("admin_user_id", admin_user_id)
        now = check_now(now)
        query = dumper.select().where(
            (I.admin_user == admin_user_id) & I.ended_at.is_null() & (I.expires_at > now)
        )
        with read():
            return dumper.one(query)

    @staticmethod
    def check_write(
        session_id: ImpersonationSessionId, *, now: dt.datetime | None = None
    ) -> AdminImpersonationSessionDTO:
        """Return the session if it is active at ``now`` and ``read_write``; else
        PermissionDeniedError (also for an unknown session).

        Back-office code, before every write made while impersonating.

        Returns:
            The session.

        Raises:
            ValidationError: the id or ``now`` is not valid.
            PermissionDeniedError: no such session, it ended or expired, or it is
                ``read_only``.
        """
        check_id("session_id", session_id)
        now = check_now(now)
        with read():
            row = dumper.one(dumper.select().where(I.id == session_id))
        if row is None or row["ended_at"] is not None:
            raise PermissionDeniedError("no active impersonation session")
        if dt.datetime.fromisoformat(row["expires_at"]) <= now:
            raise PermissionDeniedError("the impersonation session has expired")
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
