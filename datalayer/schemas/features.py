"""DTOs of the features domain: todos, the waitlist, per-user daily activity."""

from __future__ import annotations

import datetime as dt
from typing import Required, TypedDict

from marshmallow import validate

from datalayer.models import Todo, UserActivityDaily, Waitlist
from datalayer.schemas.base import (
    Dumper,
    Email,
    Int4,
    StringList,
    Text,
    model_schema,
    writable_schema,
)
from datalayer.types import TenantId, TodoId, UserActivityId, UserId, WaitlistId

TodoSchema = model_schema(
    Todo,
    name="TodoSchema",
    dump_only=("user_id", "tenant_id"),
    overrides={
        "title": Text(required=True, validate=validate.Length(min=1, max=255)),
        "description": Text(allow_none=True, validate=validate.Length(max=1000)),
    },
)
CreateTodoSchema = writable_schema(
    TodoSchema,
    name="CreateTodoSchema",
    required=("title",),
)
UpdateTodoSchema = writable_schema(
    TodoSchema,
    name="UpdateTodoSchema",
)

WaitlistSchema = model_schema(
    Waitlist, name="WaitlistSchema", overrides={"email": Email(required=True)}
)
CreateWaitlistSchema = writable_schema(
    WaitlistSchema,
    name="CreateWaitlistSchema",
    required=("email",),
)

UserActivityDailySchema = model_schema(
    UserActivityDaily,
    name="UserActivityDailySchema",
    dump_only=("user_id",),
)


def _count() -> Int4:
    return Int4(validate=validate.Range(min=0))


# What one ``UserActivityQueries.record`` call adds to a day's row.
CreateUserActivityDailySchema = writable_schema(
    UserActivityDailySchema,
    name="CreateUserActivityDailySchema",
    required=("date",),
    overrides={
        "event_count": _count(),
        "session_count": _count(),
        "active_minutes": _count(),
        "features_used": StringList(),
    },
)


# Write inputs: what ``data`` may hold (``total=False``: every key may be left out but the
# ``Required`` ones). Static types only — at run time any mapping is accepted and checked
# by the schema, which refuses unknown keys. tests/test_schemas_common.py keeps each one
# equal to its schema's fields. The call syntax, because ``Required`` inside a string
# annotation (``from __future__ import annotations``) is lost at run time on 3.11.


CreateTodoInput = TypedDict(
    "CreateTodoInput",
    {
        "title": Required[str],
        "description": str | None,
        "completed": bool,
        "due_date": dt.datetime | str | None,
    },
    total=False,
)


UpdateTodoInput = TypedDict(
    "UpdateTodoInput",
    {
        "title": str,
        "description": str | None,
        "completed": bool,
        "due_date": dt.datetime | str | None,
    },
    total=False,
)


class TodoDTO(TypedDict):
    id: TodoId
    user_id: UserId
    tenant_id: TenantId | None
    title: str
    description: str | None
    completed: bool
    due_date: str | None
    created_at: str
    updated_at: str


class WaitlistDTO(TypedDict):
    id: WaitlistId
    email: str
    created_at: str


class UserActivityDailyDTO(TypedDict):
    id: UserActivityId
    user_id: UserId
    date: str
    event_count: int
    session_count: int
    active_minutes: int
    features_used: list[str]
    created_at: str
    updated_at: str


# Built once, at import (marshmallow's habit): the instances the query modules use.
todo_schema = TodoSchema()
create_todo_schema = CreateTodoSchema()
update_todo_schema = UpdateTodoSchema()
waitlist_schema = WaitlistSchema()
create_waitlist_schema = CreateWaitlistSchema()
user_activity_daily_schema = UserActivityDailySchema()
create_user_activity_daily_schema = CreateUserActivityDailySchema()

todo_dumper: Dumper[TodoDTO] = Dumper(todo_schema, Todo)
waitlist_dumper: Dumper[WaitlistDTO] = Dumper(waitlist_schema, Waitlist)
user_activity_daily_dumper: Dumper[UserActivityDailyDTO] = Dumper(user_activity_daily_schema, UserActivityDaily)

__all__ = [
    "CreateTodoInput",
    "UpdateTodoInput",
    "CreateTodoSchema",
    "CreateUserActivityDailySchema",
    "CreateWaitlistSchema",
    "TodoDTO",
    "TodoSchema",
    "UpdateTodoSchema",
    "UserActivityDailyDTO",
    "UserActivityDailySchema",
    "WaitlistDTO",
    "WaitlistSchema",
]
