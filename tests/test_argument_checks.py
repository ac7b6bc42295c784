"""The defect classes of issue 14, one test (at least) each: hostile input gets a
``ValidationError`` naming the argument, never a raw driver or Python exception, and
nothing is written. ``tests/test_hostile_inputs.py`` drives every public function."""

from __future__ import annotations

import base64
import datetime as dt
import inspect
import json
import typing
from collections.abc import Callable
from typing import Any

import pytest
from factories import add_member, make_tenant, make_user

import datalayer
from datalayer import (
    AuditLogQueries,
    DeliveryQueries,
    NotificationQueries,
    SubscriptionEventQueries,
    TenantActivityQueries,
    TodoQueries,
    UserQueries,
    ValidationError,
)
from datalayer.arguments import JSON_MAX_BYTES, JSON_MAX_DEPTH, cursor, encode_cursor, json_problem
from datalayer.models import ALL_MODELS, AdminUser, User

pytestmark = pytest.mark.usefixtures("txn")

UTC = dt.UTC
SURROGATE = "a\ud800"


def namespaces() -> dict[str, type]:
    return {
        name: getattr(datalayer, name)
        for name in datalayer.__all__
        if name.endswith("Queries") and inspect.isclass(getattr(datalayer, name))
    }


def functions() -> list[tuple[str, Callable[..., Any]]]:
    found = []
    for ns_name, ns in namespaces().items():
        for attr in sorted(vars(ns)):
            if not attr.startswith("_") and callable(getattr(ns, attr)):
                found.append((f"{ns_name}.{attr}", getattr(ns, attr)))
    return found


def counts() -> dict[str, int]:
    return {m._meta.table_name: m.select().count() for m in ALL_MODELS if m.table_exists()}


def refused(name: str, call: Callable[[], Any]) -> ValidationError:
    before = counts()
    with pytest.raises(ValidationError) as info:
        call()
    assert name in info.value.messages, info.value.messages
    assert counts() == before
    return info.value


# 1. lone surrogates ------------------------------------------------------------------------


def test_surrogates_in_ids_text_and_data_are_refused_by_name() -> None:
    user = make_user()
    refused("user_id", lambda: UserQueries.find_by_id(SURROGATE))
    refused("email", lambda: UserQueries.find_by_email(SURROGATE + "@example.com"))
    refused("user_id", lambda: TodoQueries.list_for_user(SURROGATE))
    refused("title", lambda: TodoQueries.create(user.id, {"title": SURROGATE}))
    refused("name", lambda: UserQueries.update(user.id, {"name": "x\udfff"}))
    refused("title", lambda: NotificationQueries.notify(user.id, type="milestone", title=SURROGATE, body="body"))
    refused("data", lambda: NotificationQueries.notify(user.id, type="milestone", title="t",
                                                       body="b", data={"k": SURROGATE}))
    refused("data", lambda: NotificationQueries.notify(user.id, type="milestone", title="t",
                                                       body="b", data={SURROGATE: 1}))
    refused("worker_id", lambda: DeliveryQueries.claim(SURROGATE))


# 2. out-of-range aware datetimes -----------------------------------------------------------

FAR = dt.datetime.max.replace(tzinfo=UTC)


def test_out_of_range_datetimes_are_refused_by_name() -> None:
    user = make_user()
    admin = AdminUser.create(email="audit-range@example.com")
    refused("due_date", lambda: TodoQueries.create(
        user.id,
        {"title": "t", "due_date": "0001-01-01T00:00:00+01:00"},
    ))
    refused("due_date", lambda: TodoQueries.create(
        user.id,
        {"title": "t", "due_date": "9999-12-31T23:00:00-05:00"},
    ))
    refused("now", lambda: DeliveryQueries.claim("w1", now=FAR))
    refused("now", lambda: UserQueries.touch_last_active(user.id, now=FAR))
    refused("now", lambda: UserQueries.touch_last_active(user.id, now=dt.datetime.min.replace(tzinfo=UTC)))
    refused("until", lambda: AuditLogQueries.summary(since=dt.datetime(2024, 1, 1, tzinfo=UTC), until=FAR))
    refused("since", lambda: AuditLogQueries.summary(since=dt.datetime.min.replace(tzinfo=UTC),
                                                     until=dt.datetime(2024, 1, 1, tzinfo=UTC)))
    assert admin.id


def test_out_of_range_period_dates_in_events_are_refused() -> None:
    tenant = make_tenant()
    event = {
        "provider": "polar",
        "event_id": "evt_far",
        "event_type": "subscription.updated",
        "occurred_at": "2024-05-01T12:00:00+00:00",
        "tenant_id": tenant.id,
        "payload": {},
        "subscription": {
            "polar_subscription_id": "sub_far",
            "status": "past_due",
            "plan_id": "pro",
            "current_period_end": FAR.isoformat(),
        },
    }
    error = refused("subscription", lambda: SubscriptionEventQueries.ingest(event))
    assert "current_period_end" in str(error.messages["subscription"])


# 3. deep and huge JSON ----------------------------------------------------------------------


def _deep(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = [value]
    return value


def test_deep_json_is_refused_without_recursion() -> None:
    user = make_user()
    admin = AdminUser.create(email="audit-deep@example.com", status="active")
    deep = _deep(10_000)
    refused("data", lambda: NotificationQueries.notify(user.id, type="milestone", title="t", body="b", data=deep))
    refused("metadata", lambda: AuditLogQueries.append(admin.id, action="USER_VIEW",
                                                       target_type="user", metadata={"x": deep}))
    event = {
        "provider": "polar", "event_id": "evt_deep", "event_type": "subscription.updated",
        "occurred_at": "2024-05-01T12:00:00+00:00", "payload": deep,
        "subscription": {"polar_subscription_id": "s", "status": "active", "plan_id": "pro"},
    }
    error = refused("payload", lambda: SubscriptionEventQueries.ingest(event))
    assert str(JSON_MAX_DEPTH) in str(error.messages)
    # The limits are exact: 64 levels pass, 65 do not; 1 MiB passes, more does not.
    assert json_problem(_deep(JSON_MAX_DEPTH - 1)) is None
    assert json_problem(_deep(JSON_MAX_DEPTH)) is not None
    assert json_problem("x" * (JSON_MAX_BYTES - 2)) is None
    refused("data", lambda: NotificationQueries.notify(
        user.id,
        type="milestone",
        title="t",
        body="b",
        data={"big": "x" * JSON_MAX_BYTES},
    ))
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    refused("data", lambda: NotificationQueries.notify(user.id, type="milestone", title="t", body="b", data=cyclic))


# 4. iterables of choices --------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad", [5, 5.0, {"email": True}, [5], ["fax"], [], b"email", object()], ids=repr
)
def test_channels_that_are_not_an_iterable_of_channel_names_are_refused(bad: Any) -> None:
    refused("channels", lambda: DeliveryQueries.claim("w1", channels=bad))


def test_channels_may_be_one_name_or_an_iterable_of_names() -> None:
    assert DeliveryQueries.claim("w1", channels="email") == []
    assert DeliveryQueries.claim("w1", channels=("email", "push")) == []


# 5. forged cursors --------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


FORGED = [
    _b64(json.dumps(["2024-01-01T00:00:00+00:00", "id\x00nul"]).encode()),
    _b64(b'["2024-01-01T00:00:00+00:00","\\ud800"]'),
    _b64(json.dumps(["0001-01-01T00:00:00+01:00", "x"]).encode()),
    _b64(json.dumps(["9999-12-31T23:59:59-01:00", "x"]).encode()),
    _b64(json.dumps(["2024-01-01T00:00:00", "naive"]).encode()),
    _b64(json.dumps(["2024-01-01T00:00:00+00:00", 5]).encode()),
    _b64(json.dumps(["2024-01-01T00:00:00+00:00", "x" * 300]).encode()),
    _b64(b"[" * 50_000),
    _b64(b'["' + b"[" * 700 + b'"]'),
    _b64(b"not json"),
    "not base64!",
    "\ud800",
    "",
    5,
]


def paginated() -> list[tuple[str, Callable[..., Any]]]:
    return [(n, f) for n, f in functions() if "cursor" in inspect.signature(f).parameters]


def test_there_are_paginated_lists() -> None:
    assert len(paginated()) >= 6, [n for n, _ in paginated()]


@pytest.mark.parametrize("forged", FORGED, ids=range(len(FORGED)))
def test_forged_cursors_are_refused_by_name(forged: Any) -> None:
    for _name, fn in paginated():
        params = inspect.signature(fn).parameters
        args = {p: "some-id" for p, v in params.items()
                if v.default is inspect.Parameter.empty}
        refused("cursor", lambda fn=fn, args=args: fn(**args, cursor=forged))


def test_a_real_cursor_still_decodes() -> None:
    ts = dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert cursor(encode_cursor(ts, "row-1")) == (ts, "row-1")


# 6. integer ranges agree on both backends ---------------------------------------------------


def test_counters_cannot_pass_the_integer_range_on_either_backend() -> None:
    tenant = make_tenant()
    day = dt.date(2024, 1, 1)
    first = TenantActivityQueries.record(tenant.id, day=day, events=2**31 - 1)
    assert first["event_count"] == 2**31 - 1
    refused("events", lambda: TenantActivityQueries.record(tenant.id, day=day, events=1))
    refused("new_members", lambda: TenantActivityQueries.record(
        tenant.id,
        day=day,
        events=0,
        new_members=2**31,
    ))
    rows = TenantActivityQueries.list_range(tenant.id, start=day, end=day)
    assert rows[0]["event_count"] == 2**31 - 1


# 7. booleans are booleans -------------------------------------------------------------------


def _bool_params() -> list[tuple[str, Callable[..., Any], str]]:
    found = []
    for name, fn in functions():
        hints = typing.get_type_hints(fn)
        for param in inspect.signature(fn).parameters:
            hint = hints.get(param)
            if hint is bool or (typing.get_origin(hint) in (typing.Union, __import__("types").UnionType)
                                and bool in typing.get_args(hint)):
                found.append((name, fn, param))
    return found


@pytest.mark.parametrize("bad", ["false", "true", 0, 1, "", [], 0.0], ids=repr)
def test_a_non_boolean_completed_filter_is_refused(bad: Any) -> None:
    user = make_user()
    refused("completed", lambda: TodoQueries.list_for_user(user.id, completed=bad))


def test_non_boolean_filters_are_refused() -> None:
    user = make_user()
    tenant = make_tenant(owner=user)
    add_member(make_tenant(), user)
    done = TodoQueries.create(user.id, {"title": "done"})
    TodoQueries.toggle_complete(done["id"], user.id)
    assert TodoQueries.list_for_user(user.id, completed=False)["items"] == []
    bool_params = _bool_params()
    assert ("TodoQueries.list_for_user", TodoQueries.list_for_user, "completed") in bool_params
    for name, fn, param in bool_params:
        params = inspect.signature(fn).parameters
        args = {p: user.id if p.endswith("user_id") else tenant.id if p == "tenant_id" else "x"
                for p, v in params.items() if v.default is inspect.Parameter.empty}
        with pytest.raises(ValidationError) as info:
            fn(**{**args, param: "false"})
        assert param in info.value.messages, (name, info.value.messages)


def test_a_refused_update_leaves_the_row_as_it_was() -> None:
    user = make_user(name="Unchanged")
    refused("name", lambda: UserQueries.update(user.id, {"name": "bad\x00"}))
    refused("name", lambda: UserQueries.update(user.id, {"name": "bad\ud800"}))
    assert User.get_by_id(user.id).name == "Unchanged"
