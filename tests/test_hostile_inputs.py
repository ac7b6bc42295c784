"""Whatever the input, a public function returns its documented result or raises a
``DataLayerError``; after an error, no row changed.

The functions are enumerated from ``datalayer.__all__`` (every ``XxxQueries``
namespace's public callables: nothing to keep up to date by hand). Each is called with
valid arguments drawn from a small seeded world, then with every hostile value in place of
each argument in turn — and, for the mapping arguments (``data``, ``event``), in place of
each key of the schema the function loads the mapping with (found by watching
``marshmallow.Schema.load``). Every call runs in a savepoint that is rolled back, so
each call sees the same world; after an error the whole database is compared with it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import inspect
import json
import math
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import marshmallow
import pytest
from factories import add_member, make_tenant, make_user
from test_schemas_common import valid_example

import datalayer
from datalayer import DataLayerError, db
from datalayer.connection.database import is_postgres
from datalayer.models import (
    ALL_MODELS,
    Account,
    AdminRole,
    AdminUser,
    Jwks,
    Session,
    Verification,
    Waitlist,
)

pytestmark = pytest.mark.usefixtures("txn")

UTC = dt.UTC
NOW = dt.datetime.now(UTC).replace(microsecond=0)


def _deep(levels: int) -> Any:
    value: Any = 0
    for _ in range(levels):
        value = {"k": [value]}
    return value


def _forged(raw: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# Every kind of hostile value, each once: (label, value).
HOSTILE: list[tuple[str, Any]] = [
    ("none", None),
    ("empty", ""),
    ("blank", "   "),
    ("surrogate", "a\ud800"),
    ("surrogate-only", "\udfff"),
    ("nul", "a\x00b"),
    ("huge-string", "x" * 200_000),
    ("huge-int", 2**64),
    ("huger-int", 10**5000),
    ("int4-overflow", 2**31),
    ("negative", -1),
    ("int8-min", -(2**63) - 1),
    ("zero", 0),
    ("nan", math.nan),
    ("inf", math.inf),
    ("-inf", -math.inf),
    ("float", 1.5),
    ("decimal", decimal.Decimal("1.5")),
    ("bool", True),
    ("bytes", b"\xff\x00"),
    ("list", ["a", "\x00"]),
    ("dict", {"a": "\ud800"}),
    ("object", object()),
    ("naive-datetime", dt.datetime(2024, 1, 1, 12, 0)),
    ("datetime-max", dt.datetime.max.replace(tzinfo=UTC)),
    ("datetime-min", dt.datetime.min.replace(tzinfo=UTC)),
    ("year-1-plus-1h", "0001-01-01T00:00:00+01:00"),
    ("date-max", dt.date.max),
    ("deep-json", _deep(10_000)),
    ("cursor-nul", _forged(json.dumps(["2024-01-01T00:00:00+00:00", "a\x00"]).encode())),
    ("cursor-surrogate", _forged(b'["2024-01-01T00:00:00+00:00","\\ud800"]')),
    ("cursor-range", _forged(json.dumps(["9999-12-31T23:59:59-01:00", "x"]).encode())),
    ("cursor-brackets", _forged(b"[" * 50_000)),
]


# --- the functions --------------------------------------------------------------------


def public_functions() -> dict[str, Callable[..., Any]]:
    found: dict[str, Callable[..., Any]] = {}
    for ns_name in datalayer.__all__:
        ns = getattr(datalayer, ns_name)
        if not (inspect.isclass(ns) and ns_name.endswith("Queries")):
            continue
        for attr in sorted(vars(ns)):
            if not attr.startswith("_") and callable(getattr(ns, attr)):
                found[f"{ns_name}.{attr}"] = getattr(ns, attr)
    return found


FUNCTIONS = public_functions()


def test_every_namespace_is_covered() -> None:
    namespaces = {n for n in datalayer.__all__ if n.endswith("Queries")}
    assert namespaces and {name.split(".")[0] for name in FUNCTIONS} == namespaces
    assert len(FUNCTIONS) >= 90


# --- a small world, and valid arguments drawn from it ---------------------------------


class World:
    """Rows every function can be pointed at; ``arg(function, parameter)`` picks one."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.owner = make_user(email=f"owner-{tag}@example.com")
        self.member = make_user(email=f"member-{tag}@example.com")
        self.outsider = make_user(email=f"outsider-{tag}@example.com")
        self.tenant = make_tenant(owner=self.owner)
        add_member(self.tenant, self.member, role="admin")
        self.todo = datalayer.TodoQueries.create(self.owner.id, {"title": "todo"})
        notification = datalayer.NotificationQueries.notify(
            self.owner.id,
            type="milestone",
            title="title",
            body="body",
        )
        self.notification_id = notification["id"]
        claimed = datalayer.DeliveryQueries.claim("worker-1", limit=1)
        self.delivery_id = claimed[0]["id"] if claimed else "no-delivery"
        self.session_token = f"session-{tag}"
        Session.create(user=self.owner, token=self.session_token,
                       expires_at=NOW + dt.timedelta(days=1))
        Account.create(user=self.owner, provider_id="github", account_id=f"gh-{tag}")
        Verification.create(identifier=f"verify-{tag}", value="code",
                            expires_at=NOW + dt.timedelta(days=1))
        Jwks.create(public_key="pub", private_key="priv")
        invite, self.invite_token = datalayer.TenantInviteQueries.create(
            self.tenant.id,
            self.owner.id,
            email=self.outsider.email,
        )
        self.invite_id = invite["id"]
        self.admin = AdminUser.create(email=f"admin-{tag}@example.com")
        self.role_key = "support"
        if not AdminRole.select().where(AdminRole.key == "support").exists():
            AdminRole.create(key="support", name="Support", permissions=["users:read"])
        Waitlist.create(email=f"wait-{tag}@example.com")
        self.waitlist_email = f"wait-{tag}@example.com"
        self.schemas: dict[str, marshmallow.Schema | None] = {}

    def specific(self) -> dict[str, Any]:
        """Values for one namespace's (or one function's) parameter."""
        return {
            "UserQueries.id": self.owner.id,
            "TodoQueries.id": self.todo["id"],
            "TenantQueries.id": self.tenant.id,
            "AdminUserQueries.id": self.admin.id,
            "UserQueries.set_admin_role.role": "support_rw",
            "SessionQueries.create.token": "a-new-session-token",
            "TenantInviteQueries.accept.token": self.invite_token,
            "TenantInviteQueries.accept.user_id": self.outsider.id,
            "TenantInviteQueries.find_by_token.token": self.invite_token,
            "TenantInviteQueries.create.email": "someone-new@example.com",
            "TenantMemberQueries.change_role.user_id": self.member.id,
            "TenantMemberQueries.remove.user_id": self.member.id,
            "TenantMemberQueries.leave.user_id": self.member.id,
            "DeliveryQueries.mark_sent_many.sent": [(self.delivery_id, "message-1")],
            "SubscriptionEventQueries.ingest.event": {
                "provider": "polar",
                "event_id": "evt_valid",
                "event_type": "subscription.updated",
                "occurred_at": NOW.isoformat(),
                "tenant_id": self.tenant.id,
                "payload": {"raw": True},
                "subscription": {
                    "polar_subscription_id": "sub_1", "status": "active", "plan_id": "pro",
                },
            },
        }

    def arg(self, function: str, name: str, param: inspect.Parameter) -> Any:
        """A valid value for ``name`` of ``function`` (the parameter's default if unsure)."""
        specific = self.specific()
        for key in (f"{function}.{name}", f"{function.split('.')[0]}.{name}"):
            if key in specific:
                return specific[key]
        by_name: dict[str, Any] = {
            "user_id": self.owner.id,
            "recipient_user_id": self.owner.id,
            "owner_user_id": self.owner.id,
            "actor_user_id": self.owner.id,
            "from_user_id": self.owner.id,
            "to_user_id": self.member.id,
            "invited_by": self.owner.id,
            "tenant_id": self.tenant.id,
            "admin_user_id": self.admin.id,
            "actor_admin_id": self.admin.id,
            "granted_by": self.admin.id,
            "revoked_by": self.admin.id,
            "notification_id": self.notification_id,
            "delivery_id": self.delivery_id,
            "invite_id": self.invite_id,
            "worker_id": "worker-1",
            "token": self.session_token,
            "email": self.owner.email,
            "id": self.owner.id,
            "role_key": self.role_key,
            "key": self.role_key,
            "permission": "users:read",
            "permissions": ["users:read"],
            "name": "Name",
            "type": "milestone",
            "title": "Title",
            "body": "Body",
            "reason": "because",
            "error": "boom",
            "identifier": "verify-x",
            "value": "code",
            "public_key": "pub",
            "private_key": "priv",
            "provider": "polar",
            "provider_id": "github",
            "account_id": "gh-1",
            "event_id": "evt_1",
            "action": "USER_VIEW",
            "target_type": "user",
            "status": "active",
            "role": "member",
            "expires_at": NOW + dt.timedelta(hours=1),
            "since": NOW - dt.timedelta(days=1),
            "until": NOW,
            "start": NOW.date() - dt.timedelta(days=7),
            "end": NOW.date(),
            "grace_seconds": 60,
        }
        if name in by_name:
            return by_name[name]
        if param.default is not inspect.Parameter.empty:
            return param.default
        return "x"

    def mapping(self, schema: marshmallow.Schema) -> dict[str, Any]:
        """A mapping ``schema`` loads: its required fields (nested ones too)."""
        return {n: self.example(f) for n, f in schema.load_fields.items() if f.required}

    def example(self, field: marshmallow.fields.Field) -> Any:
        if isinstance(field, marshmallow.fields.Nested):
            return self.mapping(field.schema)
        return valid_example(field)


@contextlib.contextmanager
def _watch_loads() -> Iterator[list[marshmallow.Schema]]:
    seen: list[marshmallow.Schema] = []
    original = marshmallow.Schema.load

    def load(self: marshmallow.Schema, *args: Any, **kwargs: Any) -> Any:
        seen.append(self)
        return original(self, *args, **kwargs)

    marshmallow.Schema.load = load  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        marshmallow.Schema.load = original  # type: ignore[method-assign]


# --- the whole database, to compare after an error -------------------------------------


def _snapshot_sql() -> str:
    """One statement: every table's row count and a checksum of its rows' contents."""
    parts = []
    existing = set(db.get_tables())
    for model in ALL_MODELS:
        table = model._meta.table_name
        if table not in existing:  # a model whose migration this database has not had
            continue
        if is_postgres():  # hashtext of each row's text: no big string to build
            parts.append(
                f"(SELECT count(*) || ':' || coalesce(sum(hashtext(\"t\"::text)), 0) "
                f'FROM "{table}" AS "t")'
            )
        else:
            row = " || ',' || ".join(f'quote("{c}")' for c in model._meta.columns)
            parts.append(
                f"(SELECT count(*) || ':' || coalesce(group_concat(r, '|'), '') FROM "
                f'(SELECT {row} AS r FROM "{table}" ORDER BY 1))'
            )
    return "SELECT " + " || '#' || ".join(parts)


def snapshot() -> str:
    return db.execute_sql(_snapshot_sql()).fetchone()[0]


# --- driving ------------------------------------------------------------------------------


def _json_ready(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


# Statements that cannot change a row: after an error, when the call sent nothing else,
# there is no need to compare the whole database (the comparison is the costly part).
_NO_WRITE = ("SELECT", "SAVEPOINT", "RELEASE", "ROLLBACK", "SHOW")


class Driver:
    def __init__(self, world: World) -> None:
        self.world = world
        self.before = snapshot()
        self.calls = 0
        self.failures: list[str] = []
        self.wrote = False

    def _hook(self, event: Any) -> None:
        if not event.sql.lstrip()[:9].upper().startswith(_NO_WRITE):
            self.wrote = True

    def call(self, label: str, fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        """Call ``fn`` in a savepoint rolled back afterwards; record what went wrong."""
        self.calls += 1
        self.wrote = False
        result: Any = None
        db.obj.query_hooks.append(self._hook)
        try:
            with db.atomic() as savepoint:
                result = self._call(label, fn, kwargs)
                savepoint.rollback()
        finally:
            db.obj.query_hooks.remove(self._hook)
        return result

    def _call(self, label: str, fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        try:
            result = fn(**kwargs)
        except DataLayerError:
            if self.wrote and snapshot() != self.before:
                self.failures.append(f"{label}: rows changed after an error")
            return None
        except BaseException as exc:  # noqa: BLE001 - the point of the test
            self.failures.append(f"{label}: {type(exc).__name__}: {str(exc)[:150]}")
            return None
        if not _json_ready(result):
            self.failures.append(f"{label}: not JSON-ready: {result!r:.150}")
        return result


def _drive(name: str) -> Driver:
    fn = FUNCTIONS[name]
    world = World()
    driver = Driver(world)
    params = inspect.signature(fn).parameters
    base = {p: world.arg(name, p, v) for p, v in params.items()}
    # The mapping arguments: the schema they are loaded with, and a valid mapping for it.
    mappings = [p for p, v in params.items() if "Mapping" in str(v.annotation)]
    schemas: dict[str, marshmallow.Schema] = {}
    for p in mappings:
        with _watch_loads() as seen:
            driver.call(f"{name}({p}={{}})", fn, {**base, p: {}})
        if seen:
            schemas[p] = seen[0]
            if not isinstance(base[p], Mapping):  # none given for this function: derive one
                base[p] = world.mapping(seen[0])
    driver.call(f"{name}(valid)", fn, base)
    for p in params:
        for label, value in HOSTILE:
            driver.call(f"{name}({p}={label})", fn, {**base, p: value})
    for p, schema in schemas.items():
        for key in schema.load_fields:
            for label, value in HOSTILE:
                driver.call(f"{name}({p}[{key!r}]={label})", fn, {**base, p: {**base[p], key: value}})
        driver.call(f"{name}({p}=unknown key)", fn, {**base, p: {**base[p], "no_such_key": 1}})
    return driver


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_hostile_arguments_get_a_result_or_a_datalayer_error(name: str) -> None:
    driver = _drive(name)
    assert driver.calls >= 1 + len(inspect.signature(FUNCTIONS[name]).parameters) * len(HOSTILE)
    assert not driver.failures, "\n".join(driver.failures[:40])


def test_the_snapshot_sees_a_change() -> None:
    before = snapshot()
    with db.atomic() as savepoint:
        make_user()
        assert snapshot() != before
        savepoint.rollback()
    user = make_user()
    before = snapshot()
    with db.atomic() as savepoint:
        user.name = "Changed"
        user.save()
        assert snapshot() != before
        savepoint.rollback()
    assert snapshot() == before


def test_the_driver_catches_what_it_is_meant_to_catch() -> None:
    driver = Driver(World())

    def leaves_a_row() -> None:
        make_user()
        raise datalayer.ValidationError("refused, but after a write")

    driver.call("leaves_a_row", leaves_a_row, {})
    driver.call("raw", lambda: 1 / 0, {})
    driver.call("not_json", lambda: {"when": dt.datetime.now(UTC)}, {})
    driver.call("fine", lambda: {"ok": [1, "a", None]}, {})
    assert driver.failures == [
        "leaves_a_row: rows changed after an error",
        "raw: ZeroDivisionError: division by zero",
        f"not_json: not JSON-ready: {driver.failures[2].split('JSON-ready: ', 1)[1]}",
    ]
