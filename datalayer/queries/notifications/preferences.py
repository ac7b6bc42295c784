"""Queries of a recipient's notification preferences, globally and per tenant."""

from __future__ import annotations

from typing import Any

import peewee

from datalayer.errors import error_boundary
from datalayer.models import NotificationPreference
from datalayer.models.base import utcnow
from datalayer.queries.base import write
from datalayer.queries.notifications._membership import require_members
from datalayer.queries.notifications._resolve import resolve_preferences
from datalayer.schemas.base import check_id, load
from datalayer.schemas.notifications import (
    NotificationPreferenceDTO,
    ResolvedNotificationPreferenceDTO,
    UpdateNotificationPreferenceInput,
    notification_preference_dumper,
    update_notification_preference_schema,
)
from datalayer.types import TenantId, UserId

Pref = NotificationPreference


@error_boundary
class PreferenceQueries:
    """Which channels a user receives notifications on, globally and per tenant."""

    @staticmethod
    def resolve(user_id: UserId, *, tenant_id: TenantId | None = None) -> ResolvedNotificationPreferenceDTO:
        """Return the user's flags in force: the tenant row, else the global row, else defaults.

        Any caller acting for ``user_id`` (and ``notify``, which follows it).

        Returns:
            The flags; the defaults (in-app, push and email on, marketing email off) when
            the user has set nothing, or does not exist.

        Raises:
            ValidationError: an id is not valid.
        """
        check_id("user_id", user_id)
        if tenant_id is not None:
            check_id("tenant_id", tenant_id)
        return resolve_preferences(user_id, tenant_id)

    @staticmethod
    def upsert(
        user_id: UserId, data: UpdateNotificationPreferenceInput, *, tenant_id: TenantId | None = None
    ) -> NotificationPreferenceDTO:
        """Set the given flags on the user's global row (or tenant row), creating it atomically.

        Any caller acting for ``user_id``. A tenant row needs the user's membership of
        the tenant.

        Returns:
            The row as it is now.

        Raises:
            ValidationError: ``data`` (the four ``*_enabled`` flags) or an id is not valid;
                nothing was written.
            PermissionDeniedError: ``tenant_id`` is given and the user is not a member.
            NotFoundError: the tenant or the user does not exist.
        """
        check_id("user_id", user_id)
        if tenant_id is not None:
            check_id("tenant_id", tenant_id)
        values = load(update_notification_preference_schema, data)
        now = utcnow()
        # ON CONFLICT names the partial unique index (its columns and predicate), so
        # concurrent first writes meet in the index instead of both inserting.
        target: list[Any] = [Pref.user]
        if tenant_id is None:
            where = peewee.SQL("tenant_id IS NULL")
        else:
            target, where = [Pref.user, Pref.tenant], peewee.SQL("tenant_id IS NOT NULL")
        update = {getattr(Pref, name): getattr(peewee.EXCLUDED, name) for name in values}
        update[Pref.updated_at] = now
        query = (
            Pref.insert(user=user_id, tenant=tenant_id, created_at=now, updated_at=now, **values)
            .on_conflict(conflict_target=target, conflict_where=where, update=update)
            .returning(*notification_preference_dumper.fields)
        )
        with write():
            if tenant_id is not None:  # a tenant row needs the user's membership
                require_members(tenant_id, user_id, who=("user",))
            return notification_preference_dumper.written_one(query)


__all__ = ["PreferenceQueries"]
