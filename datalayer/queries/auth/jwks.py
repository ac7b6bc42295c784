"""Queries of the auth domain: the JWT signing keys."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, TypeGuard

from datalayer.connection.database import db, is_postgres
from datalayer.errors import error_boundary
from datalayer.models import Jwks
from datalayer.queries.base import read, write
from datalayer.schemas.auth import (
    JwksDTO,
    create_jwks_schema,
    jwks_dumper,
)
from datalayer.schemas.base import check_now, load, require

GRACE_MAX_SECONDS = 10 * 365 * 24 * 3600


def _check_grace(value: Any) -> float:
    def valid(v: Any) -> TypeGuard[float]:
        return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= GRACE_MAX_SECONDS

    checked: float = require(
        "grace_seconds",
        value,
        valid,
        f"Must be a number of seconds between 0 and {GRACE_MAX_SECONDS}.",
    )
    return checked


@error_boundary
class JwksQueries:
    """JWT signing keys; the private key is stored, never dumped."""

    @staticmethod
    def create(
        *, public_key: str, private_key: str, expires_at: dt.datetime | None = None
    ) -> JwksDTO:
        """Store a key pair (``expires_at`` None: no expiry).

        Trusted code (the token issuer). The private key never appears in a DTO or the
        SQL log.

        Returns:
            The stored key (public key only).

        Raises:
            ValidationError: a key or ``expires_at`` is not valid; nothing was written.
        """
        values = load(
            create_jwks_schema,
            {
                "public_key": public_key,
                "private_key": private_key,
                "expires_at": expires_at,
            },
        )
        with write():
            return jwks_dumper.written_one(Jwks.insert(**values))

    @staticmethod
    def list_valid(*, now: dt.datetime | None = None) -> list[JwksDTO]:
        """Return the keys that have not expired, newest first.

        Anyone (they are the public keys of a JWKS endpoint).

        Returns:
            The keys; an empty list when every key has expired or there is none.

        Raises:
            ValidationError: ``now`` is not a timezone-aware datetime.
        """
        now = check_now(now)
        query = (
            jwks_dumper.select()
            .where(Jwks.expires_at.is_null() | (Jwks.expires_at > now))
            .order_by(Jwks.created_at.desc(), Jwks.id.desc())
        )
        with read():
            return jwks_dumper.many(query)

    @staticmethod
    def rotate(
        *,
        public_key: str,
        private_key: str,
        grace_seconds: float,
        now: dt.datetime | None = None,
    ) -> JwksDTO:
        """Add a new key; the older ones expire ``grace_seconds`` from now (or earlier).

        Trusted code (the token issuer's key rotation), in one transaction.

        Returns:
            The new key (public key only).

        Raises:
            ValidationError: a key, ``grace_seconds`` or ``now`` is not valid; nothing was
                written.
        """
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
            return jwks_dumper.written_one(Jwks.insert(created_at=now, **values))


__all__ = ["JwksQueries"]
