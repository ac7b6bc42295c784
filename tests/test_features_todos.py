"""TodoQueries on both backends."""

from __future__ import annotations

from typing import Any

import pytest
from factories import add_member, make_tenant, make_user

from datalayer import NotFoundError, PermissionDeniedError, TodoQueries, ValidationError
from datalayer.models import Todo

pytestmark = pytest.mark.usefixtures("txn")


def test_create_and_find() -> None:
    user = make_user()
    todo = TodoQueries.create(user.id, {"title": "Write tests"})
    assert todo["title"] == "Write tests" and todo["completed"] is False
    assert todo["user_id"] == user.id and todo["tenant_id"] is None
    assert TodoQueries.find_by_id(todo["id"]) == todo
    assert TodoQueries.find_for_user(todo["id"], user.id) == todo
    assert TodoQueries.find_for_user(todo["id"], make_user().id) is None


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "x" * 256}, "title"),
        ({"title": "ok", "description": "d" * 1001}, "description"),
        ({"title": "ok", "completed": "yes"}, "completed"),
        ({"title": "ok", "user_id": "someone"}, "user_id"),
        ({"title": "ok", "due_date": "2030-01-01T00:00:00"}, "due_date"),
    ],
)
def test_create_rejects_bad_input_and_writes_nothing(bad: dict[str, Any], field: str) -> None:
    user = make_user()
    with pytest.raises(ValidationError) as info:
        TodoQueries.create(user.id, bad)
    assert field in info.value.messages
    assert Todo.select().where(Todo.user == user.id).count() == 0


def test_tenant_todo_needs_membership() -> None:
    owner, outsider = make_user(), make_user()
    tenant = make_tenant(owner)
    todo = TodoQueries.create(owner.id, {"title": "team"}, tenant_id=tenant.id)
    assert todo["tenant_id"] == tenant.id
    with pytest.raises(PermissionDeniedError):
        TodoQueries.create(outsider.id, {"title": "sneaky"}, tenant_id=tenant.id)
    add_member(tenant, outsider)
    assert TodoQueries.create(outsider.id, {"title": "now ok"}, tenant_id=tenant.id)


def test_list_pages_are_keyset_and_scoped() -> None:
    user, other = make_user(), make_user()
    tenant = make_tenant(user)
    created = [TodoQueries.create(user.id, {"title": f"t{i}"}) for i in range(7)]
    TodoQueries.create(user.id, {"title": "in tenant"}, tenant_id=tenant.id)
    TodoQueries.create(other.id, {"title": "not mine"})
    seen, cursor = [], None
    while True:
        page = TodoQueries.list_for_user(user.id, limit=3, cursor=cursor)
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [t["id"] for t in reversed(created)]
    in_tenant = TodoQueries.list_for_user(user.id, tenant_id=tenant.id)
    assert [t["title"] for t in in_tenant["items"]] == ["in tenant"]
    with pytest.raises(ValidationError) as info:
        TodoQueries.list_for_user(user.id, cursor="garbage!")
    assert "cursor" in info.value.messages


def test_completed_filter_and_toggle() -> None:
    user = make_user()
    a = TodoQueries.create(user.id, {"title": "a"})
    TodoQueries.create(user.id, {"title": "b"})
    assert TodoQueries.toggle_complete(a["id"], user.id)["completed"] is True
    done = TodoQueries.list_for_user(user.id, completed=True)["items"]
    assert [t["id"] for t in done] == [a["id"]]
    assert TodoQueries.toggle_complete(a["id"], user.id)["completed"] is False


def test_update_and_delete_only_own() -> None:
    user, other = make_user(), make_user()
    todo = TodoQueries.create(user.id, {"title": "mine"})
    with pytest.raises(NotFoundError):
        TodoQueries.update(todo["id"], other.id, {"title": "hijacked"})
    with pytest.raises(NotFoundError):
        TodoQueries.toggle_complete(todo["id"], other.id)
    assert TodoQueries.delete(todo["id"], other.id) is False
    updated = TodoQueries.update(todo["id"], user.id, {"title": "renamed", "description": None})
    assert updated["title"] == "renamed" and updated["updated_at"] >= todo["updated_at"]
    assert TodoQueries.delete(todo["id"], user.id) is True
    assert TodoQueries.find_by_id(todo["id"]) is None


def test_list_costs_constant_queries(query_counter) -> None:
    user = make_user()
    TodoQueries.list_for_user(user.id)
    query_counter.statements.clear()
    TodoQueries.list_for_user(user.id)
    empty = query_counter.count
    for i in range(100):
        Todo.create(user=user, title=f"t{i}")
    query_counter.statements.clear()
    assert len(TodoQueries.list_for_user(user.id, limit=100)["items"]) == 100
    assert query_counter.count == empty
