"""Queries of the features domain: todos, the waitlist, per-user daily activity."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from datalayer.errors import ConflictError, NotFoundError, PermissionDeniedError
from datalayer.models import TenantMember, Todo, Waitlist
from datalayer.queries.base import Page, keyset_page, read, write
from datalayer.queries.features_activity import UserActivityQueries
from datalayer.replicas import replica_read
from datalayer.schemas.base import check_id, load
from datalayer.schemas.features import (
    TodoDTO,
    WaitlistDTO,
    create_todo_schema,
    create_waitlist_schema,
    todo_dumper,
    update_todo_schema,
    waitlist_dumper,
)


def _require_membership(tenant_id: str, user_id: str) -> None:
    member = TenantMember.select(TenantMember.id).where(
        (TenantMember.tenant == tenant_id) & (TenantMember.user == user_id)
    )
    if not member.exists():
        raise PermissionDeniedError("the user is not a member of this tenant")


class TodoQueries:
    """Todos: a user sees and changes only their own."""

    @staticmethod
    def find_by_id(id: str) -> TodoDTO | None:  # noqa: A002 - the spec's name
        """Return the todo with this id, or None."""
        check_id("id", id)
        with read():
            return todo_dumper.one(todo_dumper.select().where(Todo.id == id))  # type: ignore[return-value]

    @staticmethod
    def find_for_user(id: str, user_id: str) -> TodoDTO | None:  # noqa: A002
        """Return the user's todo with this id, or None (also when it is someone else's)."""
        check_id("id", id)
        check_id("user_id", user_id)
        query = todo_dumper.select().where((Todo.id == id) & (Todo.user == user_id))
        with read():
            return todo_dumper.one(query)  # type: ignore[return-value]

    @staticmethod
    @replica_read
    def list_for_user(
        user_id: str,
        tenant_id: str | None = None,
        completed: bool | None = None,
        *,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """Return a newest-first page of the user's todos (personal ones when tenant_id is None)."""
        check_id("user_id", user_id)
        scope = (
            Todo.tenant.is_null()
            if tenant_id is None
            else Todo.tenant == check_id("tenant_id", tenant_id)
        )
        query = todo_dumper.select().where((Todo.user == user_id) & scope)
        if completed is not None:
            query = query.where(Todo.completed == bool(completed))
        return keyset_page(
            query,
            dumper=todo_dumper,
            ts_field=Todo.created_at,
            id_field=Todo.id,
            limit=limit,
            cursor=cursor,
        )

    @staticmethod
    def create(user_id: str, data: Mapping[str, Any], tenant_id: str | None = None) -> TodoDTO:
        """Create a todo for the user; a tenant todo needs the user's membership."""
        check_id("user_id", user_id)
        values = load(create_todo_schema, data)
        with write():
            if tenant_id is not None:
                _require_membership(check_id("tenant_id", tenant_id), user_id)
            query = Todo.insert(user=user_id, tenant=tenant_id, **values).returning(
                *todo_dumper.fields
            )
            return todo_dumper.row(next(iter(query.tuples().execute())))  # type: ignore[return-value]

    @staticmethod
    def update(id: str, user_id: str, data: Mapping[str, Any]) -> TodoDTO:  # noqa: A002
        """Change the user's todo; NotFoundError when it is not theirs."""
        check_id("id", id)
        check_id("user_id", user_id)
        values = load(update_todo_schema, data)
        with write():
            query = (
                Todo.update(values)
                .where((Todo.id == id) & (Todo.user == user_id))
                .returning(*todo_dumper.fields)
            )
            rows = list(query.tuples().execute())
        if not rows:
            raise NotFoundError(f"todo {id} not found")
        return todo_dumper.row(rows[0])  # type: ignore[return-value]

    @staticmethod
    def toggle_complete(id: str, user_id: str) -> TodoDTO:  # noqa: A002
        """Flip the todo's ``completed`` flag atomically."""
        check_id("id", id)
        check_id("user_id", user_id)
        with write():
            query = (
                Todo.update(completed=~Todo.completed)
                .where((Todo.id == id) & (Todo.user == user_id))
                .returning(*todo_dumper.fields)
            )
            rows = list(query.tuples().execute())
        if not rows:
            raise NotFoundError(f"todo {id} not found")
        return todo_dumper.row(rows[0])  # type: ignore[return-value]

    @staticmethod
    def delete(id: str, user_id: str) -> bool:  # noqa: A002
        """Delete the user's todo; False when there was none."""
        check_id("id", id)
        check_id("user_id", user_id)
        with write():
            return Todo.delete().where((Todo.id == id) & (Todo.user == user_id)).execute() > 0


def _email(email: Any) -> str:
    """Validate and normalize an address (trimmed, lower-cased) as the waitlist stores it."""
    return load(create_waitlist_schema, {"email": email})["email"]  # type: ignore[no-any-return]


class WaitlistQueries:
    """The waitlist: one row per address, whatever its letter case."""

    @staticmethod
    def join(email: str) -> tuple[WaitlistDTO, bool]:
        """Add the address once; return its row and whether this call added it."""
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
                    return waitlist_dumper.row(rows[0]), True  # type: ignore[return-value]
                row = waitlist_dumper.one(existing)
                if row is not None:
                    return row, False  # type: ignore[return-value]
        raise ConflictError(f"waitlist entry for {address} keeps changing; try again")

    @staticmethod
    def find_by_email(email: str) -> WaitlistDTO | None:
        """Return the waitlist entry of this address (any case), or None."""
        address = _email(email)
        with read():
            return waitlist_dumper.one(  # type: ignore[return-value]
                waitlist_dumper.select().where(Waitlist.email == address)
            )

    @staticmethod
    def exists(email: str) -> bool:
        """Tell whether the address (any case) is on the waitlist."""
        address = _email(email)
        with read():
            return bool(Waitlist.select(Waitlist.id).where(Waitlist.email == address).exists())

    @staticmethod
    def remove(email: str) -> bool:
        """Remove the address from the waitlist; False when it was not on it."""
        address = _email(email)
        with write():
            return bool(Waitlist.delete().where(Waitlist.email == address).execute() > 0)

    @staticmethod
    def count() -> int:
        """Return the number of addresses on the waitlist."""
        with read():
            return int(Waitlist.select().count())

    @staticmethod
    @replica_read
    def list(*, limit: int = 50, cursor: str | None = None) -> Page:
        """Return a newest-first page of the waitlist."""
        return keyset_page(
            waitlist_dumper.select(),
            dumper=waitlist_dumper,
            ts_field=Waitlist.created_at,
            id_field=Waitlist.id,
            limit=limit,
            cursor=cursor,
        )


__all__ = ["TodoQueries", "UserActivityQueries", "WaitlistQueries"]
