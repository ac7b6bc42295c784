"""NotificationQueries on both backends: notify and the recipient's inbox."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from factories import add_member, make_tenant, make_user

from datalayer import (
    NotFoundError,
    NotificationQueries,
    PreferenceQueries,
    ValidationError,
    db,
)
from datalayer.models import Notification, NotificationDelivery, User

pytestmark = pytest.mark.usefixtures("txn")


def notify(user: User, title: str = "Hello", **kwargs):
    return NotificationQueries.notify(
        user.id, type="direct_message", title=title, body="body", **kwargs
    )


def count_for(user: User) -> tuple[int, int]:
    """Return how many notifications and deliveries the user has."""
    notes = Notification.select().where(Notification.recipient_user == user.id).count()
    deliveries = (
        NotificationDelivery.select()
        .join(Notification)
        .where(Notification.recipient_user == user.id)
        .count()
    )
    return notes, deliveries


def deliveries_of(notification_id: str) -> dict[str, str]:
    rows = NotificationDelivery.select().where(NotificationDelivery.notification == notification_id)
    return {d.channel: d.status for d in rows}


def test_notify_writes_the_notification_and_default_channel_deliveries() -> None:
    user, actor = make_user(), make_user()
    tenant = make_tenant(user)
    add_member(tenant, actor)  # in a tenant, the actor is a member too
    note = NotificationQueries.notify(
        user.id,
        type="todo_assigned",
        title="Do it",
        body="Please",
        tenant_id=tenant.id,
        actor_user_id=actor.id,
        deep_link="app://todos/1",
        data={"todo": 1, "tags": ["a"]},
        batch_key="todos:1",
    )
    assert note["recipient_user_id"] == user.id and note["tenant_id"] == tenant.id
    assert note["actor_user_id"] == actor.id and note["type"] == "todo_assigned"
    assert note["data"] == {"todo": 1, "tags": ["a"]} and note["batch_key"] == "todos:1"
    assert note["read_at"] is None and note["archived_at"] is None
    assert [d["channel"] for d in note["deliveries"]] == ["in_app", "email"]  # the defaults
    assert all(d["status"] == "pending" and d["attempts"] == 0 for d in note["deliveries"])
    assert all(d["notification_id"] == note["id"] for d in note["deliveries"])
    assert deliveries_of(note["id"]) == {"in_app": "pending", "email": "pending"}
    stored = NotificationQueries.inbox(user.id)["items"][0]
    assert stored == {k: v for k, v in note.items() if k != "deliveries"}


def test_notify_follows_the_resolved_preferences() -> None:
    user = make_user()
    tenant, other_tenant = make_tenant(user), make_tenant(user)
    PreferenceQueries.upsert(user.id, {"push_enabled": True, "email_enabled": False})
    PreferenceQueries.upsert(user.id, {"in_app_enabled": False}, tenant_id=tenant.id)
    personal = notify(user)
    assert [d["channel"] for d in personal["deliveries"]] == ["in_app", "push"]  # global row
    in_tenant = notify(user, tenant_id=tenant.id)
    assert [d["channel"] for d in in_tenant["deliveries"]] == ["email"]  # tenant row, defaults
    elsewhere = notify(user, tenant_id=other_tenant.id)
    assert [d["channel"] for d in elsewhere["deliveries"]] == ["in_app", "push"]  # global row
    PreferenceQueries.upsert(
        user.id,
        {"in_app_enabled": False, "email_enabled": False},
        tenant_id=other_tenant.id,
    )  # a new tenant row starts from the column defaults: push off
    silent = notify(user, tenant_id=other_tenant.id)
    assert silent["deliveries"] == [] and deliveries_of(silent["id"]) == {}


def test_notify_rejects_bad_input_and_writes_nothing() -> None:
    user = make_user()
    cases = [
        (("nope", "t", "b"), {}, "type"),
        (("direct_message", "", "b"), {}, "title"),
        (("direct_message", "x" * 256, "b"), {}, "title"),
        (("direct_message", "t", None), {}, "body"),
        (("direct_message", "t\x00", "b"), {}, "title"),
        (("direct_message", "t", "b"), {"deep_link": "d" * 501}, "deep_link"),
        (("direct_message", "t", "b"), {"data": {"x": float("nan")}}, "data"),
        (("direct_message", "t", "b"), {"tenant_id": ""}, "tenant_id"),
        (("direct_message", "t", "b"), {"actor_user_id": 5}, "actor_user_id"),
    ]
    for args, kwargs, field in cases:
        with pytest.raises(ValidationError) as info:
            type_, title, body = args
            NotificationQueries.notify(user.id, type=type_, title=title, body=body, **kwargs)
        assert field in info.value.messages
    with pytest.raises(ValidationError) as info:
        NotificationQueries.notify("", type="direct_message", title="t", body="b")
    assert "recipient_user_id" in info.value.messages
    with pytest.raises(NotFoundError):
        NotificationQueries.notify("no-such-user", type="direct_message", title="t", body="b")
    with pytest.raises(NotFoundError):
        NotificationQueries.notify(user.id, type="direct_message", title="t", body="b", tenant_id="no-such-tenant")
    assert count_for(user) == (0, 0)


def test_inbox_pages_newest_first_and_is_scoped_to_the_recipient() -> None:
    user, other = make_user(), make_user()
    tenant = make_tenant(user)
    personal = [notify(user, f"p{i}") for i in range(4)]
    in_tenant = [notify(user, f"t{i}", tenant_id=tenant.id) for i in range(3)]
    notify(other, "not yours")
    seen, cursor = [], None
    while True:
        page = NotificationQueries.inbox(user.id, limit=3, cursor=cursor)
        seen += [n["id"] for n in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [n["id"] for n in reversed(personal + in_tenant)]  # None: everything
    scoped = NotificationQueries.inbox(user.id, tenant_id=tenant.id)["items"]
    assert [n["id"] for n in scoped] == [n["id"] for n in reversed(in_tenant)]
    assert NotificationQueries.inbox(other.id, tenant_id=tenant.id)["items"] == []


@pytest.mark.parametrize(
    "bad",
    [{"limit": 0}, {"cursor": "garbage!"}, {"include_archived": "yes"}, {"tenant_id": ""}],
    ids=lambda bad: next(iter(bad)),
)
def test_inbox_refuses_a_bad_filter_naming_it(bad: dict[str, Any]) -> None:
    user = make_user()
    with pytest.raises(ValidationError) as info:
        NotificationQueries.inbox(user.id, **bad)
    assert list(info.value.messages) == list(bad)


def test_archive_hides_from_inbox_unless_asked() -> None:
    user, other = make_user(), make_user()
    kept, archived = notify(user, "kept"), notify(user, "archived")
    assert NotificationQueries.archive(archived["id"], other.id) is False
    assert Notification.get_by_id(archived["id"]).archived_at is None
    assert NotificationQueries.archive(archived["id"], user.id) is True
    assert NotificationQueries.archive(archived["id"], user.id) is False  # already archived
    assert NotificationQueries.archive("no-such-id", user.id) is False
    assert [n["id"] for n in NotificationQueries.inbox(user.id)["items"]] == [kept["id"]]
    every = NotificationQueries.inbox(user.id, include_archived=True)["items"]
    assert [n["id"] for n in every] == [archived["id"], kept["id"]]
    assert every[0]["archived_at"] is not None
    with pytest.raises(ValidationError):
        NotificationQueries.archive("", user.id)


def test_unread_count_and_mark_read_only_by_the_recipient() -> None:
    user, other = make_user(), make_user()
    tenant = make_tenant(user)
    first, second = notify(user), notify(user, tenant_id=tenant.id)
    notify(other)
    assert NotificationQueries.unread_count(user.id) == 2
    assert NotificationQueries.unread_count(user.id, tenant_id=tenant.id) == 1
    assert NotificationQueries.mark_read(first["id"], other.id) is False
    assert Notification.get_by_id(first["id"]).read_at is None
    assert NotificationQueries.mark_read(first["id"], user.id) is True
    read_at = Notification.get_by_id(first["id"]).read_at
    assert read_at is not None and read_at.tzinfo is not None
    assert NotificationQueries.mark_read(first["id"], user.id) is False  # already read
    assert Notification.get_by_id(first["id"]).read_at == read_at  # first read time kept
    assert NotificationQueries.unread_count(user.id) == 1
    NotificationQueries.archive(second["id"], user.id)
    assert NotificationQueries.unread_count(user.id) == 0  # archived is not unread
    assert NotificationQueries.unread_count(other.id) == 1
    for call in (
        lambda: NotificationQueries.mark_read(first["id"], ""),
        lambda: NotificationQueries.mark_read(None, user.id),
        lambda: NotificationQueries.unread_count(user.id, tenant_id=""),
    ):
        with pytest.raises(ValidationError):
            call()


def test_mark_all_read_counts_and_respects_scope() -> None:
    user, other = make_user(), make_user()
    tenant = make_tenant(user)
    notify(user)
    notify(user)
    notify(user, tenant_id=tenant.id)
    archived = notify(user, tenant_id=tenant.id)
    NotificationQueries.archive(archived["id"], user.id)
    notify(other)
    assert NotificationQueries.mark_all_read(other.id, tenant_id=tenant.id) == 0
    assert NotificationQueries.mark_all_read(user.id, tenant_id=tenant.id) == 1
    assert NotificationQueries.unread_count(user.id) == 2
    assert NotificationQueries.mark_all_read(user.id) == 2
    assert NotificationQueries.mark_all_read(user.id) == 0
    assert NotificationQueries.unread_count(other.id) == 1
    with pytest.raises(ValidationError):
        NotificationQueries.mark_all_read(user.id, tenant_id=7)


def test_notify_joins_a_callers_transaction() -> None:
    user = make_user()
    with db.atomic() as outer:
        notify(user)
        assert count_for(user) == (1, 2)
        outer.rollback()
    assert count_for(user) == (0, 0)


def test_inbox_costs_constant_queries(query_counter) -> None:
    user = make_user()
    created = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    Notification.insert_many(
        [
            {
                "recipient_user": user.id,
                "type": "mention",
                "title": "t",
                "body": "b",
                "created_at": created,
            }
        ]
    ).execute()
    query_counter.statements.clear()
    assert len(NotificationQueries.inbox(user.id)["items"]) == 1
    one = query_counter.count
    Notification.insert_many(
        [
            {
                "recipient_user": user.id,
                "type": "mention",
                "title": f"t{i}",
                "body": "b",
                "created_at": created + dt.timedelta(seconds=i),
            }
            for i in range(99)
        ]
    ).execute()
    query_counter.statements.clear()
    page = NotificationQueries.inbox(user.id, limit=100)
    assert len(page["items"]) == 100 and page["next_cursor"] is None
    assert query_counter.count == one
