"""notifications: the inbox, the delivery work queue, preferences and push targets."""

from __future__ import annotations

from typing import get_args

import peewee as pw

from datalayer.models.auth import User
from datalayer.models.base import (
    FALSE,
    NOW,
    TRUE,
    ZERO,
    BaseModel,
    TimestampTZField,
    check_constraint,
    created_at,
    id_field,
    int_default,
    one_of,
    pairs,
    slug_check,
    updated_at,
    utcnow,
)
from datalayer.models.tenant import Tenant
from datalayer.types import Channel, DeliveryStatus, NotificationType

# The original package's catalogue. The create schema accepts only these; the database
# checks only the shape (a lower-case slug), so rows other writers store stay readable.
NOTIFICATION_TYPES: tuple[NotificationType, ...] = get_args(NotificationType)
CHANNELS: tuple[Channel, ...] = get_args(Channel)
DELIVERY_STATUSES: tuple[DeliveryStatus, ...] = get_args(DeliveryStatus)


class Notification(BaseModel):
    id = id_field()
    tenant = pw.ForeignKeyField(
        Tenant, column_name="tenant_id", null=True, on_delete="CASCADE", backref="notifications"
    )
    recipient_user = pw.ForeignKeyField(
        User,
        column_name="recipient_user_id",
        on_delete="CASCADE",
        backref="notifications",
        index=False,
    )
    actor_user = pw.ForeignKeyField(
        User,
        column_name="actor_user_id",
        null=True,
        on_delete="SET NULL",
        backref="acted_notifications",
    )
    type = pw.TextField(choices=pairs(NOTIFICATION_TYPES))
    title = pw.TextField()
    body = pw.TextField()
    deep_link = pw.TextField(null=True)
    data = pw.JSONField(null=True)
    batch_key = pw.TextField(null=True, index=True)
    created_at = created_at()
    read_at = TimestampTZField(null=True)
    archived_at = TimestampTZField(null=True)

    class Meta:
        table_name = "notifications"
        constraints = [
            slug_check("notifications_type_check", "type"),
            check_constraint("notifications_title_length_check", "length(title) <= 255"),
            check_constraint(
                "notifications_deep_link_length_check",
                "deep_link IS NULL OR length(deep_link) <= 500",
            ),
        ]


Notification.add_index(
    Notification.index(
        Notification.recipient_user,
        Notification.tenant,
        Notification.created_at,
        Notification.id,
        name="notifications_inbox_idx",
    )
)
Notification.add_index(
    Notification.index(
        Notification.recipient_user,
        where=pw.SQL("read_at IS NULL AND archived_at IS NULL"),
        name="notifications_unread_idx",
    )
)


# The inbox across all of a user's tenants (tenant_id not fixed), newest first.
Notification.add_index(
    Notification.index(
        Notification.recipient_user,
        Notification.created_at,
        Notification.id,
        name="notifications_recipient_recent_idx",
    )
)


class NotificationDelivery(BaseModel):
    id = id_field()
    notification = pw.ForeignKeyField(
        Notification,
        column_name="notification_id",
        on_delete="CASCADE",
        backref="deliveries",
        index=False,
    )
    channel = pw.TextField(choices=pairs(CHANNELS))
    status = pw.TextField(
        choices=pairs(DELIVERY_STATUSES),
        default="pending",
        constraints=[pw.SQL("DEFAULT 'pending'")],
    )
    attempts = pw.IntegerField(default=0, constraints=[ZERO])
    max_attempts = pw.IntegerField(default=5, constraints=[int_default(5)])
    next_attempt_at = TimestampTZField(default=utcnow, constraints=[NOW])
    locked_at = TimestampTZField(null=True)
    locked_by = pw.TextField(null=True)
    provider_message_id = pw.TextField(null=True)
    error = pw.TextField(null=True)
    sent_at = TimestampTZField(null=True)
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        table_name = "notification_deliveries"
        indexes = ((("notification", "channel"), True),)
        constraints = [
            check_constraint("notification_deliveries_channel_check", one_of("channel", CHANNELS)),
            check_constraint("notification_deliveries_status_check", one_of("status", DELIVERY_STATUSES)),
        ]


# The claim's order, (next_attempt_at, id): a burst of deliveries due at the same instant
# is read in order up to the claim's LIMIT, not all read and sorted for every claim.
NotificationDelivery.add_index(
    NotificationDelivery.index(
        NotificationDelivery.next_attempt_at,
        NotificationDelivery.id,
        where=pw.SQL("status = 'pending'"),
        name="notification_deliveries_due_id_idx",
    )
)
# Leases that ran out are found by locked_at among the rows being processed.
NotificationDelivery.add_index(
    NotificationDelivery.index(
        NotificationDelivery.locked_at,
        where=pw.SQL("status = 'processing'"),
        name="notification_deliveries_lease_idx",
    )
)


class NotificationPreference(BaseModel):
    id = id_field()
    # Indexed on its own: the two partial unique indexes below cannot serve a cascade or
    # any WHERE user_id = ... that does not also fix tenant_id's nullness.
    user = pw.ForeignKeyField(
        User,
        column_name="user_id",
        on_delete="CASCADE",
        backref="notification_preferences",
    )
    tenant = pw.ForeignKeyField(
        Tenant,
        column_name="tenant_id",
        null=True,
        on_delete="CASCADE",
        backref="notification_preferences",
    )
    in_app_enabled = pw.BooleanField(default=True, constraints=[TRUE])
    push_enabled = pw.BooleanField(default=False, constraints=[FALSE])
    email_enabled = pw.BooleanField(default=True, constraints=[TRUE])
    marketing_email_enabled = pw.BooleanField(default=False, constraints=[FALSE])
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        table_name = "notification_preferences"


NotificationPreference.add_index(
    NotificationPreference.index(
        NotificationPreference.user,
        unique=True,
        where=pw.SQL("tenant_id IS NULL"),
        name="notification_preferences_global_uniq",
    )
)
NotificationPreference.add_index(
    NotificationPreference.index(
        NotificationPreference.user,
        NotificationPreference.tenant,
        unique=True,
        where=pw.SQL("tenant_id IS NOT NULL"),
        name="notification_preferences_tenant_uniq",
    )
)


class NotificationTarget(BaseModel):
    id = id_field()
    user = pw.ForeignKeyField(
        User,
        column_name="user_id",
        on_delete="CASCADE",
        backref="notification_targets",
        unique=True,
    )
    novu_subscriber_id = pw.TextField(null=True)
    expo_push_token = pw.TextField(null=True)
    last_active_at = TimestampTZField(null=True)
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        table_name = "notification_targets"
