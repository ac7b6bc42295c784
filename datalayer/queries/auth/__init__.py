"""Queries of the auth domain: users, sessions, accounts, verifications, signing keys."""

from __future__ import annotations

from datalayer.queries.auth.accounts import AccountQueries
from datalayer.queries.auth.jwks import JwksQueries
from datalayer.queries.auth.sessions import SessionQueries
from datalayer.queries.auth.users import UserQueries
from datalayer.queries.auth.verifications import VerificationQueries

__all__ = [
    "AccountQueries",
    "JwksQueries",
    "SessionQueries",
    "UserQueries",
    "VerificationQueries",
]
