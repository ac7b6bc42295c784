"""TodoQueries: a user's todos, on the hot path.

Every statement is compiled once per backend (``Statement``) and rows are dumped from
the driver's tuples by the schema's compiled dumper, so a call costs little more than
the round trip (see benchmarks/). Single-statement writes run as one statement — atomic
on their own, and part of the caller's transaction when there is one.
"""

from __future__ import annotations

from typing import Any, cast

import peewee

from datalayer import arguments
from datalayer.connection.database import is_sqlite
from datalayer.connection.replicas import replica_read
from datalayer.errors import NotFoundError, PermissionDeniedError, error_boundary
from datalayer.models import TenantMember, Todo, new_id, utcnow
from datalayer.queries.base import (
    Page,
    Statement,
    StatementCache,
    decode_cursor,
    keyset_order,
    page_of,
    param,
    write,
)
from datalayer.schemas.base import check_id, check_limit, load
from datalayer.schemas.features import (
    CreateTodoInput,
    TodoDTO,
    UpdateTodoInput,
    create_todo_schema,
    todo_dumper,
    update_todo_schema,
)
from datalayer.types import TenantId, TodoId, UserId

_COLUMNS = todo_dumper.fields
_ID = todo_dumper.columns.index("id")
_CREATED = todo_dumper.columns.index("created_at")


def _one(cursor: Any) -> TodoDTO | None:
    row = cursor.fetchone()
    if row is None:
        return None
    return todo_dumper.raw_rows((row,), sqlite=is_sqlite())[0]


def _changed(cursor: Any, todo_id: str) -> TodoDTO:
    row = _one(cursor)
    if row is None:
        raise NotFoundError(entity="todo", id=todo_id)
    return row


def _in_scope() -> Any:
    """The todo is personal, or its user is still a member of its tenant: a member removed
    from a tenant no longer reads or changes their todos in it (checked in the statement,
    on the memberships' (tenant, user) index: no extra round trip)."""
    member = TenantMember.select(peewee.SQL("1")).where(
        (TenantMember.tenant == Todo.tenant) & (TenantMember.user == Todo.user)
    )
    return Todo.tenant.is_null() | peewee.fn.EXISTS(member)


_BY_ID = Statement(lambda: todo_dumper.select().where(Todo.id == param("id")).limit(1))
_FOR_USER = Statement(
    lambda: (
        todo_dumper.select()
        .where((Todo.id == param("id")) & (Todo.user == param("user_id")) & _in_scope())
        .limit(1)
    )
)
_MEMBER = Statement(
    lambda: (
        TenantMember.select(peewee.SQL("1"))
        .where(
            (TenantMember.tenant == param("tenant_id")) & (TenantMember.user == param("user_id"))
        )
        .limit(1)
    )
)
_TOGGLE = Statement(
    lambda: (
        Todo.update(
            {
                Todo.completed: ~Todo.completed,
                Todo.updated_at: param("now", Todo.updated_at),
            }
        )
        .where((Todo.id == param("id")) & (Todo.user == param("user_id")) & _in_scope())
        .returning(*_COLUMNS)
    )
)
_DELETE = Statement(
    lambda: Todo.delete().where((Todo.id == param("id")) & (Todo.user == param("user_id")) & _in_scope())
)


def _list_query(in_tenant: bool, by_completed: bool, after: bool) -> peewee.Query:
    query = todo_dumper.select().where(Todo.user == param("user_id"))
    if in_tenant:
        query = query.where((Todo.tenant == param("tenant_id")) & _in_scope())
    else:
        query = query.where(Todo.tenant.is_null())
    if by_completed:
        query = query.where(Todo.completed == param("completed", Todo.completed))
    position = peewee.Tuple(param("after_ts", Todo.created_at), param("after_id"))
    return keyset_order(query, Todo.created_at, Todo.id, position if after else None).limit(
        param("limit")
    )


def _insert_query(columns: tuple[str, ...]) -> peewee.Query:
    fields = [Todo._meta.columns[c] for c in columns]
    return Todo.insert({f: param(f.column_name, f) for f in fields}).returning(*_COLUMNS)


def _update_query(columns: tuple[str, ...]) -> peewee.Query:
    fields = [Todo._meta.columns[c] for c in (*columns, "updated_at")]
    query: peewee.Query = (
        Todo.update({f: param(f.column_name, f) for f in fields})
        .where((Todo.id == param("id")) & (Todo.user == param("user_id")) & _in_scope())
        .returning(*_COLUMNS)
    )
    return query


_LIST = StatementCache(_list_query)
_INSERT = StatementCache(_insert_query)
_UPDATE = StatementCache(_update_query)


@error_boundary
class TodoQueries:
    """Todos: a user sees and changes only their own."""

    @staticmethod
    def find_by_id(todo_id: TodoId) -> TodoDTO | None:
        """Return the todo with this id, or None.

        For trusted code only (a worker, the back office): it checks no owner and no tenant
        membership. Code acting for a user calls ``find_for_user``.

        Returns:
            The todo, or None when no todo has this id.

        Raises:
            ValidationError: ``todo_id`` is not a valid id.
        """
        return _one(_BY_ID.execute({"id": check_id("todo_id", todo_id)}))

    @staticmethod
    def find_for_user(todo_id: TodoId, user_id: UserId) -> TodoDTO | None:
        """Return the user's todo with this id, or None (also when it is someone else's).

        Any caller acting for ``user_id``: only the todo's owner finds it, and a tenant todo
        only while they are still a member of its tenant.

        Returns:
            The todo, or None when no todo has this id, it belongs to another user, or the
            user has left its tenant.

        Raises:
            ValidationError: an id is not a valid id.
        """
        values = {"id": check_id("todo_id", todo_id), "user_id": check_id("user_id", user_id)}
        return _one(_FOR_USER.execute(values))

    @staticmethod
    @replica_read
    def list_for_user(
        user_id: UserId,
        *,
        tenant_id: TenantId | None = None,
        completed: bool | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[TodoDTO]:
        """Return a newest-first page of the user's todos (personal ones when tenant_id is None).

        Any caller acting for ``user_id``. With a ``tenant_id``, the user's todos in that
        tenant while they are a member; ``completed`` filters on the flag. Pass the page's
        ``next_cursor`` as ``cursor`` for the next one. Runs on a read replica when there
        is one.

        Returns:
            A page; its ``items`` are empty when nothing matches (also for a tenant the
            user is not a member of), and ``next_cursor`` is None on the last page.

        Raises:
            ValidationError: an id, ``completed``, ``limit`` (1-1000) or ``cursor`` (only
                what a previous page returned) is not valid.
        """
        values: dict[str, Any] = {
            "user_id": check_id("user_id", user_id),
            "limit": check_limit(limit) + 1,
        }
        if tenant_id is not None:
            values["tenant_id"] = check_id("tenant_id", tenant_id)
        if completed is not None:
            values["completed"] = arguments.boolean("completed", completed)
        if cursor is not None:
            values["after_ts"], values["after_id"] = decode_cursor(cursor)
        statement = _LIST(tenant_id is not None, completed is not None, cursor is not None)
        rows = statement.execute(values).fetchall()
        sqlite = is_sqlite()
        return page_of(
            rows,
            limit,
            lambda page: todo_dumper.raw_rows(page, sqlite=sqlite),
            ts_index=_CREATED,
            id_index=_ID,
        )

    @staticmethod
    def create(user_id: UserId, data: CreateTodoInput, *, tenant_id: TenantId | None = None) -> TodoDTO:
        """Create a todo for the user; a tenant todo needs the user's membership.

        Any caller acting for ``user_id``.

        Returns:
            The new todo.

        Raises:
            ValidationError: ``data`` (``title`` 1-255 characters, ``description``,
                ``completed``, ``due_date``) or an id is not valid; nothing was written.
            PermissionDeniedError: ``tenant_id`` is given and the user is not a member of
                that tenant (also when the tenant does not exist).
            NotFoundError: the user does not exist.
        """
        check_id("user_id", user_id)
        values = load(create_todo_schema, data)
        now = utcnow()
        values.update(id=new_id(), user_id=user_id, created_at=now, updated_at=now)
        if tenant_id is None:
            return cast(TodoDTO, _one(_INSERT(tuple(sorted(values))).execute(values)))
        values["tenant_id"] = check_id("tenant_id", tenant_id)
        with write():  # the membership check and the insert see the same state
            member = {"tenant_id": tenant_id, "user_id": user_id}
            if _MEMBER.execute(member).fetchone() is None:
                raise PermissionDeniedError("the user is not a member of this tenant")
            return cast(TodoDTO, _one(_INSERT(tuple(sorted(values))).execute(values)))

    @staticmethod
    def update(todo_id: TodoId, user_id: UserId, data: UpdateTodoInput) -> TodoDTO:
        """Change the user's todo; NotFoundError when it is not theirs.

        Only the todo's owner (``user_id``), and for a tenant todo only while a member.

        Returns:
            The changed todo.

        Raises:
            ValidationError: ``data`` or an id is not valid; nothing was written.
            NotFoundError: no todo has this id, it is another user's, or the user has left
                its tenant.
        """
        values = load(update_todo_schema, data)
        shape = tuple(sorted(values))
        values.update(
            id=check_id("todo_id", todo_id), user_id=check_id("user_id", user_id), updated_at=utcnow()
        )
        return _changed(_UPDATE(shape).execute(values), todo_id)

    @staticmethod
    def toggle_complete(todo_id: TodoId, user_id: UserId) -> TodoDTO:
        """Flip the todo's ``completed`` flag atomically.

        Only the todo's owner (``user_id``), and for a tenant todo only while a member.
        Two toggles at once flip it twice.

        Returns:
            The changed todo.

        Raises:
            ValidationError: an id is not valid.
            NotFoundError: no todo has this id, it is another user's, or the user has left
                its tenant.
        """
        values = {
            "id": check_id("todo_id", todo_id),
            "user_id": check_id("user_id", user_id),
            "now": utcnow(),
        }
        return _changed(_TOGGLE.execute(values), todo_id)

    @staticmethod
    def delete(todo_id: TodoId, user_id: UserId) -> bool:
        """Delete the user's todo; False when there was none.

        Only the todo's owner (``user_id``), and for a tenant todo only while a member.

        Returns:
            True when it was deleted; False when no todo has this id, it is another user's,
            or the user has left its tenant (nothing deleted).

        Raises:
            ValidationError: an id is not valid.
        """
        values = {"id": check_id("todo_id", todo_id), "user_id": check_id("user_id", user_id)}
        return bool(_DELETE.execute(values).rowcount > 0)


__all__ = ["TodoQueries"]
