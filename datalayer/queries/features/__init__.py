"""Queries of the features domain: todos, the waitlist, per-user daily activity."""

from __future__ import annotations

from datalayer.queries.features.activity import UserActivityQueries
from datalayer.queries.features.todos import TodoQueries
from datalayer.queries.features.waitlist import WaitlistQueries

__all__ = [
    "TodoQueries",
    "UserActivityQueries",
    "WaitlistQueries",
]
