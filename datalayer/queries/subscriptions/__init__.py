"""Queries of the subscriptions domain: billing events in, access decisions out."""

from __future__ import annotations

from datalayer.queries.subscriptions.events import SubscriptionEventQueries
from datalayer.queries.subscriptions.subscriptions import SubscriptionQueries

__all__ = [
    "SubscriptionEventQueries",
    "SubscriptionQueries",
]
