"""Queries of the features domain: the waitlist."""

from __future__ import annotations

from typing import Any

from datalayer.connection.replicas import replica_read
from datalayer.errors import ConflictError, error_boundary
from datalayer.models import Waitlist
from datalayer.queries.base import Page, keyset_page, read, write
from datalayer.schemas.base import load
from datalayer.schemas.features import (
    WaitlistDTO,
    create_waitlist_schema,
    waitlist_dumper,
)


def _email(email: Any) -> str:
    """Validate and normalize an address (trimmed, lower-cased) as the waitlist stores it."""
    address: str = load(create_waitlist_schema, {"email": email})["email"]
    return address


@error_boundary
class WaitlistQueries:
    """The waitlist: one row per address, whatever its letter case."""

    @staticmethod
    def join(email: str) -> tuple[WaitlistDTO, bool]:
        """Add the address once; return its row and whether this call added it.

        Anyone (the public sign-up form). The address is trimmed and lower-cased, so
        ``Ada@Example.com`` and ``ada@example.com`` are one entry; two joins racing each
        other add it once.

        Returns:
            ``(entry, True)`` when this call added it, ``(entry, False)`` when it was
            already on the waitlist.

        Raises:
            ValidationError: ``email`` is not a valid address.
            ConflictError: the entry was added and removed again while this call ran
                (retry).
        """
        address = _email(email)
        insert = (
            Waitlist.insert(email=address)
            .on_conflict(conflict_target=[Waitlist.email], action="NOTHING")
            .returning(*waitlist_dumper.fields)
        )
        existing = waitlist_dumper.select().where(Waitlist.email == address)
        with write():
            # A concurrent remove() may delete the row between the two statements: retry.
            for _ in range(3):
                rows = list(insert.tuples().execute())
                if rows:
                    return waitlist_dumper.row(rows[0]), True
                row = waitlist_dumper.one(existing)
                if row is not None:
                    return row, False
        raise ConflictError(f"waitlist entry for {address} keeps changing; try again")

    @staticmethod
    def find_by_email(email: str) -> WaitlistDTO | None:
        """Return the waitlist entry of this address (any case), or None.

        Trusted code (the back office, a sign-up flow).

        Returns:
            The entry, or None when the address is not on the waitlist.

        Raises:
            ValidationError: ``email`` is not a valid address.
        """
        address = _email(email)
        with read():
            return waitlist_dumper.one(waitlist_dumper.select().where(Waitlist.email == address))

    @staticmethod
    def exists(email: str) -> bool:
        """Tell whether the address (any case) is on the waitlist.

        Anyone.

        Returns:
            True when it is on the waitlist, else False.

        Raises:
            ValidationError: ``email`` is not a valid address.
        """
        address = _email(email)
        with read():
            return bool(Waitlist.select(Waitlist.id).where(Waitlist.email == address).exists())

    @staticmethod
    def remove(email: str) -> bool:
        """Remove the address from the waitlist; False when it was not on it.

        Trusted code (an unsubscribe link, the back office).

        Returns:
            True when it was removed, False when it was not on the waitlist.

        Raises:
            ValidationError: ``email`` is not a valid address.
        """
        address = _email(email)
        with write():
            return bool(Waitlist.delete().where(Waitlist.email == address).execute() > 0)

    @staticmethod
    def count() -> int:
        """Return the number of addresses on the waitlist.

        Anyone.

        Returns:
            The count (0 when the waitlist is empty).
        """
        with read():
            return int(Waitlist.select().count())

    @staticmethod
    @replica_read
    def list(*, limit: int = 50, cursor: str | None = None) -> Page[WaitlistDTO]:  # noqa: A003
        """Return a newest-first page of the waitlist.

        Trusted code (the back office): it lists every address.

        Returns:
            A page; ``items`` is empty when the waitlist is, and ``next_cursor`` is None on
            the last page.

        Raises:
            ValidationError: ``limit`` (1-1000) or ``cursor`` is not valid.
        """
        return keyset_page(
            waitlist_dumper.select(),
            dumper=waitlist_dumper,
            ts_field=Waitlist.created_at,
            id_field=Waitlist.id,
            limit=limit,
            cursor=cursor,
        )


__all__ = ["WaitlistQueries"]
