"""Queries of the notifications domain: notifications and the inbox.

Scope: only the recipient reads or changes a notification — every inbox function takes
the ``user_id`` and matches it against ``recipient_user_id``, so another user's id finds
nothing and changes nothing. ``tenant_id=None`` in ``inbox``, ``unread_count`` and
``mark_all_read`` means *all* of the user's notifications (every tenant's and the
personal ones: the bell shows everything); a ``tenant_id`` narrows them to that tenant,
which the inbox index (recipient_user_id, tenant_id, created_at, id) serves in order.
"""

from __future__ import annotations

from typing import Any, Literal

from datalayer.connection.replicas import replica_read
from datalayer.errors import error_boundary
from datalayer.models import Notification, NotificationDelivery
from datalayer.models.base import utcnow
from datalayer.queries.base import Page, keyset_page, read, write
from datalayer.queries.notifications._membership import require_members
from datalayer.queries.notifications._resolve import resolve_preferences
from datalayer.queries.notifications._wake import waking_rows
from datalayer.schemas.base import check_id, load, require
from datalayer.schemas.notifications import (
    NotificationDeliveryDTO,
    NotificationDTO,
    NotificationWithDeliveriesDTO,
    create_notification_schema,
    notification_delivery_dumper,
    notification_dumper,
)
from datalayer.types import NotificationId, NotificationType, TenantId, UserId

N = Notification

# Channel → the preference flag that enables it.
Flag = Literal["in_app_enabled", "push_enabled", "email_enabled"]
CHANNEL_FLAGS: tuple[tuple[str, Flag], ...] = (
    ("in_app", "in_app_enabled"),
    ("push", "push_enabled"),
    ("email", "email_enabled"),
)


def _scope(user_id: str, tenant_id: str | None) -> Any:
    """The user's notifications, in one tenant when ``tenant_id`` is given."""
    check_id("user_id", user_id)
    cond = N.recipient_user == user_id
    if tenant_id is not None:
        cond &= N.tenant == check_id("tenant_id", tenant_id)
    return cond


def _optional_id(name: str, value: str | None) -> str | None:
    return None if value is None else check_id(name, value)


@error_boundary
class NotificationQueries:
    """Notifications: created with their deliveries, read and changed by the recipient only."""

    @staticmethod
    def notify(
        recipient_user_id: UserId,
        *,
        type: NotificationType,  # noqa: A002 - the spec's name
        title: str,
        body: str,
        tenant_id: TenantId | None = None,
        actor_user_id: UserId | None = None,
        deep_link: str | None = None,
        data: Any = None,
        batch_key: str | None = None,
    ) -> NotificationWithDeliveriesDTO:
        """Create a notification and queue a delivery per channel the recipient enabled.

        Trusted code notifying on the product's behalf (it decides who may notify whom).
        With a ``tenant_id``, the recipient and the actor (when given) must be members of
        the tenant. The notification and its deliveries are written in one transaction;
        the channels follow ``PreferenceQueries.resolve``.

        Returns:
            The notification with its ``deliveries`` (one pending delivery per enabled
            channel; an empty list when the recipient switched every channel off).

        Raises:
            ValidationError: ``type`` is not one of the notification types, a text or
                ``data`` is too long or malformed, or an id is not valid; nothing was
                written.
            PermissionDeniedError: the recipient or the actor is not a member of the tenant.
            NotFoundError: the tenant, the recipient or the actor does not exist.
        """
        check_id("recipient_user_id", recipient_user_id)
        _optional_id("tenant_id", tenant_id)
        _optional_id("actor_user_id", actor_user_id)
        values = load(
            create_notification_schema,
            {
                "type": type,
                "title": title,
                "body": body,
                "deep_link": deep_link,
                "data": data,
                "batch_key": batch_key,
            },
        )
        with write():
            if tenant_id is not None:  # the recipient and the actor belong to it
                if actor_user_id is None:
                    require_members(tenant_id, recipient_user_id, who=("recipient",))
                else:
                    require_members(
                        tenant_id, recipient_user_id, actor_user_id, who=("recipient", "actor")
                    )
            prefs = resolve_preferences(recipient_user_id, tenant_id)
            insert = N.insert(
                recipient_user=recipient_user_id,
                tenant=tenant_id,
                actor_user=actor_user_id,
                **values,
            ).returning(*notification_dumper.fields)
            notification = notification_dumper.written_one(insert)
            channels = [channel for channel, flag in CHANNEL_FLAGS if prefs[flag]]
            deliveries = _queue(notification["id"], channels)
        return {**notification, "deliveries": deliveries}

    @staticmethod
    @replica_read
    def inbox(
        user_id: UserId,
        *,
        tenant_id: TenantId | None = None,
        limit: int = 20,
        cursor: str | None = None,
        include_archived: bool = False,
    ) -> Page[NotificationDTO]:
        """Return a newest-first page of the user's notifications (all tenants when None).

        Any caller acting for ``user_id`` (the recipient): nobody reads another user's
        inbox. ``tenant_id`` narrows it to one tenant; archived ones are left out unless
        ``include_archived``. Runs on a read replica when there is one.

        Returns:
            A page; ``items`` is empty when the user has no notification (or another
            user's id is given).

        Raises:
            ValidationError: an id, ``limit``, ``cursor`` or ``include_archived`` is not
                valid.
        """
        cond = _scope(user_id, tenant_id)
        require(
            "include_archived",
            include_archived,
            lambda v: isinstance(v, bool),
            "Must be a boolean.",
        )
        if not include_archived:
            cond &= N.archived_at.is_null()
        query = notification_dumper.select().where(cond)
        return keyset_page(
            query,
            dumper=notification_dumper,
            ts_field=N.created_at,
            id_field=N.id,
            limit=limit,
            cursor=cursor,
        )

    @staticmethod
    @replica_read
    def unread_count(user_id: UserId, *, tenant_id: TenantId | None = None) -> int:
        """Count the user's notifications neither read nor archived.

        Any caller acting for ``user_id`` (the recipient). ``tenant_id`` narrows the count
        to one tenant. Runs on a read replica when there is one.

        Returns:
            The count; 0 when there is none.

        Raises:
            ValidationError: an id is not valid.
        """
        cond = _scope(user_id, tenant_id) & N.read_at.is_null() & N.archived_at.is_null()
        with read():
            return N.select().where(cond).count()

    @staticmethod
    def mark_read(notification_id: NotificationId, user_id: UserId) -> bool:
        """Mark the user's notification read; False when it is not theirs or already read.

        Any caller acting for ``user_id``: only the recipient marks a notification.

        Returns:
            True when it was marked now; False when no notification has this id, it is
            another user's, or it was already read.

        Raises:
            ValidationError: an id is not valid.
        """
        cond = _scope(user_id, None) & (N.id == check_id("notification_id", notification_id))
        with write():
            query = N.update({N.read_at: utcnow()}).where(cond & N.read_at.is_null())
            return int(query.execute()) > 0

    @staticmethod
    def mark_all_read(user_id: UserId, *, tenant_id: TenantId | None = None) -> int:
        """Mark every unread, unarchived notification of the user read; return how many.

        Any caller acting for ``user_id`` (the recipient); ``tenant_id`` narrows it to one
        tenant.

        Returns:
            How many were marked; 0 when none was unread.

        Raises:
            ValidationError: an id is not valid.
        """
        cond = _scope(user_id, tenant_id) & N.read_at.is_null() & N.archived_at.is_null()
        with write():
            return int(N.update({N.read_at: utcnow()}).where(cond).execute())

    @staticmethod
    def archive(notification_id: NotificationId, user_id: UserId) -> bool:
        """Archive the user's notification; False when it is not theirs or already archived.

        Any caller acting for ``user_id``: only the recipient archives a notification.
        ``datalayer maintain`` deletes archived ones after the retention period.

        Returns:
            True when it was archived now; False when no notification has this id, it is
            another user's, or it was already archived.

        Raises:
            ValidationError: an id is not valid.
        """
        cond = _scope(user_id, None) & (N.id == check_id("notification_id", notification_id))
        with write():
            query = N.update({N.archived_at: utcnow()}).where(cond & N.archived_at.is_null())
            return int(query.execute()) > 0


def _queue(notification_id: str, channels: list[str]) -> list[NotificationDeliveryDTO]:
    """Insert one pending delivery per channel in one statement; return them."""
    if not channels:
        return []
    now = utcnow()
    rows = [
        {
            "notification": notification_id,
            "channel": channel,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for channel in channels
    ]
    query = NotificationDelivery.insert_many(rows).returning(*notification_delivery_dumper.fields)
    values, raw = waking_rows(query)  # due now: NOTIFY in the same transaction
    delivered = (
        notification_delivery_dumper.raw_rows(values, sqlite=False)
        if raw
        else notification_delivery_dumper.rows(values)
    )
    order = {channel: i for i, channel in enumerate(channels)}
    return sorted(delivered, key=lambda d: order[d["channel"]])


__all__ = ["NotificationQueries"]
