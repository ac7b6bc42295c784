"""A pytest plugin for testing code that uses datalayer: the ``datalayer_db`` fixture and
small factories that return DTOs.

Installed with the package (the ``pytest11`` entry point), so a project's tests only ask
for the fixture::

    from datalayer.testing import make_todo, make_user

    def test_done_todos_are_hidden(datalayer_db):
        user = make_user()
        make_todo(user["id"], title="Ship it")
        ...

The database is made and migrated once per test session: a SQLite file in a temporary
directory by default; a PostgreSQL database, created beside the one
``--datalayer-url`` (or ``DATALAYER_TEST_URL``) names and dropped at the end, when given.
Each test runs inside a transaction rolled back when it ends, so nothing it wrote is seen
by the next; the library's own ``atomic()`` and writes nest in it as savepoints.
See docs/testing.md.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from datalayer.connection.database import db, init_db
from datalayer.evolve.migrate import migrate
from datalayer.queries import NotificationQueries, TenantQueries, TodoQueries, UserQueries
from datalayer.schemas import (
    CreateTodoInput,
    NotificationWithDeliveriesDTO,
    TenantDTO,
    TodoDTO,
    UserDTO,
)
from datalayer.types import NotificationType, TenantId, UserId

__all__ = [
    "datalayer_db",
    "make_notification",
    "make_tenant",
    "make_todo",
    "make_user",
    "migrate",
]

URL_ENV = "DATALAYER_TEST_URL"
_seq = itertools.count(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--datalayer-url``: the PostgreSQL server (any database on it) to test against."""
    parser.addoption(
        "--datalayer-url",
        default=None,
        help=f"PostgreSQL URL whose server gets a fresh test database (else ${URL_ENV}, "
        "else a SQLite file in a temporary directory)",
    )


def _postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _admin(url: str, statement: str) -> None:
    """Run CREATE/DROP DATABASE on the server of ``url`` (outside a transaction)."""
    import psycopg2

    connection = psycopg2.connect(url)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()


@pytest.fixture(scope="session")
def datalayer_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The URL of this session's test database, migrated; dropped (PostgreSQL) at the end."""
    server = request.config.getoption("--datalayer-url") or os.environ.get(URL_ENV)
    if not server:
        path: Path = tmp_path_factory.mktemp("datalayer") / "test.sqlite3"
        url = f"sqlite:///{path}"
        migrate(url)
        yield url
        return
    if not _postgres(server):
        raise pytest.UsageError(f"--datalayer-url / {URL_ENV}: a postgresql:// URL, not {server}")
    name = f"datalayer_test_{uuid.uuid4().hex[:12]}"
    _admin(server, f'CREATE DATABASE "{name}"')
    url = _with_database(server, name)
    try:
        migrate(url)
        yield url
    finally:
        if db.obj is not None:
            db.close()
        _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def datalayer_db(datalayer_url: str) -> Iterator[Any]:
    """The library's database handle, inside a transaction rolled back after the test."""
    if getattr(db.obj, "_datalayer_test_url", None) != datalayer_url:
        init_db(datalayer_url)
        db.obj._datalayer_test_url = datalayer_url
    with db.atomic() as transaction:
        yield db
        transaction.rollback()


def make_user(**fields: Any) -> UserDTO:
    """Create a user (a unique name and email unless given) and return it."""
    n = next(_seq)
    fields.setdefault("name", f"User {n}")
    fields.setdefault("email", f"user{n}-{uuid.uuid4().hex[:8]}@example.com")
    return UserQueries.create(fields)  # type: ignore[arg-type]  # keys checked at run time


def make_tenant(owner_id: UserId | None = None, **fields: Any) -> TenantDTO:
    """Create a tenant owned by ``owner_id`` (a new user when None) and return it."""
    owner = owner_id if owner_id is not None else make_user()["id"]
    fields.setdefault("name", f"Tenant {next(_seq)}")
    return TenantQueries.create_with_owner(owner, fields)  # type: ignore[arg-type]  # keys checked at run time


def make_todo(
    user_id: UserId | None = None, *, tenant_id: TenantId | None = None, **fields: Any
) -> TodoDTO:
    """Create a todo for ``user_id`` (a new user when None) and return it."""
    user = user_id if user_id is not None else make_user()["id"]
    fields.setdefault("title", f"Todo {next(_seq)}")
    data: CreateTodoInput = fields  # type: ignore[assignment]  # keys checked at run time
    return TodoQueries.create(user, data, tenant_id=tenant_id)


def make_notification(
    recipient_user_id: UserId | None = None,
    *,
    type: NotificationType = "direct_message",  # noqa: A002 - notify's name
    **fields: Any,
) -> NotificationWithDeliveriesDTO:
    """Notify ``recipient_user_id`` (a new user when None); return the notification."""
    recipient = recipient_user_id if recipient_user_id is not None else make_user()["id"]
    fields.setdefault("title", f"Notification {next(_seq)}")
    fields.setdefault("body", "body")
    return NotificationQueries.notify(recipient, type=type, **fields)
