"""Queries of the auth domain: linked provider accounts and the JWT signing keys."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any, cast

from datalayer.db import db, is_postgres
from datalayer.models import Account, Jwks
from datalayer.queries.auth_common import check_text
from datalayer.queries.base import read, write
from datalayer.replicas import replica_read
from datalayer.schemas.auth import (
    AccountDTO,
    JwksDTO,
    account_dumper,
    create_account_schema,
    create_jwks_schema,
    jwks_dumper,
)
from datalayer.schemas.base import check_id, check_now, load, require

GRACE_MAX_SECONDS = 10 * 365 * 24 * 3600


class AccountQueries:
    """Provider accounts linked to a user; their passwords and tokens are never dumped."""

    @staticmethod
    def find_by_provider(provider_id: str, account_id: str) -> AccountDTO | None:
        """Return the account a provider knows by ``account_id``, or None."""
        check_text("provider_id", provider_id)
        check_text("account_id", account_id)
        query = account_dumper.select().where(
            (Account.provider_id == provider_id) & (Account.account_id == account_id)
        )
        with read():
            return cast(AccountDTO | None, account_dumper.one(query))

    @staticmethod
    @replica_read
    def list_for_user(user_id: str) -> list[AccountDTO]:
        """Return the user's linked accounts, oldest first (a user has a handful)."""
        check_id("user_id", user_id)
        query = (
            account_dumper.select()
            .where(Account.user == user_id)
            .order_by(Account.created_at, Account.id)
        )
        with read():
            return cast(list[AccountDTO], account_dumper.many(query))

    @staticmethod
    def link(user_id: str, data: Mapping[str, Any]) -> AccountDTO:
        """Link a provider account to the user; ConflictError when it is linked already."""
        check_id("user_id", user_id)
        values = load(create_account_schema, data)
        with write():
            row = account_dumper.written(Account.insert(user=user_id, **values))
        return cast(AccountDTO, row)

    @staticmethod
    def unlink(user_id: str, provider_id: str) -> bool:
        """Remove the user's accounts at this provider; False when there were none."""
        check_id("user_id", user_id)
        check_text("provider_id", provider_id)
        query = Account.delete().where(
            (Account.user == user_id) & (Account.provider_id == provider_id)
        )
        with write():
            return bool(query.execute() > 0)


def _check_grace(value: Any) -> float:
    return require(  # type: ignore[no-any-return]
        "grace_seconds",
        value,
        lambda v: (
            isinstance(v, int | float)
            and not isinstance(v, bool)
            and math.isfinite(v)
            and 0 <= v <= GRACE_MAX_SECONDS
        ),
        f"Must be a number of seconds between 0 and {GRACE_MAX_SECONDS}.",
    )


class JwksQueries:
    """JWT signing keys; the private key is stored, never dumped."""

    @staticmethod
    def create(public_key: str, private_key: str, expires_at: dt.datetime | None = None) -> JwksDTO:
        """Store a key pair (``expires_at`` None: no expiry)."""
        values = load(
            create_jwks_schema,
            {
                "public_key": public_key,
                "private_key": private_key,
                "expires_at": expires_at,
            },
        )
        with write():
            return cast(JwksDTO, jwks_dumper.written(Jwks.insert(**values)))

    @staticmethod
    def list_valid(now: dt.datetime | None = None) -> list[JwksDTO]:
        """Return the keys that have not expired, newest first."""
        now = check_now(now)
        query = (
            jwks_dumper.select()
            .where(Jwks.expires_at.is_null() | (Jwks.expires_at > now))
            .order_by(Jwks.created_at.desc(), Jwks.id.desc())
        )
        with read():
            return cast(list[JwksDTO], jwks_dumper.many(query))

    @staticmethod
    def rotate(
        public_key: str,
        private_key: str,
        grace_seconds: float,
        *,
        now: dt.datetime | None = None,
    ) -> JwksDTO:
        """Add a new key; the older ones expire ``grace_seconds`` from now (or earlier)."""
        now = check_now(now)
        cutoff = now + dt.timedelta(seconds=_check_grace(grace_seconds))
        values = load(create_jwks_schema, {"public_key": public_key, "private_key": private_key})
        with write():
            if is_postgres():
                # Serialize rotations: without it, two concurrent ones would each miss the
                # other's new key, and both would stay valid forever. SQLite has one writer.
                db.execute_sql('LOCK TABLE "jwks" IN SHARE ROW EXCLUSIVE MODE')
            Jwks.update(expires_at=cutoff).where(
                Jwks.expires_at.is_null() | (Jwks.expires_at > cutoff)
            ).execute()
            row = jwks_dumper.written(Jwks.insert(created_at=now, **values))
        return cast(JwksDTO, row)


__all__ = ["AccountQueries", "JwksQueries"]
