"""Queries of the auth domain: provider accounts linked to a user."""

from __future__ import annotations

from datalayer.connection.replicas import replica_read
from datalayer.errors import error_boundary
from datalayer.models import Account
from datalayer.queries.auth._arguments import required_text
from datalayer.queries.base import read, write
from datalayer.schemas.auth import (
    AccountDTO,
    CreateAccountInput,
    account_dumper,
    create_account_schema,
)
from datalayer.schemas.base import check_id, load
from datalayer.types import UserId


@error_boundary
class AccountQueries:
    """Provider accounts linked to a user; their passwords and tokens are never dumped."""

    @staticmethod
    def find_by_provider(provider_id: str, account_id: str) -> AccountDTO | None:
        """Return the account a provider knows by ``account_id``, or None.

        Trusted code (the sign-in layer, after the provider vouched for ``account_id``).

        Returns:
            The account (no token, no password), or None when none is linked.

        Raises:
            ValidationError: ``provider_id`` or ``account_id`` is not valid.
        """
        required_text("provider_id", provider_id)
        required_text("account_id", account_id)
        query = account_dumper.select().where(
            (Account.provider_id == provider_id) & (Account.account_id == account_id)
        )
        with read():
            return account_dumper.one(query)

    @staticmethod
    @replica_read
    def list_for_user(user_id: UserId) -> list[AccountDTO]:
        """Return the user's linked accounts, oldest first (a user has a handful).

        Trusted code acting for ``user_id`` (their sign-in settings).

        Returns:
            The accounts; an empty list when none is linked (or the user does not exist).

        Raises:
            ValidationError: ``user_id`` is not a valid id.
        """
        check_id("user_id", user_id)
        query = (
            account_dumper.select()
            .where(Account.user == user_id)
            .order_by(Account.created_at, Account.id)
        )
        with read():
            return account_dumper.many(query)

    @staticmethod
    def link(user_id: UserId, data: CreateAccountInput) -> AccountDTO:
        """Link a provider account to the user; ConflictError when it is linked already.

        Trusted code (the sign-in layer, after the provider vouched for the account).
        Tokens and the password hash are stored, never returned.

        Returns:
            The new account (no secret in it).

        Raises:
            ValidationError: ``data`` or the id is not valid; nothing was written.
            NotFoundError: the user does not exist.
            ConflictError: this provider account is linked already.
        """
        check_id("user_id", user_id)
        values = load(create_account_schema, data)
        with write():
            return account_dumper.written_one(Account.insert(user=user_id, **values))

    @staticmethod
    def unlink(user_id: UserId, provider_id: str) -> bool:
        """Remove the user's accounts at this provider; False when there were none.

        Trusted code acting for ``user_id``.

        Returns:
            True when something was removed; False when the user had no account there.

        Raises:
            ValidationError: ``user_id`` or ``provider_id`` is not valid.
        """
        check_id("user_id", user_id)
        required_text("provider_id", provider_id)
        query = Account.delete().where(
            (Account.user == user_id) & (Account.provider_id == provider_id)
        )
        with write():
            return bool(query.execute() > 0)


__all__ = ["AccountQueries"]
