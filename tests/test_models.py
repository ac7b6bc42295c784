"""Model-level behaviour: timestamps, updated_at, ids, server defaults."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest
from factories import make_user

from datalayer import db
from datalayer.models import Todo, User, new_id

pytestmark = pytest.mark.usefixtures("txn")


def _age(todo_id: str) -> dt.datetime:
    return Todo.get_by_id(todo_id).updated_at


def test_updated_at_is_refreshed_by_save_and_by_bulk_update_whatever_the_key_style() -> None:
    todo = Todo.create(user=make_user(), title="t")
    before = todo.updated_at
    for change in (
        lambda: Todo.update(title="a").where(Todo.id == todo.id).execute(),
        lambda: Todo.update({Todo.title: "b"}).where(Todo.id == todo.id).execute(),
        lambda: Todo.update({"title": "c"}).where(Todo.id == todo.id).execute(),
    ):
        time.sleep(0.002)
        change()
        assert _age(todo.id) > before
        before = _age(todo.id)
    time.sleep(0.002)
    row = Todo.get_by_id(todo.id)
    row.title = "d"
    row.save()
    assert _age(todo.id) > before


def test_timestamps_are_aware_utc_and_naive_ones_are_refused() -> None:
    user = make_user()
    assert user.created_at.tzinfo is not None and user.created_at.utcoffset() == dt.timedelta(0)
    local = dt.datetime(2030, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=5)))
    todo = Todo.create(user=user, title="t", due_date=local)
    stored = Todo.get_by_id(todo.id).due_date
    assert stored == local and stored.utcoffset() == dt.timedelta(0)
    with pytest.raises(ValueError, match="naive"), db.atomic():
        Todo.create(user=user, title="t", due_date=dt.datetime(2030, 1, 1))


def test_ids_are_time_ordered_uuid7() -> None:
    ids = [new_id() for _ in range(50)]
    assert all(uuid.UUID(i).version == 7 for i in ids)
    stamps = [uuid.UUID(i).int >> 80 for i in ids]
    assert stamps == sorted(stamps)
    assert len(set(ids)) == 50


def test_server_defaults_fill_rows_other_writers_insert() -> None:
    db.execute_sql("INSERT INTO tenants (id, name) VALUES ('t-raw', 'Raw')")
    db.execute_sql('INSERT INTO "user" (id, name, email) VALUES (\'u-raw\', \'R\', \'r@x.io\')')
    user = User.get_by_id("u-raw")
    assert user.lifecycle_stage == "new" and user.email_verified is False
    assert user.created_at is not None and user.created_at.tzinfo is not None
