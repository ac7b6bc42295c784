"""Queries of the notifications domain: the inbox, the delivery queue, preferences, targets."""

from __future__ import annotations

from datalayer.queries.notifications.deliveries import DeliveryQueries
from datalayer.queries.notifications.notifications import NotificationQueries
from datalayer.queries.notifications.preferences import PreferenceQueries
from datalayer.queries.notifications.targets import TargetQueries

__all__ = [
    "DeliveryQueries",
    "NotificationQueries",
    "PreferenceQueries",
    "TargetQueries",
]
