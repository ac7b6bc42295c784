"""Queries of the subscriptions domain: billing webhook events in, applied to subscriptions.

Webhooks arrive late, twice, out of order and concurrently. ``ingest`` is built so that
none of that matters:

- the event is recorded first with ``INSERT ... ON CONFLICT (provider, event_id) DO
  NOTHING``; a second delivery inserts nothing (on PostgreSQL it waits for the first
  delivery's transaction, then inserts nothing) and is reported ``duplicate_ignored``;
- the subscription is then locked (``FOR UPDATE``; SQLite has a single writer), or
  created with ``ON CONFLICT DO NOTHING`` on its provider id's partial unique index and
  then locked, so two first events cannot create two rows;
- every event carries the full state, and only the newest one — by ``occurred_at``, ties
  broken by the greatest ``event_id`` — is applied: the final state is the same for
  every arrival order.

What a signed but wrong event could do is bounded too: an ``occurred_at`` further in the
future than ``max_future_skew`` (else one event dated 8999 would freeze the subscription,
every genuine later event being stale) is a ValidationError; a ``tenant_id`` that is not
the subscription's stored tenant is a ConflictError; a purchaser who is not a member of
the tenant is a ValidationError. Nothing is recorded in any of these cases. Verifying the
webhook's signature stays with the application (docs/security.md).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import peewee

from datalayer import arguments
from datalayer.errors import (
    ConflictError,
    DataLayerError,
    NotFoundError,
    ValidationError,
    error_boundary,
)
from datalayer.models import Subscription, SubscriptionEvent, Tenant, TenantMember, User, utcnow
from datalayer.queries.base import for_update, read, write
from datalayer.schemas.base import check_id, load
from datalayer.schemas.subscriptions import (
    PROVIDER_KEYS,
    STATE_COLUMNS,
    BillingEvent,
    IngestOutcome,
    SubscriptionEventDTO,
    ingest_event_schema,
    neutral_event_type,
    subscription_event_dumper,
)

# What a column left out of an event's state is stored as (events carry the full state).
_EMPTY_STATE: dict[str, Any] = {column: None for column in STATE_COLUMNS}
_EMPTY_STATE["cancel_at_period_end"] = False

# How far in the future an event may be dated (clocks differ a little between hosts).
MAX_FUTURE_SKEW = dt.timedelta(minutes=5)


class _Event:
    """A validated event and the values derived from it."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.provider: str = values["provider"]
        self.event_id: str = values["event_id"]
        self.occurred_at: dt.datetime = values["occurred_at"]
        self.tenant_id: str | None = values["tenant_id"]
        self.state: dict[str, Any] = {**_EMPTY_STATE, **values["subscription"]}
        self.key_field: peewee.Field = Subscription._meta.columns[PROVIDER_KEYS[self.provider]]
        self.key: str = self.state[PROVIDER_KEYS[self.provider]]
        self.relevant = neutral_event_type(self.provider, values["event_type"]) is not None


def _record(event: _Event) -> str | None:
    """Insert the event row; return its id, or None when (provider, event_id) was seen."""
    v = event.values
    query = (
        SubscriptionEvent.insert(
            provider=v["provider"],
            event_id=v["event_id"],
            event_type=v["event_type"],
            payload=v["payload"],
            occurred_at=v["occurred_at"],
            outcome="applied",
        )
        .on_conflict(
            action="NOTHING",
            conflict_target=[SubscriptionEvent.provider, SubscriptionEvent.event_id],
        )
        .returning(SubscriptionEvent.id)
    )
    rows = list(query.tuples().execute())
    return rows[0][0] if rows else None


def _locked(event: _Event) -> tuple[str, dt.datetime | None, str] | None:
    """Return (id, last_event_at, tenant id) of the event's subscription, locked, or None."""
    query: Any = Subscription.select(
        Subscription.id, Subscription.last_event_at, Subscription.tenant
    ).where(event.key_field == event.key)
    rows: list[Any] = list(for_update(query).limit(1).tuples())
    return rows[0] if rows else None


def _create(event: _Event) -> str | None:
    """Insert the subscription with the event's state; None when it exists already."""
    query = (
        Subscription.insert(
            tenant=event.tenant_id,
            provider=event.provider,
            last_event_at=event.occurred_at,
            **event.state,
        )
        .on_conflict(
            action="NOTHING",
            conflict_target=[event.key_field],
            conflict_where=event.key_field.is_null(False),
        )
        .returning(Subscription.id)
    )
    rows = list(query.tuples().execute())
    return rows[0][0] if rows else None


def _is_stale(subscription_id: str, last_event_at: dt.datetime | None, event: _Event) -> bool:
    """Tell whether a newer event — or a same-time one with a greater id — was applied."""
    if last_event_at is None or event.occurred_at > last_event_at:
        return False
    if event.occurred_at < last_event_at:
        return True
    # A tie: compared in Python, since SQL text order depends on the database collation.
    applied = SubscriptionEvent.select(SubscriptionEvent.event_id).where(
        (SubscriptionEvent.subscription == subscription_id)
        & (SubscriptionEvent.outcome == "applied")
        & (SubscriptionEvent.occurred_at == last_event_at)
    )
    return any(event.event_id < other for other in applied.scalars())


def _check_purchaser(event: _Event, tenant_id: str) -> None:
    """ValidationError when the event's purchaser is not a member of the tenant
    (NotFoundError when there is no such user)."""
    purchaser = event.state.get("purchased_by_user_id")
    if purchaser is None:
        return
    member = TenantMember.select(TenantMember.id).where(
        (TenantMember.tenant == tenant_id) & (TenantMember.user == purchaser)
    )
    if not member.exists():
        if not User.select(User.id).where(User.id == purchaser).exists():
            raise NotFoundError(entity="user", id=purchaser)  # may exist at the retry
        raise ValidationError(
            {"subscription": {"purchased_by_user_id": ["Must be a member of the tenant."]}}
        )


def _check_not_future(occurred_at: dt.datetime, max_future_skew: Any) -> None:
    """ValidationError when the event is dated further ahead than the allowed skew."""
    seconds = arguments.number("max_future_skew", max_future_skew, minimum=0, maximum=86_400)
    if occurred_at > utcnow() + dt.timedelta(seconds=seconds):
        raise ValidationError(
            {"occurred_at": [f"Must not be more than {seconds:g} seconds in the future."]}
        )


def _apply(event: _Event) -> tuple[IngestOutcome, str | None]:
    """Create or update the event's subscription; return the outcome and its id."""
    if not event.relevant:
        found = Subscription.select(Subscription.id).where(event.key_field == event.key)
        return "ignored_type", found.scalar()
    current = _locked(event)
    if current is None:
        if (
            event.tenant_id is None
            or not Tenant.select().where(Tenant.id == event.tenant_id).exists()
        ):
            return "not_linked", None
        _check_purchaser(event, event.tenant_id)
        created = _create(event)
        if created is not None:
            return "applied", created
        current = _locked(event)  # created by a concurrent first event, now committed
        if current is None:
            raise DataLayerError("subscription insert conflicted but no row was found")
    subscription_id, last_event_at, tenant_id = current
    if event.tenant_id is not None and event.tenant_id != tenant_id:
        raise ConflictError(
            f"the event names tenant {event.tenant_id}, but its subscription belongs to "
            "another tenant: nothing was recorded"
        )
    _check_purchaser(event, tenant_id)
    if _is_stale(subscription_id, last_event_at, event):
        return "stale_ignored", subscription_id
    (
        Subscription.update(last_event_at=event.occurred_at, **event.state)
        .where(Subscription.id == subscription_id)
        .execute()
    )
    return "applied", subscription_id


@error_boundary
class SubscriptionEventQueries:
    """Billing webhook events: recorded once, applied newest-first-wins."""

    @staticmethod
    def ingest(
        event: BillingEvent,
        *,
        max_future_skew: float = MAX_FUTURE_SKEW.total_seconds(),
    ) -> IngestOutcome:
        """Record a provider-neutral billing event and apply it to its subscription.

        For the webhook handler, after it verified the provider's signature: the event is
        trusted as the provider's word. ``event`` is a ``BillingEvent`` (any mapping of
        that shape). Idempotent per ``(provider, event_id)`` and independent of arrival
        order: run it under ``retrying()``. ``max_future_skew``: seconds an
        ``occurred_at`` may lie ahead of this host's clock.

        Returns:
            What happened: ``applied``, ``duplicate_ignored`` (seen before),
            ``stale_ignored`` (a newer event was applied), ``ignored_type`` (the type
            changes no subscription) or ``not_linked`` (no subscription yet and no existing
            tenant to create it for). The event is recorded in every case but a duplicate.

        Raises:
            ValidationError: the event is malformed (the message names the field, e.g.
                ``subscription.plan_id``), ``occurred_at`` lies further ahead than
                ``max_future_skew``, or the purchaser is not a member of the tenant;
                nothing was recorded.
            NotFoundError: ``subscription.purchased_by_user_id`` names no user.
            ConflictError: the event names a tenant other than its subscription's; nothing
                was recorded.
        """
        parsed = _Event(load(ingest_event_schema, event))
        _check_not_future(parsed.occurred_at, max_future_skew)
        with write():
            event_row_id = _record(parsed)
            if event_row_id is None:
                return "duplicate_ignored"
            outcome, subscription_id = _apply(parsed)
            (
                SubscriptionEvent.update(outcome=outcome, subscription=subscription_id)
                .where(SubscriptionEvent.id == event_row_id)
                .execute()
            )
        return outcome

    @staticmethod
    def find_by_event_id(provider: str, event_id: str) -> SubscriptionEventDTO | None:
        """Return the recorded event with this provider and provider event id, or None.

        Trusted code (the webhook handler, the back office).

        Returns:
            The event with its outcome, or None when it was never ingested.

        Raises:
            ValidationError: ``provider`` or ``event_id`` is not a valid id.
        """
        check_id("provider", provider)
        check_id("event_id", event_id)
        query = subscription_event_dumper.select().where(
            (SubscriptionEvent.provider == provider) & (SubscriptionEvent.event_id == event_id)
        )
        with read():
            return subscription_event_dumper.one(query)


__all__ = ["SubscriptionEventQueries"]
