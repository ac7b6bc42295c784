"""features: todos, the waitlist and per-user daily activity rollups."""

from __future__ import annotations

import peewee as pw

from datalayer.models.auth import User
from datalayer.models.base import (
    EMPTY_JSON_LIST,
    FALSE,
    RANDOM_UUID,
    ZERO,
    BaseModel,
    TimestampTZField,
    check_constraint,
    created_at,
    id_field,
    json_array_check,
    updated_at,
)
from datalayer.models.tenant import Tenant


class Todo(BaseModel):
    id = id_field()
    user = pw.ForeignKeyField(
        User, column_name="user_id", on_delete="CASCADE", backref="todos", index=False
    )
    tenant = pw.ForeignKeyField(
        Tenant, column_name="tenant_id", null=True, on_delete="CASCADE", backref="todos"
    )
    title = pw.TextField()
    description = pw.TextField(null=True)
    completed = pw.BooleanField(default=False, constraints=[FALSE])
    due_date = TimestampTZField(null=True)
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        table_name = "todos"
        constraints = [
            check_constraint("todos_title_length_check", "length(title) BETWEEN 1 AND 255"),
            check_constraint(
                "todos_description_length_check",
                "description IS NULL OR length(description) <= 1000",
            ),
        ]


Todo.add_index(
    Todo.index(Todo.user, Todo.tenant, Todo.created_at, Todo.id, name="todos_user_list_idx")
)
# Personal todos (tenant_id IS NULL): PostgreSQL does not treat IS NULL as an equality
# when ordering by the list index above, so without this it sorts all of a user's
# personal todos for every page.
Todo.add_index(
    Todo.index(
        Todo.user,
        Todo.created_at,
        Todo.id,
        where=pw.SQL("tenant_id IS NULL"),
        name="todos_user_personal_idx",
    )
)


class Waitlist(BaseModel):
    # The original's writers omit the id (their column defaults to gen_random_uuid()).
    id = id_field(server_default=RANDOM_UUID)
    email = pw.CharField(max_length=255, unique=True)
    created_at = created_at()

    class Meta:
        table_name = "waitlist"
        constraints = [check_constraint("waitlist_email_lower_check", "email = lower(email)")]


Waitlist.add_index(Waitlist.index(Waitlist.created_at, Waitlist.id, name="waitlist_recent_idx"))


class UserActivityDaily(BaseModel):
    id = id_field(server_default=RANDOM_UUID)  # as for waitlist
    user = pw.ForeignKeyField(
        User, column_name="user_id", on_delete="CASCADE", backref="activity", index=False
    )
    date = pw.DateField()
    event_count = pw.IntegerField(default=0, constraints=[ZERO])
    session_count = pw.IntegerField(default=0, constraints=[ZERO])
    active_minutes = pw.IntegerField(default=0, constraints=[ZERO])
    features_used = pw.JSONField(default=list, constraints=[EMPTY_JSON_LIST])
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        table_name = "user_activity_daily"
        indexes = ((("user", "date"), True),)
        constraints = [json_array_check("user_activity_daily_features_used_check", "features_used")]
