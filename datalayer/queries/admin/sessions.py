"""The admin console's own sessions (Better Auth compatible), with step-up verification.

The token is stored as the original stores it (Better Auth reads it) and looked up by
equality on its unique index; no DTO carries it. A suspended admin's sessions are not
valid. Every write is audited in its own transaction: the change and its audit row are
stored together or not at all.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any, TypeGuard

from datalayer.errors import NotFoundError, PermissionDeniedError, error_boundary
from datalayer.models import AdminAuditLog, AdminSession, AdminUser
from datalayer.models.base import new_id, utcnow
from datalayer.queries.admin._audit import audit
from datalayer.queries.admin_rights import ADMIN_ROLES_WRITE, db_later, db_now, require_admin
from datalayer.queries.base import read, write
from datalayer.schemas.admin_console import (
    SECRET_MAX,
    AdminSessionDTO,
    admin_session_dumper,
    create_admin_session_schema,
)
from datalayer.schemas.base import check_id, check_now, load, require
from datalayer.types import AdminUserId

S = AdminSession
MAX_STEP_UP_SECONDS = 3600


def _is_token(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and 0 < len(value) <= SECRET_MAX and "\x00" not in value


def _is_step_up_ttl(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_STEP_UP_SECONDS


def _check_token(token: Any) -> str:
    return require("token", token, _is_token, "Must be a non-empty token string.")


def _not_suspended() -> Any:
    """The session's admin exists and is not suspended (a correlated subquery)."""
    return S.admin_user.in_(AdminUser.select(AdminUser.id).where(AdminUser.status != "suspended"))


def _valid(token: str) -> Any:
    """The session with this token has not expired (the database's clock), its admin is
    not suspended."""
    return (S.token == token) & (S.expires_at > db_now(S.expires_at)) & _not_suspended()


@error_boundary
class AdminSessionQueries:
    """Admin console sessions: opened, looked up, revoked, expired; step-up for the
    sensitive operations (a recent re-authentication recorded on the session)."""

    @staticmethod
    def create(
        admin_user_id: AdminUserId,
        *,
        token: str,
        expires_at: dt.datetime,
        ip_address: str | None = None,
        user_agent: str | None = None,
    ) -> AdminSessionDTO:
        """Open a session (audited ADMIN_SESSION_CREATE). NotFoundError for an unknown
        admin, PermissionDeniedError for one who is not active, ConflictError for a token
        in use.

        The console's sign-in, once it checked the admin's credentials. The token is
        stored but never appears in a DTO or the SQL log.

        Returns:
            The new session (without its token).

        Raises:
            ValidationError: ``token``, ``expires_at``, a text or the id is not valid.
            NotFoundError: no admin has this id.
            PermissionDeniedError: the admin is not active.
            ConflictError: the token is already in use.
        """
        check_id("admin_user_id", admin_user_id)
        values = load(
            create_admin_session_schema,
            {
                "token": token,
                "expires_at": expires_at,
                "ip_address": ip_address,
                "user_agent": user_agent,
            },
        )
        with write():
            status = AdminUser.select(AdminUser.status).where(AdminUser.id == admin_user_id)
            found = status.scalar()
            if found is None:
                raise NotFoundError(entity="admin_user", id=admin_user_id)
            if found != "active":
                raise PermissionDeniedError(f"admin user {admin_user_id} is {found}, not active")
            row = admin_session_dumper.written_one(S.insert(admin_user=admin_user_id, **values))
            audit(
                admin_user_id,
                "ADMIN_SESSION_CREATE",
                "admin_user",
                admin_user_id,
                ip=ip_address,
                user_agent=user_agent,
                metadata={"session_id": row["id"], "expires_at": row["expires_at"]},
            )
        return row

    @staticmethod
    def find_valid(token: str) -> AdminSessionDTO | None:
        """Return the session with this token unless it expired (the database's clock) or
        its admin is suspended.

        Anyone presenting the token (the console's cookie): the token is the credential.

        Returns:
            The session, or None when no session has this token, it expired, or its admin
            is suspended.

        Raises:
            ValidationError: ``token`` is not valid.
        """
        token = _check_token(token)
        with read():
            row = admin_session_dumper.one(admin_session_dumper.select().where(_valid(token)))
        return row

    @staticmethod
    def revoke(token: str) -> bool:
        """End the session with this token (audited ADMIN_LOGOUT); False when there was none.

        Anyone presenting the token (sign-out).

        Returns:
            True when it was ended; False when no session has this token.

        Raises:
            ValidationError: ``token`` is not valid.
        """
        token = _check_token(token)
        query = S.delete().where(S.token == token).returning(S.id, S.admin_user)
        with write():
            rows = list(query.tuples().execute())
            for session_id, admin_user_id in rows:
                audit(
                    admin_user_id,
                    "ADMIN_LOGOUT",
                    "admin_user",
                    admin_user_id,
                    metadata={"session_id": session_id},
                )
        return bool(rows)

    @staticmethod
    def revoke_all(admin_user_id: AdminUserId, actor_admin_id: AdminUserId | None = None) -> int:
        """End every session of the admin; return how many (audited ADMIN_SESSIONS_REVOKE,
        by ``actor_admin_id``, default the admin themselves, when there were any).

        The admin themselves ("sign out everywhere"), or another admin holding
        ``admin_roles:write``.

        Returns:
            How many were ended; 0 when the admin had none.

        Raises:
            ValidationError: an id is not valid.
            PermissionDeniedError: another admin's sessions, and the actor is not an
                active admin with ``admin_roles:write``.
        """
        check_id("admin_user_id", admin_user_id)
        actor = (
            admin_user_id if actor_admin_id is None else check_id("actor_admin_id", actor_admin_id)
        )
        with write():
            if actor != admin_user_id:
                require_admin(actor, ADMIN_ROLES_WRITE)
            count = int(S.delete().where(S.admin_user == admin_user_id).execute())
            if count:
                audit(
                    actor,
                    "ADMIN_SESSIONS_REVOKE",
                    "admin_user",
                    admin_user_id,
                    metadata={"count": count},
                )
        return count

    @staticmethod
    def delete_expired(*, now: dt.datetime | None = None) -> int:
        """Delete the sessions expired at ``now``; return how many. One audit row
        (ADMIN_SESSIONS_EXPIRED) per admin whose sessions went, in the same transaction.

        Trusted code (``datalayer maintain`` calls it).

        Returns:
            How many were deleted; 0 when none had expired.

        Raises:
            ValidationError: ``now`` is not a timezone-aware datetime.
        """
        now = check_now(now)
        query = S.delete().where(S.expires_at <= now).returning(S.admin_user)
        with write():
            per_admin = Counter(admin for (admin,) in query.tuples().execute())
            if per_admin:
                AdminAuditLog.insert_many(
                    [
                        {
                            "id": new_id(),
                            "admin_user": admin,
                            "action": "ADMIN_SESSIONS_EXPIRED",
                            "target_type": "admin_user",
                            "target_id": admin,
                            "metadata": {"count": count},
                            "created_at": now,
                        }
                        for admin, count in sorted(per_admin.items())
                    ]
                ).execute()
        return sum(per_admin.values())

    @staticmethod
    def verify_step_up(token: str, *, ttl_seconds: int = 900) -> AdminSessionDTO:
        """Record a step-up (the admin just re-authenticated) valid ``ttl_seconds`` (at
        most an hour) from now on the database's clock; audited ADMIN_STEP_UP.
        NotFoundError unless the session is valid.

        The console, right after the admin re-entered their credentials.

        Returns:
            The session with its new step-up window.

        Raises:
            ValidationError: ``token`` or ``ttl_seconds`` is not valid.
            NotFoundError: no valid session has this token.
        """
        token = _check_token(token)
        ttl = require(
            "ttl_seconds",
            ttl_seconds,
            _is_step_up_ttl,
            f"Must be an integer between 1 and {MAX_STEP_UP_SECONDS}.",
        )
        at = utcnow()  # SQLite's clock is the library's: one reading for both columns
        query = S.update(
            step_up_verified_at=db_now(S.step_up_verified_at, sqlite_now=at),
            step_up_expires_at=db_later(S.step_up_expires_at, ttl, sqlite_now=at),
            updated_at=utcnow(),
        ).where(_valid(token))
        with write():
            row = admin_session_dumper.written(query)
            if row is None:
                raise NotFoundError("no valid admin session has this token")
            audit(
                row["admin_user_id"],
                "ADMIN_STEP_UP",
                "admin_user",
                row["admin_user_id"],
                metadata={"session_id": row["id"], "step_up_expires_at": row["step_up_expires_at"]},
            )
        return row

    @staticmethod
    def require_step_up(token: str) -> AdminSessionDTO:
        """Return the session if its step-up is still valid (the database's clock); else
        PermissionDeniedError (also for an expired, revoked or unknown session).

        The console, before a sensitive action.

        Returns:
            The session.

        Raises:
            ValidationError: ``token`` is not valid.
            PermissionDeniedError: no step-up is valid on this session (or there is no
                such session).
        """
        token = _check_token(token)
        query = admin_session_dumper.select().where(
            _valid(token) & (S.step_up_expires_at > db_now(S.step_up_expires_at))
        )
        with read():
            row = admin_session_dumper.one(query)
        if row is None:
            raise PermissionDeniedError("this needs a step-up: re-authenticate first")
        return row


__all__ = ["AdminSessionQueries"]
