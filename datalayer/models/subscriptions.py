"""subscriptions: a tenant's plan, kept in step by billing webhooks, and the events seen."""

from __future__ import annotations

from typing import get_args

import peewee as pw

from datalayer.models.auth import User
from datalayer.models.base import (
    FALSE,
    NOW,
    BaseModel,
    TimestampTZField,
    check_constraint,
    created_at,
    id_field,
    one_of,
    pairs,
    text_default,
    updated_at,
    utcnow,
)
from datalayer.models.tenant import Tenant
from datalayer.types import IngestOutcome, Provider, SubscriptionStatus

SUBSCRIPTION_STATUSES: tuple[SubscriptionStatus, ...] = get_args(SubscriptionStatus)
PROVIDERS: tuple[Provider, ...] = get_args(Provider)
EVENT_OUTCOMES: tuple[IngestOutcome, ...] = get_args(IngestOutcome)


class Subscription(BaseModel):
    id = id_field()
    tenant = pw.ForeignKeyField(
        Tenant, column_name="tenant_id", on_delete="CASCADE", backref="subscriptions", index=False
    )
    purchased_by_user = pw.ForeignKeyField(
        User,
        column_name="purchased_by_user_id",
        null=True,
        on_delete="SET NULL",
        backref="purchases",
    )
    status = pw.TextField(
        choices=pairs(SUBSCRIPTION_STATUSES), default="active", constraints=[text_default("active")]
    )
    plan_id = pw.TextField()
    plan_name = pw.TextField(null=True)
    current_period_start = TimestampTZField(null=True)
    current_period_end = TimestampTZField(null=True)
    cancel_at_period_end = pw.BooleanField(null=True, default=False, constraints=[FALSE])
    trial_start = TimestampTZField(null=True)
    trial_end = TimestampTZField(null=True)
    provider = pw.TextField(choices=pairs(PROVIDERS))
    polar_subscription_id = pw.TextField(null=True)
    polar_customer_id = pw.TextField(null=True)
    revenuecat_app_user_id = pw.TextField(null=True, index=True)
    revenuecat_original_transaction_id = pw.TextField(null=True)
    last_event_at = TimestampTZField(null=True)
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        table_name = "subscriptions"
        indexes = ((("tenant", "status"), False),)
        constraints = [
            check_constraint("subscriptions_status_check", one_of("status", SUBSCRIPTION_STATUSES)),
            check_constraint("subscriptions_provider_check", one_of("provider", PROVIDERS)),
        ]


Subscription.add_index(
    Subscription.index(
        Subscription.polar_subscription_id,
        unique=True,
        where=pw.SQL("polar_subscription_id IS NOT NULL"),
        name="subscriptions_polar_subscription_id_uniq",
    )
)
Subscription.add_index(
    Subscription.index(
        Subscription.revenuecat_original_transaction_id,
        unique=True,
        where=pw.SQL("revenuecat_original_transaction_id IS NOT NULL"),
        name="subscriptions_revenuecat_original_transaction_id_uniq",
    )
)


class SubscriptionEvent(BaseModel):
    id = id_field()
    provider = pw.TextField()
    event_id = pw.TextField()
    event_type = pw.TextField()
    payload = pw.JSONField(null=True)
    subscription = pw.ForeignKeyField(
        Subscription,
        column_name="subscription_id",
        null=True,
        on_delete="SET NULL",
        backref="events",
    )
    # The default serves writers that record an event they applied themselves.
    outcome = pw.TextField(
        choices=pairs(EVENT_OUTCOMES), default="applied", constraints=[text_default("applied")]
    )
    occurred_at = TimestampTZField(null=True)
    processed_at = TimestampTZField(default=utcnow, constraints=[NOW])

    class Meta:
        table_name = "subscription_events"
        indexes = ((("provider", "event_id"), True),)
        constraints = [
            check_constraint("subscription_events_outcome_check", one_of("outcome", EVENT_OUTCOMES)),
        ]
