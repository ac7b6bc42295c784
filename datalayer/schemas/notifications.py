"""DTOs of the notifications domain: the inbox, the delivery queue, preferences, push targets."""

from __future__ import annotations

from typing import Any, TypedDict

from marshmallow import fields, validate

from datalayer.models import (
    Notification,
    NotificationDelivery,
    NotificationPreference,
    NotificationTarget,
)
from datalayer.schemas.base import (
    Dumper,
    Email,
    Text,
    model_schema,
    writable_schema,
)
from datalayer.types import (
    Channel,
    DeliveryId,
    DeliveryStatus,
    NotificationId,
    NotificationPreferenceId,
    NotificationTargetId,
    TenantId,
    UserId,
)

NotificationSchema = model_schema(
    Notification,
    name="NotificationSchema",
    dump_only=("tenant_id", "recipient_user_id", "actor_user_id", "read_at", "archived_at"),
    overrides={
        "title": Text(required=True, validate=validate.Length(min=1, max=255)),
        "deep_link": Text(allow_none=True, validate=validate.Length(max=500)),
    },
)
# What ``NotificationQueries.notify`` takes besides the ids that decide scope.
CreateNotificationSchema = writable_schema(
    NotificationSchema,
    name="CreateNotificationSchema",
    required=("type", "title", "body"),
)

# Deliveries are written by notify() and moved through their states by the queue
# functions only: there is no create or update schema a caller could fill.
NotificationDeliverySchema = model_schema(
    NotificationDelivery,
    name="NotificationDeliverySchema",
    dump_only=tuple(NotificationDelivery._meta.columns),
)

# notify()'s answer: the notification with the deliveries it queued.
NotificationWithDeliveriesSchema = model_schema(
    Notification,
    name="NotificationWithDeliveriesSchema",
    dump_only=tuple(Notification._meta.columns),
    overrides={
        "deliveries": fields.List(fields.Nested(NotificationDeliverySchema), dump_only=True),
    },
)

# Who a claimed delivery goes to: the recipient's address and push identities.
DeliveryRecipientSchema = model_schema(
    NotificationTarget,
    name="DeliveryRecipientSchema",
    exclude=("id", "last_active_at", "created_at", "updated_at"),
    dump_only=("user_id", "novu_subscriber_id", "expo_push_token"),
    overrides={"email": Email(dump_only=True), "name": Text(dump_only=True)},
)
# claim()'s answer: a delivery with what the worker needs to send it, fetched in one query.
ClaimedDeliverySchema = model_schema(
    NotificationDelivery,
    name="ClaimedDeliverySchema",
    dump_only=tuple(NotificationDelivery._meta.columns),
    overrides={
        "notification": fields.Nested(NotificationSchema, dump_only=True),
        "recipient": fields.Nested(DeliveryRecipientSchema, dump_only=True),
    },
)

NotificationPreferenceSchema = model_schema(
    NotificationPreference, name="NotificationPreferenceSchema", dump_only=("user_id", "tenant_id")
)
# upsert(): the flags given are set; on the first write the others take their defaults.
UpdateNotificationPreferenceSchema = writable_schema(
    NotificationPreferenceSchema,
    name="UpdateNotificationPreferenceSchema",
)
# resolve()'s answer: the flags in force and where they came from.
ResolvedNotificationPreferenceSchema = model_schema(
    NotificationPreference,
    name="ResolvedNotificationPreferenceSchema",
    exclude=("id", "created_at", "updated_at"),
    dump_only=tuple(NotificationPreference._meta.columns),
    overrides={
        "source": Text(dump_only=True, validate=validate.OneOf(("tenant", "global", "default"))),
    },
)

NotificationTargetSchema = model_schema(
    NotificationTarget,
    name="NotificationTargetSchema",
    dump_only=("user_id", "last_active_at"),
    overrides={
        "novu_subscriber_id": Text(allow_none=True, validate=validate.Length(min=1, max=255)),
        "expo_push_token": Text(allow_none=True, validate=validate.Length(min=1, max=255)),
    },
)
UpdateNotificationTargetSchema = writable_schema(
    NotificationTargetSchema,
    name="UpdateNotificationTargetSchema",
)


class NotificationDTO(TypedDict):
    id: NotificationId
    tenant_id: TenantId | None
    recipient_user_id: UserId
    actor_user_id: UserId | None
    type: str
    title: str
    body: str
    deep_link: str | None
    data: Any
    batch_key: str | None
    created_at: str
    read_at: str | None
    archived_at: str | None


class NotificationDeliveryDTO(TypedDict):
    id: DeliveryId
    notification_id: NotificationId
    channel: Channel
    status: DeliveryStatus
    attempts: int
    max_attempts: int
    next_attempt_at: str
    locked_at: str | None
    locked_by: str | None
    provider_message_id: str | None
    error: str | None
    sent_at: str | None
    created_at: str
    updated_at: str


class NotificationWithDeliveriesDTO(NotificationDTO):
    deliveries: list[NotificationDeliveryDTO]


class DeliveryRecipientDTO(TypedDict):
    user_id: UserId
    novu_subscriber_id: str | None
    expo_push_token: str | None
    email: str
    name: str


class ClaimedDeliveryDTO(NotificationDeliveryDTO):
    notification: NotificationDTO
    recipient: DeliveryRecipientDTO


# Write inputs: what ``data`` may hold (``total=False``: every key may be left out but the
# ``Required`` ones). Static types only — at run time any mapping is accepted and checked
# by the schema, which refuses unknown keys. tests/test_schemas_common.py keeps each one
# equal to its schema's fields. The call syntax, because ``Required`` inside a string
# annotation (``from __future__ import annotations``) is lost at run time on 3.11.


UpdateNotificationPreferenceInput = TypedDict(
    "UpdateNotificationPreferenceInput",
    {
        "in_app_enabled": bool,
        "push_enabled": bool,
        "email_enabled": bool,
        "marketing_email_enabled": bool,
    },
    total=False,
)


UpdateNotificationTargetInput = TypedDict(
    "UpdateNotificationTargetInput",
    {
        "novu_subscriber_id": str | None,
        "expo_push_token": str | None,
    },
    total=False,
)


class NotificationPreferenceDTO(TypedDict):
    id: NotificationPreferenceId
    user_id: UserId
    tenant_id: TenantId | None
    in_app_enabled: bool
    push_enabled: bool
    email_enabled: bool
    marketing_email_enabled: bool
    created_at: str
    updated_at: str


class ResolvedNotificationPreferenceDTO(TypedDict):
    user_id: UserId
    tenant_id: TenantId | None
    in_app_enabled: bool
    push_enabled: bool
    email_enabled: bool
    marketing_email_enabled: bool
    source: str


class NotificationTargetDTO(TypedDict):
    id: NotificationTargetId
    user_id: UserId
    novu_subscriber_id: str | None
    expo_push_token: str | None
    last_active_at: str | None
    created_at: str
    updated_at: str


# Built once, at import (marshmallow's habit): the instances the query modules use.
notification_schema = NotificationSchema()
create_notification_schema = CreateNotificationSchema()
notification_delivery_schema = NotificationDeliverySchema()
notification_preference_schema = NotificationPreferenceSchema()
update_notification_preference_schema = UpdateNotificationPreferenceSchema()
notification_target_schema = NotificationTargetSchema()
update_notification_target_schema = UpdateNotificationTargetSchema()

notification_dumper: Dumper[NotificationDTO] = Dumper(notification_schema, Notification)
notification_delivery_dumper: Dumper[NotificationDeliveryDTO] = Dumper(notification_delivery_schema, NotificationDelivery)
notification_preference_dumper: Dumper[NotificationPreferenceDTO] = Dumper(notification_preference_schema, NotificationPreference)
notification_target_dumper: Dumper[NotificationTargetDTO] = Dumper(notification_target_schema, NotificationTarget)

# The flags a recipient has before writing any preference (the columns' defaults).
DEFAULT_PREFERENCES: dict[str, bool] = {
    "in_app_enabled": True,
    "push_enabled": False,
    "email_enabled": True,
    "marketing_email_enabled": False,
}
PREFERENCE_FLAGS = tuple(DEFAULT_PREFERENCES)


# One item of ``DeliveryQueries.mark_sent_many``: ``(delivery_id, provider_message_id)``, or
# with the ``attempts`` of the claim as a third member to fence the mark on that claim.
SentItem = tuple[DeliveryId, str | None] | tuple[DeliveryId, str | None, int | None]


class DeliveryStats(TypedDict):
    """The delivery queue's health (``DeliveryQueries.stats``, ``datalayer queue --json``).

    Attributes:
        now: The moment the figures are for (ISO-8601, UTC).
        by_status: Deliveries per status, every status present (0 when none).
        by_channel: The same counts per channel.
        oldest_due_age_seconds: How long the oldest due pending delivery has waited;
            None when none is due.
        expired_leases: Deliveries still ``processing`` past their lease's end.
        sent_last_hour: Deliveries sent in the last hour.
        failed_last_hour: Deliveries that failed for good in the last hour.
        failure_rate_last_hour: failed / (sent + failed) in the last hour; None when
            neither happened.
    """

    now: str
    by_status: dict[DeliveryStatus, int]
    by_channel: dict[str, dict[DeliveryStatus, int]]
    oldest_due_age_seconds: float | None
    expired_leases: int
    sent_last_hour: int
    failed_last_hour: int
    failure_rate_last_hour: float | None


__all__ = [
    "DeliveryStats",
    "SentItem",
    "UpdateNotificationPreferenceInput",
    "UpdateNotificationTargetInput",
    "ClaimedDeliveryDTO",
    "ClaimedDeliverySchema",
    "CreateNotificationSchema",
    "DeliveryRecipientDTO",
    "DeliveryRecipientSchema",
    "NotificationDTO",
    "NotificationDeliveryDTO",
    "NotificationDeliverySchema",
    "NotificationPreferenceDTO",
    "NotificationPreferenceSchema",
    "NotificationSchema",
    "NotificationTargetDTO",
    "NotificationTargetSchema",
    "NotificationWithDeliveriesDTO",
    "NotificationWithDeliveriesSchema",
    "ResolvedNotificationPreferenceDTO",
    "ResolvedNotificationPreferenceSchema",
    "UpdateNotificationPreferenceSchema",
    "UpdateNotificationTargetSchema",
]
