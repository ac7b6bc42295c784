"""The admin audit trail: append-only (the model refuses UPDATE and DELETE, and on
PostgreSQL a trigger rejects them too), read newest first.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import peewee

from datalayer.connection.replicas import replica_read
from datalayer.errors import PermissionDeniedError, ValidationError, error_boundary
from datalayer.models import AdminAuditLog
from datalayer.models.admin import AUDIT_TARGET_TYPES
from datalayer.queries.admin._audit import audit
from datalayer.queries.admin_rights import acting_admin
from datalayer.queries.base import Page, keyset_page, read, write
from datalayer.schemas.admin import (
    AdminAuditLogDTO,
    AuditSummaryDTO,
    admin_audit_log_dumper,
)
from datalayer.schemas.base import check_aware, check_id, require
from datalayer.types import AdminUserId, AuditTargetType, ImpersonationSessionId


def _filters(
    admin_user_id: str | None,
    action: str | None,
    target_type: str | None,
    target_id: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> list[peewee.Expression]:
    """Return the WHERE terms for the given filters, each argument validated."""
    terms = []
    if admin_user_id is not None:
        terms.append(AdminAuditLog.admin_user == check_id("admin_user_id", admin_user_id))
    if action is not None:
        terms.append(AdminAuditLog.action == check_id("action", action))
    if target_type is not None:
        require(
            "target_type",
            target_type,
            lambda v: v in AUDIT_TARGET_TYPES,
            f"Must be one of: {', '.join(AUDIT_TARGET_TYPES)}.",
        )
        terms.append(AdminAuditLog.target_type == target_type)
    if target_id is not None:
        terms.append(AdminAuditLog.target_id == check_id("target_id", target_id))
    if since is not None:
        terms.append(AdminAuditLog.created_at >= check_aware("since", since))
    if until is not None:
        terms.append(AdminAuditLog.created_at < check_aware("until", until))
    return terms


def _counts(column: peewee.Field, window: peewee.Expression) -> dict[str, int]:
    """Count the rows in the window per value of ``column``."""
    query: Any = (
        AdminAuditLog.select(column, peewee.fn.COUNT(AdminAuditLog.id))
        .where(window)
        .group_by(column)
        .order_by(column)
    )
    return {key: count for key, count in query.tuples()}


LIBRARY_ACTIONS = ("USER_ERASE",)
LIBRARY_ACTION_PREFIXES = ("IMPERSONATION_", "ADMIN_ROLE_")


def reserved_action(action: Any) -> None:
    """PermissionDeniedError for an action only the library writes."""
    if isinstance(action, str) and (
        action in LIBRARY_ACTIONS or action.startswith(LIBRARY_ACTION_PREFIXES)
    ):
        raise PermissionDeniedError(f"only the library writes {action} audit rows")


@error_boundary
class AuditLogQueries:
    """The admin audit trail: append and read; there is no update and no delete."""

    @staticmethod
    def append(
        actor_admin_id: AdminUserId,
        *,
        action: str,
        target_type: AuditTargetType,
        target_id: str | None = None,
        reason: str | None = None,
        metadata: Any = None,
        ip: str | None = None,
        user_agent: str | None = None,
        impersonation_session_id: ImpersonationSessionId | None = None,
    ) -> AdminAuditLogDTO:
        """Record what an admin did; PermissionDeniedError unless the admin exists and is
        active.

        The actions the library writes itself (USER_ERASE, IMPERSONATION_*, ADMIN_ROLE_*)
        are refused (PermissionDeniedError): a USER_ERASE row is written by
        ``UserQueries.erase`` alone, and the trail's redaction rule relies on it.
        Back-office code recording an action of the application's own.

        Returns:
            The new audit entry.

        Raises:
            ValidationError: ``action``, ``target_type`` (user, tenant, subscription,
                admin_user, webhook_event, system), a text, ``metadata`` or an id is not
                valid; nothing was written.
            PermissionDeniedError: ``action`` is one the library writes itself.
            NotFoundError: the admin does not exist.
        """
        reserved_action(action)
        with write():
            acting_admin(actor_admin_id)
            return audit(
                actor_admin_id,
                action,
                target_type,
                target_id,
                reason=reason,
                metadata=metadata,
                ip=ip,
                user_agent=user_agent,
                impersonation_session_id=impersonation_session_id,
            )

    @staticmethod
    @replica_read
    def summary(*, since: dt.datetime, until: dt.datetime) -> AuditSummaryDTO:
        """Count the entries in [since, until) by action and by admin.

        Back-office code (the console's audit page). Runs on a read replica when there is
        one.

        Returns:
            The totals; zero counts and empty maps when the window holds no entry.

        Raises:
            ValidationError: ``since`` or ``until`` is not timezone-aware, or ``until`` is
                before ``since``.
        """
        since, until = check_aware("since", since), check_aware("until", until)
        if until < since:
            raise ValidationError({"until": ["Must not be before since."]})
        window = (AdminAuditLog.created_at >= since) & (AdminAuditLog.created_at < until)
        with read():
            by_action = _counts(AdminAuditLog.action, window)
            by_admin = _counts(AdminAuditLog.admin_user, window)
        return {
            "since": since.isoformat(),
            "until": until.isoformat(),
            "total": sum(by_action.values()),
            "by_action": by_action,
            "by_admin": by_admin,
        }

    # Defined last: inside the class body the name ``list`` is this method.
    @staticmethod
    @replica_read
    def list(  # noqa: A003 - the spec's name
        *,
        admin_user_id: AdminUserId | None = None,
        action: str | None = None,
        target_type: AuditTargetType | None = None,
        target_id: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[AdminAuditLogDTO]:
        """Return a newest-first page of audit entries matching every filter given.

        Back-office code (the console's audit page). Runs on a read replica when there is
        one.

        Returns:
            A page; ``items`` is empty when no entry matches.

        Raises:
            ValidationError: a filter, ``limit`` (1-1000) or ``cursor`` is not valid.
        """
        terms = _filters(admin_user_id, action, target_type, target_id, since, until)
        query = admin_audit_log_dumper.select()
        if terms:
            query = query.where(*terms)
        return keyset_page(
            query,
            dumper=admin_audit_log_dumper,
            ts_field=AdminAuditLog.created_at,
            id_field=AdminAuditLog.id,
            limit=limit,
            cursor=cursor,
        )


__all__ = ["AuditLogQueries"]
