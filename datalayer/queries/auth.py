"""Queries of the auth domain: users, sessions, accounts, verifications, signing keys."""

from __future__ import annotations

from datalayer.queries.auth_keys import AccountQueries, JwksQueries
from datalayer.queries.auth_sessions import SessionQueries, VerificationQueries
from datalayer.queries.auth_users import UserQueries

__all__ = [
    "AccountQueries",
    "JwksQueries",
    "SessionQueries",
    "UserQueries",
    "VerificationQueries",
]
