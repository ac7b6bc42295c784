"""Queries of tenant invites: single-use tokens, stored only as their SHA-256."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any, TypeGuard, cast

import peewee

from datalayer import arguments
from datalayer.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    error_boundary,
    translate,
)
from datalayer.models import TenantInvite, TenantMember, User, utcnow
from datalayer.queries.base import read, write
from datalayer.queries.tenant._access import MANAGERS, denied, require_role
from datalayer.schemas.base import check_id, check_now, load, require
from datalayer.schemas.tenant import (
    TenantInviteDTO,
    TenantMemberDTO,
    create_tenant_invite_schema,
    tenant_invite_dumper,
    tenant_member_dumper,
)
from datalayer.types import InviteRole, TenantId, TenantInviteId, UserId

TOKEN_BYTES = 32  # 256 random bits, URL-safe base64
MAX_TTL_SECONDS = 366 * 24 * 3600


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest under which an invite token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def _check_token(token: Any) -> str:
    def valid(v: Any) -> TypeGuard[str]:
        return isinstance(v, str) and 0 < len(v) <= 512 and "\x00" not in v

    checked: str = require(
        "token",
        token,
        valid,
        "Must be a non-empty token string.",
    )
    return checked


def _check_ttl(ttl_seconds: Any) -> int:
    def valid(v: Any) -> TypeGuard[int]:
        return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_TTL_SECONDS

    checked: int = require(
        "ttl_seconds",
        ttl_seconds,
        valid,
        f"Must be an integer between 1 and {MAX_TTL_SECONDS}.",
    )
    return checked


def _check_invitable(tenant_id: str, invited_by: str, email: str) -> None:
    """Refuse unless the inviter manages the tenant and ``email`` is neither theirs nor a member's."""
    # One query: the inviter's row and the invitee's user row (if any), each with its role here.
    query = (
        User.select(User.id, User.email, TenantMember.role)
        .join(
            TenantMember,
            peewee.JOIN.LEFT_OUTER,
            on=(TenantMember.user == User.id) & (TenantMember.tenant == tenant_id),
        )
        .where((User.id == invited_by) | (User.email == email))
    )
    rows = cast("list[tuple[str, str, str | None]]", list(query.tuples()))
    inviter = next((row for row in rows if row[0] == invited_by), None)
    if inviter is None or inviter[2] not in MANAGERS:
        raise denied(tenant_id, "only the tenant's owners and admins invite")
    if inviter[1].lower() == email:
        raise ConflictError("an inviter cannot invite their own email")
    if any(row[1].lower() == email and row[2] is not None for row in rows):
        raise ConflictError(f"{email} is already a member of this tenant")


def _expire_stale(tenant_id: str, email: str, now: dt.datetime) -> None:
    """Mark this email's overdue pending invite expired, so it does not block a new one."""
    TenantInvite.update(status="expired").where(
        (TenantInvite.tenant == tenant_id)
        & (TenantInvite.email == email)
        & (TenantInvite.status == "pending")
        & (TenantInvite.expires_at <= now)
    ).execute()


def _insert(values: dict[str, Any]) -> TenantInviteDTO:
    query = TenantInvite.insert(**values).returning(*tenant_invite_dumper.fields)
    try:
        return tenant_invite_dumper.written_one(query)
    except peewee.IntegrityError as exc:
        error = translate(exc)
        if isinstance(error, ConflictError):  # tenant_invites_pending_email_uniq
            error = ConflictError(f"{values['email']} already has a pending invite to this tenant")
        raise error from exc


def _claim(invite: TenantInviteDTO, now: dt.datetime) -> None:
    """Mark the invite accepted in one conditional statement: of racing accepts, one wins."""
    query = (
        TenantInvite.update(status="accepted", accepted_at=now)
        .where(
            (TenantInvite.id == invite["id"])
            & (TenantInvite.status == "pending")
            & (TenantInvite.expires_at > now)
        )
        .returning(TenantInvite.id)
    )
    if not list(query.tuples().execute()):
        raise ConflictError("the invite was already used")


def _pending_invite(token_hash: str, user_id: str, now: dt.datetime) -> TenantInviteDTO:
    """Return the invite for this token if ``user_id`` may accept it now; else raise."""
    invite = tenant_invite_dumper.one(
        tenant_invite_dumper.select().where(TenantInvite.token_hash == token_hash)
    )
    if invite is None:
        raise NotFoundError("no invite has this token")
    user = User.select(User.email, User.email_verified).where(User.id == user_id).tuples().first()
    if user is None:
        raise NotFoundError(entity="user", id=user_id)
    if arguments.normalize_email(user[0]) != invite["email"]:
        raise PermissionDeniedError("the invite was sent to another email address")
    if not user[1]:  # else anyone could take an invitee's address and their invite
        raise PermissionDeniedError("the user's email address is not verified")
    if invite["status"] != "pending":
        raise ConflictError(f"the invite is {invite['status']}")
    if dt.datetime.fromisoformat(invite["expires_at"]) <= now:
        raise ConflictError("the invite has expired")
    return invite


def _join(invite: TenantInviteDTO, user_id: str) -> TenantMemberDTO:
    query = TenantMember.insert(
        tenant=invite["tenant_id"], user=user_id, role=invite["role"]
    ).returning(*tenant_member_dumper.fields)
    try:
        return tenant_member_dumper.written_one(query)
    except peewee.IntegrityError as exc:
        error = translate(exc)
        if isinstance(error, ConflictError):
            error = ConflictError("the user is already a member of this tenant")
        raise error from exc


@error_boundary
class TenantInviteQueries:
    """Invites to join a tenant, sent by its owners and admins to an email address."""

    @staticmethod
    def create(
        tenant_id: TenantId,
        actor_user_id: UserId,
        *,
        email: str,
        role: InviteRole = "member",
        ttl_seconds: int = 7 * 24 * 3600,
    ) -> tuple[TenantInviteDTO, str]:
        """Invite an email to the tenant; return the invite and its token (shown only now).

        The inviter (``actor_user_id``) must be an owner or an admin of the tenant. A pending
        invite to the same address in this tenant is expired first: one pending invite
        per address. Only the token's SHA-256 is stored.

        Returns:
            ``(invite, token)``: send the token to the address; it cannot be read again.

        Raises:
            ValidationError: ``email``, ``role`` (admin or member), ``ttl_seconds`` (at
                most 366 days) or an id is not valid; nothing was written.
            PermissionDeniedError: the inviter is not an owner or admin of the tenant.
            NotFoundError: the tenant does not exist.
            ConflictError: the address is already a member's, or the inviter's own.
        """
        check_id("tenant_id", tenant_id)
        check_id("actor_user_id", actor_user_id)
        values = load(create_tenant_invite_schema, {"email": email, "role": role})
        now = utcnow()
        expires_at = now + dt.timedelta(seconds=_check_ttl(ttl_seconds))
        token = secrets.token_urlsafe(TOKEN_BYTES)
        with write():
            _check_invitable(tenant_id, actor_user_id, values["email"])
            _expire_stale(tenant_id, values["email"], now)
            invite = _insert(
                {
                    **values,
                    "tenant": tenant_id,
                    "invited_by": actor_user_id,
                    "token_hash": hash_token(token),
                    "expires_at": expires_at,
                }
            )
        return invite, token

    @staticmethod
    def find_by_token(token: str) -> TenantInviteDTO | None:
        """Return the invite this token belongs to (whatever its status), or None.

        Anyone holding the token (the invite link's landing page).

        Returns:
            The invite, or None when no invite has this token.

        Raises:
            ValidationError: ``token`` is not a valid token.
        """
        token_hash = hash_token(_check_token(token))
        query = tenant_invite_dumper.select().where(TenantInvite.token_hash == token_hash)
        with read():
            return tenant_invite_dumper.one(query)

    @staticmethod
    def list_pending(tenant_id: TenantId, actor_user_id: UserId) -> list[TenantInviteDTO]:
        """Return the tenant's pending, unexpired invites, newest first, to one of its owners
        or admins (``actor_user_id``); PermissionDeniedError for anyone else.

        Returns:
            The invites; an empty list when none is pending.

        Raises:
            ValidationError: an id is not valid.
            PermissionDeniedError: the actor is a plain member or not a member.
            NotFoundError: the tenant does not exist.
        """
        check_id("tenant_id", tenant_id)
        check_id("actor_user_id", actor_user_id)
        query = (
            tenant_invite_dumper.select()
            .where(
                (TenantInvite.tenant == tenant_id)
                & (TenantInvite.status == "pending")
                & (TenantInvite.expires_at > utcnow())
            )
            .order_by(TenantInvite.created_at.desc(), TenantInvite.id.desc())
        )
        with read():
            require_role(tenant_id, actor_user_id, MANAGERS)
            return tenant_invite_dumper.many(query)

    @staticmethod
    def accept(token: str, user_id: UserId) -> TenantMemberDTO:
        """Accept an invite as the user it was sent to; return the new membership.

        Any caller acting for ``user_id``, who must be the user the invite was sent to
        (same email) with a verified email. Single use: of two acceptances racing, one
        wins.

        Returns:
            The new membership, with the invite's role.

        Raises:
            ValidationError: ``token`` or ``user_id`` is not valid.
            NotFoundError: no invite has this token, or the user does not exist.
            PermissionDeniedError: the invite was sent to another address, or the user's
                email is not verified.
            ConflictError: the invite was already used, revoked or expired, or the user
                is already a member.
        """
        token_hash = hash_token(_check_token(token))
        check_id("user_id", user_id)
        now = utcnow()
        with write():
            invite = _pending_invite(token_hash, user_id, now)
            _claim(invite, now)
            return _join(invite, user_id)

    @staticmethod
    def revoke(invite_id: TenantInviteId, actor_user_id: UserId) -> TenantInviteDTO:
        """Revoke a pending invite (owners and admins of its tenant); return it.

        The actor must be an owner or an admin of the invite's tenant.

        Returns:
            The revoked invite.

        Raises:
            ValidationError: an id is not valid.
            NotFoundError: no invite has this id.
            PermissionDeniedError: the actor lacks the role.
            ConflictError: the invite is not pending any more.
        """
        check_id("invite_id", invite_id)
        check_id("actor_user_id", actor_user_id)
        with write():
            tenant_id = (
                TenantInvite.select(TenantInvite.tenant)
                .where(TenantInvite.id == invite_id)
                .scalar()
            )
            if tenant_id is None:
                raise NotFoundError(entity="invite", id=invite_id)
            require_role(tenant_id, actor_user_id, MANAGERS)
            query = (
                TenantInvite.update(status="revoked")
                .where((TenantInvite.id == invite_id) & (TenantInvite.status == "pending"))
                .returning(*tenant_invite_dumper.fields)
            )
            rows = list(query.tuples().execute())
            if not rows:
                raise ConflictError("only a pending invite can be revoked")
            return tenant_invite_dumper.row(rows[0])

    @staticmethod
    def expire_overdue(*, now: dt.datetime | None = None) -> int:
        """Mark every pending invite whose time is up as expired; return how many.

        Trusted code (``datalayer maintain`` calls it).

        Returns:
            How many were expired; 0 when none was due.

        Raises:
            ValidationError: ``now`` is not a timezone-aware datetime.
        """
        now = check_now(now)
        with write():
            query = TenantInvite.update(status="expired").where(
                (TenantInvite.status == "pending") & (TenantInvite.expires_at <= now)
            )
            return int(query.execute())


__all__ = ["TenantInviteQueries"]
