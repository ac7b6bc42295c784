"""DTOs of the subscriptions domain: subscriptions, the billing events seen, and the
provider-neutral webhook event ``SubscriptionEventQueries.ingest`` takes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypedDict

import marshmallow
from marshmallow import fields, validate

from datalayer.models import Subscription, SubscriptionEvent
from datalayer.models.subscriptions import PROVIDERS
from datalayer.schemas.base import (
    AwareDateTime,
    Dumper,
    Json,
    Text,
    model_schema,
    writable_schema,
)
from datalayer.types import (
    IngestOutcome,
    Provider,
    SubscriptionEventId,
    SubscriptionId,
    SubscriptionStatus,
    TenantId,
    UserId,
)

# The provider-neutral event types that change a subscription. Polar's own names are
# already these; RevenueCat's are mapped by ``neutral_event_type``. Any other type is
# recorded with the outcome ``ignored_type``.
SUBSCRIPTION_EVENT_TYPES = frozenset(
    {
        "subscription.created",
        "subscription.updated",
        "subscription.active",
        "subscription.trialing",
        "subscription.renewed",
        "subscription.past_due",
        "subscription.canceled",
        "subscription.uncanceled",
        "subscription.revoked",
        "subscription.expired",
        "subscription.paused",
        "subscription.resumed",
    }
)
REVENUECAT_EVENT_TYPES = {
    "INITIAL_PURCHASE": "subscription.created",
    "RENEWAL": "subscription.renewed",
    "PRODUCT_CHANGE": "subscription.updated",
    "SUBSCRIPTION_EXTENDED": "subscription.updated",
    "CANCELLATION": "subscription.canceled",
    "UNCANCELLATION": "subscription.uncanceled",
    "BILLING_ISSUE": "subscription.past_due",
    "SUBSCRIPTION_PAUSED": "subscription.paused",
    "EXPIRATION": "subscription.expired",
}

# The column that names a subscription at each provider (each has a partial unique index).
PROVIDER_KEYS = {
    "polar": "polar_subscription_id",
    "revenuecat": "revenuecat_original_transaction_id",
}



def neutral_event_type(provider: str, event_type: str) -> str | None:
    """Return the provider-neutral type of an event, or None when it changes nothing."""
    if provider == "revenuecat":
        event_type = REVENUECAT_EVENT_TYPES.get(event_type, event_type)
    return event_type if event_type in SUBSCRIPTION_EVENT_TYPES else None


SubscriptionSchema = model_schema(
    Subscription,
    name="SubscriptionSchema",
    dump_only=("tenant_id", "provider", "last_event_at"),
    overrides={
        "plan_id": Text(required=True, validate=validate.Length(min=1, max=255)),
        "plan_name": Text(allow_none=True, validate=validate.Length(max=255)),
    },
)
SubscriptionEventSchema = model_schema(SubscriptionEvent, name="SubscriptionEventSchema")

# The state an event carries: every column but the server-owned ones (SubscriptionSchema's
# dump_only). Events carry the full state: a field left out is stored as empty (None, or
# False for cancel_at_period_end), so the newest event alone decides.
SubscriptionStateSchema = writable_schema(SubscriptionSchema, name="SubscriptionStateSchema")
STATE_COLUMNS: tuple[str, ...] = tuple(SubscriptionStateSchema._declared_fields)


def _key_text() -> Text:
    return Text(required=True, validate=validate.Length(min=1, max=255))


class IngestEventSchema(marshmallow.Schema):
    """A provider-neutral billing event, as a webhook adapter builds it."""

    provider = Text(required=True, validate=validate.OneOf(PROVIDERS))
    event_id = _key_text()
    event_type = Text(required=True, validate=validate.Length(min=1, max=100))
    occurred_at = AwareDateTime(required=True)
    tenant_id = Text(load_default=None, allow_none=True, validate=validate.Length(min=1, max=255))
    payload = Json(load_default=None, allow_none=True)
    subscription = fields.Nested(SubscriptionStateSchema, required=True)

    @marshmallow.validates_schema
    def _provider_key_and_state(self, data: dict[str, Any], **kwargs: Any) -> None:
        state = data.get("subscription") or {}
        provider = data.get("provider")
        missing: dict[str, list[str]] = {}
        key = PROVIDER_KEYS.get(provider or "")
        if key and not state.get(key):
            missing[key] = [f"Required for provider {provider}."]
        if provider and neutral_event_type(provider, data.get("event_type", "")):
            for column in ("status", "plan_id"):
                if state.get(column) is None:
                    missing[column] = ["Required for a subscription event."]
        if missing:
            raise marshmallow.ValidationError({"subscription": missing})


class _BillingSubscriptionStateKeys(TypedDict, total=False):
    purchased_by_user_id: str | None
    status: SubscriptionStatus
    plan_id: str
    plan_name: str | None
    current_period_start: dt.datetime | str | None
    current_period_end: dt.datetime | str | None
    cancel_at_period_end: bool | None
    trial_start: dt.datetime | str | None
    trial_end: dt.datetime | str | None
    polar_subscription_id: str | None
    polar_customer_id: str | None
    revenuecat_app_user_id: str | None
    revenuecat_original_transaction_id: str | None


class BillingSubscriptionState(_BillingSubscriptionStateKeys):
    """The subscription's whole state after a billing event (``BillingEvent.subscription``).

    Events carry the full state: a key left out is stored as empty (None, or False for
    ``cancel_at_period_end``), so the newest event alone decides. Timestamps are aware
    datetimes or ISO-8601 text with an offset.

    Attributes:
        status: ``trialing``, ``active``, ``past_due``, ``canceled``, ``expired`` or
            ``paused``. Required for a subscription event (see ``BillingEvent.event_type``).
        plan_id: The plan (1-255 characters). Required for a subscription event.
        plan_name: Its display name.
        current_period_start: When the paid period began.
        current_period_end: When it ends; ``past_due`` and ``canceled`` access depend on
            it (``SubscriptionQueries.has_access``).
        cancel_at_period_end: True when a ``canceled`` subscription runs to the period's
            end (and grants access until then).
        trial_start: When the trial began.
        trial_end: When it ends (informative: ``trialing`` grants access whatever it says).
        purchased_by_user_id: The user who bought it, when known.
        polar_subscription_id: Polar's id of the subscription: required when ``provider``
            is ``polar`` (it names the subscription across events).
        polar_customer_id: Polar's customer id.
        revenuecat_app_user_id: RevenueCat's app user id.
        revenuecat_original_transaction_id: RevenueCat's original transaction id: required
            when ``provider`` is ``revenuecat``.
    """


class _BillingEventKeys(TypedDict):
    provider: Provider
    event_id: str
    event_type: str
    occurred_at: dt.datetime | str
    subscription: BillingSubscriptionState


class BillingEvent(_BillingEventKeys, total=False):
    """A provider-neutral billing event: what ``SubscriptionEventQueries.ingest`` takes.

    A webhook adapter builds one from Polar's or RevenueCat's payload. ``ingest`` records
    it once per ``(provider, event_id)`` and applies it only when it is the newest event
    of its subscription, so deliveries that come late, twice or out of order leave the
    same final state.

    Attributes:
        provider: ``polar`` or ``revenuecat``.
        event_id: The provider's id of the event (1-255 characters): the idempotency key.
        event_type: The provider's type (1-100 characters). Polar's ``subscription.*``
            names, and RevenueCat's (``INITIAL_PURCHASE``, ``RENEWAL``,
            ``CANCELLATION``, ``BILLING_ISSUE``, ``EXPIRATION``, …, mapped to them),
            change the subscription; any other type is recorded as ``ignored_type``.
        occurred_at: When the provider says it happened (aware): the newest wins, ties
            broken by the greater ``event_id``.
        subscription: The subscription's whole state after the event.
        tenant_id: The tenant a first event creates the subscription for; without it (or
            for a tenant that does not exist) the event is recorded as ``not_linked``.
        payload: The provider's original payload (any JSON), kept on the event row.
    """

    tenant_id: str | None
    payload: Any


class SubscriptionDTO(TypedDict):
    id: SubscriptionId
    tenant_id: TenantId
    purchased_by_user_id: UserId | None
    status: SubscriptionStatus
    plan_id: str
    plan_name: str | None
    current_period_start: str | None
    current_period_end: str | None
    cancel_at_period_end: bool | None
    trial_start: str | None
    trial_end: str | None
    provider: Provider
    polar_subscription_id: str | None
    polar_customer_id: str | None
    revenuecat_app_user_id: str | None
    revenuecat_original_transaction_id: str | None
    last_event_at: str | None
    created_at: str
    updated_at: str


class SubscriptionEventDTO(TypedDict):
    id: SubscriptionEventId
    provider: str
    event_id: str
    event_type: str
    payload: Any
    subscription_id: SubscriptionId | None
    outcome: IngestOutcome
    occurred_at: str | None
    processed_at: str


subscription_schema = SubscriptionSchema()
subscription_event_schema = SubscriptionEventSchema()
subscription_state_schema = SubscriptionStateSchema()
ingest_event_schema = IngestEventSchema()

subscription_dumper: Dumper[SubscriptionDTO] = Dumper(subscription_schema, Subscription)
subscription_event_dumper: Dumper[SubscriptionEventDTO] = Dumper(subscription_event_schema, SubscriptionEvent)

__all__ = [
    "BillingEvent",
    "BillingSubscriptionState",
    "IngestEventSchema",
    "IngestOutcome",
    "SubscriptionDTO",
    "SubscriptionEventDTO",
    "SubscriptionEventSchema",
    "SubscriptionSchema",
    "SubscriptionStateSchema",
]
