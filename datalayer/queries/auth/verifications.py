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
        """Store a verification value for an identifier until ``expires_at``.

        Trusted code (the sign-in layer sending a code or a link). The value is a secret:
        never in a DTO or the SQL log.

        Returns:
            The stored verification (without its value).

        Raises:
            ValidationError: ``identifier``, ``value`` or ``expires_at`` (timezone-aware)
                is not valid; nothing was written.
        """
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
        """Use up a matching, unexpired verification; True once, False ever after.

        Anyone presenting the code (the value is the credential). Of two consumptions
        racing, one gets True.

        Returns:
            True when a matching, unexpired verification was used up now; False when none
            matches, it expired, or it was used already.

        Raises:
            ValidationError: ``identifier``, ``value`` or ``now`` is not valid.
        """
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
        """Delete verifications that have expired; return how many.

        Trusted code (``datalayer maintain`` calls it).

        Returns:
            How many were deleted; 0 when none had expired.

        Raises:
            ValidationError: ``now`` is not a timezone-aware datetime.
        """
        now = check_now(now)
        with write():
            return int(Verification.delete().where(Verification.expires_at <= now).execute())


__all__ = ["VerificationQueries"]
