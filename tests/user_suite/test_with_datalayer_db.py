"""Tests a user of datalayer writes for their own code, with the ``datalayer_db`` fixture the
installed package provides (no conftest: the plugin comes from the package's entry point).

Run by tests/test_user_suite.py in a subprocess, on SQLite by default and on PostgreSQL
with --datalayer-url.
"""

from __future__ import annotations

import pytest

from datalayer import (
    ConflictError,
    NotificationQueries,
    TodoQueries,
    UserQueries,
    atomic,
)
from datalayer.testing import make_notification, make_tenant, make_todo, make_user

EMAIL = "isolated@example.com"


# The two tests below each write the same user and find it absent first: whichever runs
# second passes only if the first one's row was rolled back.
def test_first_writer(datalayer_db: object) -> None:
    assert UserQueries.find_by_email(EMAIL) is None
    make_user(email=EMAIL)
    assert UserQueries.find_by_email(EMAIL) is not None


def test_second_writer(datalayer_db: object) -> None:
    assert UserQueries.find_by_email(EMAIL) is None
    make_user(email=EMAIL)
    assert UserQueries.find_by_email(EMAIL) is not None


def test_atomic_nests_as_a_savepoint(datalayer_db: object) -> None:
    user = make_user()
    with pytest.raises(ConflictError), atomic():
        make_todo(user["id"], title="kept out")
        make_user(email=user["email"])  # a duplicate: the block is rolled back
    assert TodoQueries.list_for_user(user["id"])["items"] == []
    make_todo(user["id"], title="kept")  # the test's transaction goes on
    assert [t["title"] for t in TodoQueries.list_for_user(user["id"])["items"]] == ["kept"]


def test_the_factories_return_dtos(datalayer_db: object) -> None:
    tenant = make_tenant()
    owner = UserQueries.find_by_id(make_user()["id"])
    assert owner is not None
    todo = make_todo(owner["id"], title="Plan")
    assert todo["title"] == "Plan" and todo["user_id"] == owner["id"]
    note = make_notification(owner["id"], title="Hello")
    assert NotificationQueries.unread_count(owner["id"]) == 1
    assert note["recipient_user_id"] == owner["id"] and tenant["name"].startswith("Tenant")
