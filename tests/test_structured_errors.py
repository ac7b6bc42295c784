"""Errors with structure (issue 26): a duplicate names its constraint, table and columns the
same way on PostgreSQL and SQLite; NotFoundError names the entity and the id; the driver's
exception stays reachable; a call that does not fit the signature is a TypeError."""

from __future__ import annotations

import peewee
import psycopg2
import pytest

from datalayer import (
    AccountQueries,
    ConflictError,
    NotFoundError,
    TenantMemberQueries,
    TodoId,
    TodoQueries,
    UserId,
    UserQueries,
    ValidationError,
)
from datalayer.models import User

pytestmark = pytest.mark.usefixtures("txn")

# The same on both backends (this file runs under each DATALAYER_TEST_BACKEND).
EMAIL_CONFLICT = "user.email already exists (constraint user_email)"


def test_a_duplicate_email_names_the_constraint_the_same_on_both_backends() -> None:
    UserQueries.create({"name": "Ada", "email": "ada@example.com"})
    before = User.select().count()
    with pytest.raises(ConflictError) as info:
        UserQueries.create({"name": "Ada again", "email": "ADA@example.com"})
    error = info.value
    assert (error.constraint, error.table, error.columns) == ("user_email", "user", ("email",))
    assert str(error) == EMAIL_CONFLICT
    assert User.select().count() == before
    # The driver's own exception is kept: peewee's is the cause, the driver's behind it.
    cause = error.__cause__
    assert isinstance(cause, peewee.IntegrityError)
    driver = getattr(cause, "orig", None) or cause.__context__
    assert isinstance(driver, psycopg2.IntegrityError | __import__("sqlite3").IntegrityError)


def test_a_composite_unique_key_names_every_column() -> None:
    user = UserQueries.create({"name": "Ada", "email": "ada@example.com"})
    account = {"provider_id": "github", "account_id": "42"}
    AccountQueries.link(user["id"], account)
    with pytest.raises(ConflictError) as info:
        AccountQueries.link(user["id"], account)
    error = info.value
    assert error.constraint == "account_provider_id_account_id"
    assert (error.table, error.columns) == ("account", ("provider_id", "account_id"))
    assert str(error) == (
        "account.provider_id, account.account_id already exists "
        "(constraint account_provider_id_account_id)"
    )


def test_a_state_conflict_has_no_constraint() -> None:
    owner = UserQueries.create({"name": "Owner", "email": "owner@example.com"})
    from datalayer import TenantQueries

    tenant = TenantQueries.create_with_owner(owner["id"], {"name": "T"})
    with pytest.raises(ConflictError) as info:
        TenantMemberQueries.leave(tenant["id"], owner["id"])  # the last owner stays
    assert (info.value.constraint, info.value.table, info.value.columns) == (None, None, ())


def test_not_found_names_the_entity_and_the_id() -> None:
    user = UserQueries.create({"name": "Ada", "email": "ada@example.com"})
    with pytest.raises(NotFoundError) as info:
        TodoQueries.update(TodoId("no-such-todo"), user["id"], {"title": "x"})
    assert (info.value.entity, info.value.id) == ("todo", "no-such-todo")
    assert "todo no-such-todo" in str(info.value)
    with pytest.raises(NotFoundError) as info:
        UserQueries.update(UserId("nobody"), {"name": "x"})
    assert (info.value.entity, info.value.id) == ("user", "nobody")


def test_a_call_that_does_not_fit_the_signature_is_a_type_error() -> None:
    user = UserQueries.create({"name": "Ada", "email": "ada@example.com"})
    with pytest.raises(TypeError, match="unexpected keyword argument 'tenant'"):
        TodoQueries.list_for_user(user["id"], tenant="t1")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        TodoQueries.delete(TodoId("t1"))  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        TodoQueries.delete(TodoId("t1"), user["id"], "extra")  # type: ignore[call-arg]
    with pytest.raises(ValidationError) as info:  # bad input is still bad input
        TodoQueries.delete(TodoId(""), user["id"])
    assert "todo_id" in info.value.messages
