"""Queries of the auth domain: one-time verifications."""

from __future__ import annotations

import datetime as dt

from datalayer.errors import error_boundary
from datalayer.models import Verification
from datalayer.queries.auth._arguments import required_text
from datalayer.queries.base import write
from datalayer.schemas.auth import (
    VerificationDTO,
    create_verification_schema,
    verification_dumper,
)
from datalayer.schemas.base import check_now, load


@error_boundary
class VerificationQueries:
    """One-time verification values (email links, OTPs): each can be consumed once."""

    @staticmethod
    def create(identifier: str, value: str, *, expires_at: dt.datetime) -> VerificationDTO:
        """Store a verification value for an identifier until ``expires_at``."""
        values = load(
            create_verification_schema,
            {
                "identifier": identifier,
                "value": value,
                "expires_at": expires_at,
            },
        )
        with write():
            return verification_dumper.written_one(Verification.insert(**values))

    @staticmethod
    def consume(identifier: str, value: str, *, now: dt.datetime | None = None) -> bool:
        """Use up a matching, unexpired verification; True once, False ever after."""
        required_text("identifier", identifier)
        required_text("value", value)
        now = check_now(now)
        # One DELETE, no SELECT first: of concurrent callers only the one whose DELETE
        # removes the row sees a count of 1; the others find it gone.
        query = Verification.delete().where(
            (Verification.identifier == identifier)
            & (Verification.value == value)
            & (Verification.expires_at > now)
        )
        with write():
            return bool(query.execute() > 0)

    @staticmethod
    def delete_expired(*, now: dt.datetime | None = None) -> int:
        """Delete verifications that have expired; return how many."""
        now = check_now(now)
        with write():
            return int(Verification.delete().where(Verification.expires_at <= now).execute())


__all__ = ["VerificationQueries"]
