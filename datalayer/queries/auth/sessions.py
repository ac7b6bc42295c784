"""Queries of the auth domain: sessions."""

from __future__ import annotations

import datetime as dt

from datalayer.errors import error_boundary
from datalayer.models import Session
from datalayer.queries.auth._arguments import required_text
from datalayer.queries.base import read, write
from datalayer.schemas.auth import (
    SessionDTO,
    create_session_schema,
    session_dumper,
)
from datalayer.schemas.base import check_id, check_now, load
from datalayer.types import UserId


@error_boundary
class SessionQueries:
    """Sessions: looked up by their token, which is never dumped."""

    @staticmethod
    def create(
        user_id: UserId,
        *,
        token: str,
        expires_at: dt.datetime,
        ip_address: str | None = None,
        user_agent: str | None = None,
    ) -> SessionDTO:
        """Open a session for the user; ConflictError when the token is already in use.

        Trusted code (the sign-in layer, after it checked the credentials). The token is
        stored but never appears in a DTO or the SQL log.

        Returns:
            The new session (without its token).

        Raises:
            ValidationError: ``token``, ``expires_at`` (timezone-aware), an id or a text is
                not valid; nothing was written.
            NotFoundError: the user does not exist.
            ConflictError: the token is already in use.
        """
        check_id("user_id", user_id)
        values = load(
            create_session_schema,
            {
                "token": token,
                "expires_at": expires_at,
                "ip_address": ip_address,
                "user_agent": user_agent,
            },
        )
        with write():
            return session_dumper.written_one(Session.insert(user=user_id, **values))

    @staticmethod
    def find_valid(token: str, *, now: dt.datetime | None = None) -> SessionDTO | None:
        """Return the session with this token unless it has expired, else None.

        Anyone presenting the token (the request's cookie): the token is the credential.

        Returns:
            The session, or None when no session has this token or it has expired.

        Raises:
            ValidationError: ``token`` or ``now`` is not valid.
        """
        required_text("token", token)
        now = check_now(now)
        query = session_dumper.select().where((Session.token == token) & (Session.expires_at > now))
        with read():
            return session_dumper.one(query)

    @staticmethod
    def revoke(token: str) -> bool:
        """End the session with this token; False when there was none.

        Anyone presenting the token (sign-out).

        Returns:
            True when it was ended; False when no session has this token.

        Raises:
            ValidationError: ``token`` is not valid.
        """
        required_text("token", token)
        with write():
            return bool(Session.delete().where(Session.token == token).execute() > 0)

    @staticmethod
    def revoke_all_for_user(user_id: UserId) -> int:
        """End every session of the user; return how many there were.

        Trusted code acting for the user ("sign out everywhere", a password change) or
        the back office.

        Returns:
            How many were ended; 0 when the user had none (or does not exist).

        Raises:
            ValidationError: ``user_id`` is not a valid id.
        """
        check_id("user_id", user_id)
        with write():
            return int(Session.delete().where(Session.user == user_id).execute())

    @staticmethod
    def delete_expired(*, now: dt.datetime | None = None) -> int:
        """Delete sessions that have expired; return how many.

        Trusted code (``datalayer maintain`` calls it).

        Returns:
            How many were deleted; 0 when none had expired.

        Raises:
            ValidationError: ``now`` is not a timezone-aware datetime.
        """
        now = check_now(now)
        with write():
            return int(Session.delete().where(Session.expires_at <= now).execute())


__all__ = ["SessionQueries"]
