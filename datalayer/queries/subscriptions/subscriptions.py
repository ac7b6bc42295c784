"""Queries of the subscriptions domain: a tenant's subscriptions and whether they grant access."""

from __future__ import annotations

import datetime as dt

import peewee

from datalayer.connection.replicas import replica_read
from datalayer.errors import error_boundary
from datalayer.models import Subscription
from datalayer.queries.base import Page, keyset_page, read
from datalayer.schemas.base import check_id, check_now
from datalayer.schemas.subscriptions import (
    SubscriptionDTO,
    subscription_dumper,
)
from datalayer.types import SubscriptionId, TenantId

PAST_DUE_GRACE = dt.timedelta(days=3)

# Most relevant first: what grants access, then what may again, then the rest.
_RELEVANCE = peewee.Case(
    Subscription.status,
    (("active", 0), ("trialing", 0), ("past_due", 1), ("canceled", 2), ("paused", 3)),
    4,
)


@error_boundary
class SubscriptionQueries:
    """A tenant's subscriptions and whether they grant access."""

    @staticmethod
    def find_by_id(subscription_id: SubscriptionId) -> SubscriptionDTO | None:
        """Return the subscription with this id, or None.

        Trusted code (billing, the back office): it checks no tenant membership.

        Returns:
            The subscription, or None when none has this id.

        Raises:
            ValidationError: ``subscription_id`` is not a valid id.
        """
        check_id("subscription_id", subscription_id)
        with read():
            return subscription_dumper.one(
                subscription_dumper.select().where(Subscription.id == subscription_id)
            )

    @staticmethod
    def current_for_tenant(tenant_id: TenantId) -> SubscriptionDTO | None:
        """Return the tenant's most relevant subscription (live before ended, newest first).

        Trusted code deciding for a tenant (check the caller's membership first): ``active``
        and ``trialing`` come first, then ``past_due``, ``canceled``, ``paused``, the
        rest; newest first within each.

        Returns:
            The subscription, or None when the tenant has none (or does not exist).

        Raises:
            ValidationError: ``tenant_id`` is not a valid id.
        """
        check_id("tenant_id", tenant_id)
        query = (
            subscription_dumper.select()
            .where(Subscription.tenant == tenant_id)
            .order_by(_RELEVANCE, Subscription.created_at.desc(), Subscription.id.desc())
        )
        with read():
            return subscription_dumper.one(query)

    @staticmethod
    def has_access(tenant_id: TenantId, *, now: dt.datetime | None = None) -> bool:
        """Tell whether any of the tenant's subscriptions grants access at ``now``.

        Trusted code deciding for a tenant (check the caller's membership first). A
        subscription grants access when it is ``active`` or ``trialing`` (whatever its
        dates), ``past_due`` with ``current_period_end`` less than 3 days before ``now``,
        or ``canceled`` with ``cancel_at_period_end`` and ``current_period_end`` after
        ``now``; ``expired`` and ``paused`` never do. The table of the billing guide lists
        every case.

        Returns:
            True when one subscription grants access; False when none does, the tenant has
            none, or it does not exist.

        Raises:
            ValidationError: ``tenant_id`` is not a valid id, or ``now`` is not a
                timezone-aware datetime.
        """
        check_id("tenant_id", tenant_id)
        now = check_now(now)
        end = Subscription.current_period_end
        grants = (
            Subscription.status.in_(("active", "trialing"))
            | ((Subscription.status == "past_due") & (end > now - PAST_DUE_GRACE))
            | (
                (Subscription.status == "canceled")
                & (Subscription.cancel_at_period_end == True)  # noqa: E712 - SQL
                & (end > now)
            )
        )
        with read():
            return bool(
                Subscription.select(Subscription.id)
                .where((Subscription.tenant == tenant_id) & grants)
                .exists()
            )

    @staticmethod
    @replica_read
    def list_for_tenant(
        tenant_id: TenantId, *, limit: int = 50, cursor: str | None = None
    ) -> Page[SubscriptionDTO]:
        """Return a newest-first page of the tenant's subscriptions.

        Trusted code (billing pages after a membership check, the back office). Runs on a
        read replica when there is one.

        Returns:
            A page; ``items`` is empty when the tenant has no subscription.

        Raises:
            ValidationError: ``tenant_id``, ``limit`` (1-1000) or ``cursor`` is not valid.
        """
        check_id("tenant_id", tenant_id)
        query = subscription_dumper.select().where(Subscription.tenant == tenant_id)
        return keyset_page(
            query,
            dumper=subscription_dumper,
            ts_field=Subscription.created_at,
            id_field=Subscription.id,
            limit=limit,
            cursor=cursor,
        )


__all__ = ["SubscriptionQueries"]
