"""The original application's writers keep working on a database `datalayer migrate` made.

Replays the INSERTs (and the few UPDATEs) the original TypeScript application issues, as
``../shared/spec/original-schema.md`` describes them: the ids it generates (Better
Auth's 32-character ids, ``crypto.randomUUID()``), the columns it leaves to the
database (``waitlist.id``, ``user_activity_daily.id``, every ``created_at``...), its
values (timestamps as ``toISOString()`` text, JSON as text, the catalogue's notification
types and the dashboard's ``test``). Every table whose columns we did not change on
purpose is written; the exceptions, by design:

- ``tenant_invites``: the plaintext ``token`` became ``token_hash`` (``datalayer adopt``
  converts the rows);
- ``admin_roles`` (``text[]`` -> JSON array), ``admin_user_roles``, ``admin_sessions`` and
  ``admin_audit_log``: the original application never writes them.

Two forms on PostgreSQL: the columns given (as written by hand or by Better Auth's
adapter) and Drizzle's, which names every column of its table and sends ``DEFAULT`` for
those it omits. SQLite has no ``DEFAULT`` in ``VALUES``: the columns-given form only.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from helpers import IS_PG, scratch_database
from original_schema import auth_id, uuid4

from datalayer import (
    AdminFlagQueries,
    AdminNoteQueries,
    ImpersonationQueries,
    NotificationQueries,
    PreferenceQueries,
    SubscriptionQueries,
    TodoQueries,
    UserActivityQueries,
    UserQueries,
    WaitlistQueries,
    db,
    init_db,
)

ALICE, BOB, ADMIN = auth_id("alice"), auth_id("bob"), uuid4("dave")  # dave: portal-made
FAMILY = uuid4("family")
NOTE = uuid4("notification")
SCRYPT = "0123456789abcdef0123456789abcdef:" + "ab" * 64


def iso(text: str, *, tz: bool = True) -> str:
    """A JS ``toISOString()`` as sent: ms precision; ``timestamp`` columns drop the Z."""
    return text + ("Z" if tz else "")


@dataclass
class Write:
    """One statement of the original: the columns it sets and those it leaves to the
    database (which Drizzle sends as DEFAULT)."""

    table: str
    values: dict[str, Any]
    omitted: tuple[str, ...] = ()
    suffix: str = ""  # e.g. ON CONFLICT ... DO UPDATE
    drizzle: bool = True  # written through Drizzle (False: Better Auth's adapter)
    notes: list[str] = field(default_factory=list)


WRITES: list[Write] = [
    # Better Auth: sign-up (user + credential account), a session, a reset verification,
    # a JWKS key. It names createdAt/updatedAt itself and leaves the product's columns.
    Write("user", {"id": ALICE, "name": "Alice", "email": "alice@example.com",
                   "email_verified": False, "image": None,
                   "created_at": iso("2026-02-01T10:00:00.000", tz=False),
                   "updated_at": iso("2026-02-01T10:00:00.000", tz=False)},
          ("active_tenant_id", "analytics_consent", "first_seen_at", "last_active_at",
           "lifecycle_stage", "churn_risk_score", "is_power_user", "preferred_language",
           "admin_role"), drizzle=False),
    Write("user", {"id": BOB, "name": "Bob", "email": "bob@example.com",
                   "email_verified": True, "image": "https://example.com/bob.png",
                   "created_at": iso("2026-02-01T11:00:00.000", tz=False),
                   "updated_at": iso("2026-02-01T11:00:00.000", tz=False)},
          ("active_tenant_id", "analytics_consent", "first_seen_at", "last_active_at",
           "lifecycle_stage", "churn_risk_score", "is_power_user", "preferred_language",
           "admin_role"), drizzle=False),
    # The admin portal creates users with randomUUID ids and an admin_role.
    Write("user", {"id": ADMIN, "name": "Dave", "email": "dave@example.com",
                   "email_verified": True, "admin_role": "super_admin",
                   "created_at": iso("2026-01-15T09:00:00.000", tz=False),
                   "updated_at": iso("2026-01-15T09:00:00.000", tz=False)},
          ("image", "active_tenant_id", "analytics_consent", "first_seen_at",
           "last_active_at", "lifecycle_stage", "churn_risk_score", "is_power_user",
           "preferred_language")),
    Write("account", {"id": auth_id("account alice"), "account_id": ALICE,
                      "provider_id": "credential", "user_id": ALICE, "password": SCRYPT,
                      "created_at": iso("2026-02-01T10:00:00.000", tz=False),
                      "updated_at": iso("2026-02-01T10:00:00.000", tz=False)},
          ("access_token", "refresh_token", "id_token", "access_token_expires_at",
           "refresh_token_expires_at", "scope"), drizzle=False),
    Write("session", {"id": auth_id("session alice"),
                      "expires_at": iso("2030-02-08T10:00:00.000", tz=False),
                      "token": auth_id("session token alice"),
                      "created_at": iso("2026-02-01T10:00:00.000", tz=False),
                      "updated_at": iso("2026-02-01T10:00:00.000", tz=False),
                      "ip_address": "203.0.113.7", "user_agent": "Mozilla/5.0",
                      "user_id": ALICE}, drizzle=False),
    Write("verification", {"id": auth_id("verification"),
                           "identifier": "reset-password:" + "x" * 24, "value": ALICE,
                           "expires_at": iso("2030-02-01T11:00:00.000", tz=False),
                           "created_at": iso("2026-02-01T10:00:00.000", tz=False),
                           "updated_at": iso("2026-02-01T10:00:00.000", tz=False)},
          drizzle=False),
    Write("verification", {"id": uuid4("admin invite"),
                           "identifier": "admin-invite:carol@example.com", "value": "f" * 64,
                           "expires_at": iso("2030-02-08T10:00:00.000", tz=False)},
          ("created_at", "updated_at")),
    Write("jwks", {"id": auth_id("jwks"), "public_key": json.dumps({"kty": "OKP", "x": "k"}),
                   "private_key": json.dumps("encrypted-jwk"),
                   "created_at": iso("2026-02-01T10:00:00.000", tz=False),
                   "expires_at": iso("2030-03-03T10:00:00.000", tz=False)}, drizzle=False),
    # Tenancy: a family with its owner; activity counted per request (an upsert).
    Write("tenants", {"id": FAMILY, "name": "Alice's family", "type": "family"},
          ("created_at", "updated_at")),
    Write("tenant_members", {"id": uuid4("owner"), "tenant_id": FAMILY, "user_id": ALICE,
                             "role": "owner"}, ("member_role", "joined_at", "updated_at")),
    Write("tenant_members", {"id": uuid4("member"), "tenant_id": FAMILY, "user_id": BOB,
                             "role": "member"}, ("member_role", "joined_at", "updated_at")),
    *[Write("tenant_activity_daily",
            {"id": uuid4(f"activity {n}"), "tenant_id": FAMILY, "date": "2026-02-01",
             "event_count": 1},
            ("active_users", "new_members", "created_at", "updated_at"),
            suffix=' ON CONFLICT ("tenant_id", "date") DO UPDATE SET "event_count" = '
                   '"tenant_activity_daily"."event_count" + 1') for n in range(2)],
    # Notifications: one of the catalogue with its single logged delivery, the
    # dashboard's test notification (no tenant, no delivery), preferences, a push target.
    Write("notifications", {"id": NOTE, "tenant_id": FAMILY, "recipient_user_id": BOB,
                            "actor_user_id": ALICE, "type": "member_invited",
                            "title": "Welcome", "body": "Alice added you.",
                            "deep_link": "app://family", "data": json.dumps({"x": 1}),
                            "batch_key": f"{ALICE}_member_invited_29493600"},
          ("created_at", "read_at", "archived_at")),
    Write("notifications", {"id": uuid4("test notification"), "tenant_id": None,
                            "recipient_user_id": ALICE, "actor_user_id": None,
                            "type": "test", "title": "Test", "body": "From the dashboard",
                            "deep_link": None, "data": None, "batch_key": None},
          ("created_at", "read_at", "archived_at")),
    Write("notification_deliveries", {"id": uuid4("delivery"), "notification_id": NOTE,
                                      "channel": "in_app", "status": "skipped",
                                      "provider_message_id": None,
                                      "error": "User opted out"}, ("created_at",)),
    Write("notification_preferences", {"id": uuid4("prefs global"), "user_id": BOB,
                                       "tenant_id": None, "in_app_enabled": True,
                                       "push_enabled": True, "email_enabled": False,
                                       "marketing_email_enabled": False},
          ("created_at", "updated_at")),
    Write("notification_preferences", {"id": uuid4("prefs family"), "user_id": BOB,
                                       "tenant_id": FAMILY, "in_app_enabled": False,
                                       "push_enabled": True, "email_enabled": True,
                                       "marketing_email_enabled": False},
          ("created_at", "updated_at")),
    Write("notification_targets", {"id": uuid4("target"), "user_id": BOB,
                                   "novu_subscriber_id": BOB,
                                   "expo_push_token": "ExponentPushToken[abc]",
                                   "last_active_at": iso("2026-02-01T12:00:00.000", tz=False)},
          ("created_at", "updated_at")),
    # Billing: the subscription a webhook made, and the idempotency log row.
    Write("subscriptions", {"id": uuid4("subscription"), "tenant_id": FAMILY,
                            "purchased_by_user_id": ALICE, "status": "active",
                            "plan_id": "prod_family", "plan_name": "Family",
                            "current_period_start": iso("2026-02-01T00:00:00.000", tz=False),
                            "current_period_end": iso("2026-03-01T00:00:00.000", tz=False),
                            "cancel_at_period_end": False, "provider": "polar",
                            "polar_subscription_id": "sub_1", "polar_customer_id": "cus_1"},
          ("trial_start", "trial_end", "revenuecat_app_user_id",
           "revenuecat_original_transaction_id", "created_at", "updated_at")),
    Write("subscription_events", {"id": uuid4("event"), "event_id": "evt_1",
                                  "provider": "polar", "event_type": "subscription.created",
                                  "payload": json.dumps({"type": "subscription.created"})},
          ("processed_at",)),
    Write("subscription_events", {"id": uuid4("event rc"), "event_id": "rc_1767225600000",
                                  "provider": "revenuecat", "event_type": "INITIAL_PURCHASE",
                                  "payload": json.dumps({"event": {}})}, ("processed_at",)),
    # Features: a todo in the active tenant, daily activity (id and features_used left to
    # the database), the waitlist (id left to the database).
    Write("todos", {"id": uuid4("todo"), "user_id": ALICE, "tenant_id": FAMILY,
                    "title": "Buy milk", "description": None, "completed": False,
                    "due_date": iso("2026-02-03T00:00:00.000", tz=False)},
          ("created_at", "updated_at")),
    *[Write("user_activity_daily", {"user_id": ALICE, "date": "2026-02-01", "event_count": 1},
            ("id", "session_count", "active_minutes", "features_used", "created_at",
             "updated_at"),
            suffix=' ON CONFLICT ("user_id", "date") DO UPDATE SET "event_count" = '
                   '"user_activity_daily"."event_count" + 1') for _ in range(3)],
    Write("waitlist", {"email": "early@example.com"}, ("id", "created_at")),
    # The admin portal, acting as Dave (whose admin_users row shares his user id).
    Write("admin_users", {"id": ADMIN, "email": "dave@example.com"},
          ("name", "password_hash", "company", "status", "avatar_url", "created_at",
           "updated_at", "last_login_at", "invited_by")),
    Write("admin_impersonation_sessions",
          {"id": uuid4("impersonation"), "admin_user_id": ADMIN, "target_user_id": BOB,
           "target_tenant_id": FAMILY, "scope": "read_only", "reason": "Ticket 42",
           "expires_at": iso("2030-02-01T11:00:00.000"),
           "metadata": json.dumps({"ticketId": "42", "approvedBy": None,
                                   "actionsPerformed": []})},
          ("started_at", "ended_at", "end_reason")),
    Write("admin_user_notes", {"id": uuid4("user note"), "user_id": BOB,
                               "admin_user_id": ADMIN, "note": "Called about billing."},
          ("created_at", "updated_at")),
    Write("admin_tenant_notes", {"id": uuid4("tenant note"), "tenant_id": FAMILY,
                                 "admin_user_id": ADMIN, "note": "Renewal in March."},
          ("created_at", "updated_at")),
    Write("admin_flags", {"id": uuid4("flag"), "target_type": "user", "target_id": BOB,
                          "flag_type": "vip", "custom_label": None, "reason": "Early adopter",
                          "created_by": ADMIN, "expires_at": None}, ("created_at",)),
    Write("admin_flags", {"id": uuid4("custom flag"), "target_type": "tenant",
                          "target_id": FAMILY, "flag_type": "custom",
                          "custom_label": "Press", "reason": "Featured",
                          "created_by": ADMIN, "expires_at": iso("2030-01-01T00:00:00.000")},
          ("created_at",)),
]

# What the original updates afterwards: a notification read, an impersonation ended.
UPDATES = [
    ("UPDATE \"notifications\" SET \"read_at\" = {p} WHERE \"id\" = {p}",
     (iso("2026-02-01T12:00:00.000", tz=False), NOTE)),
    ("UPDATE \"admin_impersonation_sessions\" SET \"ended_at\" = {p}, \"end_reason\" = "
     "'manual' WHERE \"id\" = {p}", (iso("2026-02-01T10:30:00.000"), uuid4("impersonation"))),
]
# Rows the original deletes outright (notes are hard-deleted).
DELETES = [("DELETE FROM \"admin_user_notes\" WHERE \"id\" = {p}", (uuid4("user note"),))]

REPLAYED = {w.table for w in WRITES}
NOT_REPLAYED = {"tenant_invites", "admin_roles", "admin_user_roles", "admin_sessions",
                "admin_audit_log"}


def render(write: Write, *, drizzle_form: bool, param: str) -> tuple[str, list[Any]]:
    """The statement as the original sends it: DEFAULT for omitted columns in Drizzle's."""
    columns = list(write.values)
    marks = [param] * len(columns)
    if drizzle_form and write.drizzle:
        columns += list(write.omitted)
        marks += ["DEFAULT"] * len(write.omitted)
    names = ", ".join(f'"{c}"' for c in columns)
    sql = f'INSERT INTO "{write.table}" ({names}) VALUES ({", ".join(marks)}){write.suffix}'
    return sql, list(write.values.values())


@contextmanager
def raw_connection(url: str) -> Iterator[tuple[Any, str]]:
    """A connection of the original's own (not the library's), autocommitting."""
    if IS_PG:
        conn = psycopg2.connect(url)
        conn.autocommit = True
        try:
            yield conn.cursor(), "%s"
        finally:
            conn.close()
    else:
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("PRAGMA foreign_keys = ON")
        try:
            yield conn.cursor(), "?"
        finally:
            conn.close()


@pytest.fixture
def migrated(tmp_path: Path) -> Iterator[str]:
    """A database made the way users make it: `datalayer migrate`."""
    with scratch_database(tmp_path) as url:
        subprocess.run([sys.executable, "-m", "datalayer.cli", "migrate", "--database", url],
                       check=True, capture_output=True, timeout=300)
        yield url
        db.close()


def test_every_table_is_replayed_or_excluded_on_purpose() -> None:
    from datalayer.models import ALL_MODELS

    tables = {m._meta.table_name for m in ALL_MODELS}
    assert len(tables) == 27
    assert tables == REPLAYED | NOT_REPLAYED and not REPLAYED & NOT_REPLAYED


FORMS = ["columns", "drizzle"] if IS_PG else ["columns"]


@pytest.mark.parametrize("form", FORMS)
def test_the_originals_writes_succeed_and_the_library_reads_them(migrated: str,
                                                                 form: str) -> None:
    with raw_connection(migrated) as (cur, param):
        for write in WRITES:
            sql, values = render(write, drizzle_form=form == "drizzle", param=param)
            try:
                cur.execute(sql, values)
            except Exception as exc:  # name the statement that failed
                pytest.fail(f"{write.table}: {exc}\n{sql}")
        for sql, values in UPDATES + DELETES:
            cur.execute(sql.format(p=param), values)
        cur.execute('SELECT id, event_count, features_used FROM "user_activity_daily"')
        ((activity_id, events, features),) = cur.fetchall()
        cur.execute('SELECT id FROM "waitlist"')
        ((waitlist_id,),) = cur.fetchall()
        cur.execute('SELECT event_count FROM "tenant_activity_daily"')
        assert cur.fetchall() == [(2,)]
        cur.execute('SELECT outcome FROM "subscription_events" ORDER BY event_id')
        assert cur.fetchall() == [("applied",), ("applied",)]
    # The ids the original leaves to the database: random UUIDs, as text.
    for generated in (activity_id, waitlist_id):
        assert len(generated) == 36 and generated[14] == "4" and generated.count("-") == 4
    assert activity_id != waitlist_id
    assert events == 3 and (features if isinstance(features, list) else json.loads(features)) == []

    # The library reads what the original wrote, and goes on from there.
    init_db(migrated)
    assert UserQueries.find_by_email("ALICE@example.com")["id"] == ALICE
    inbox = NotificationQueries.inbox(ALICE)["items"]
    assert [n["type"] for n in inbox] == ["test"]
    bob_inbox = NotificationQueries.inbox(BOB, tenant_id=FAMILY)["items"]
    assert bob_inbox[0]["read_at"] is not None and bob_inbox[0]["data"] == {"x": 1}
    assert PreferenceQueries.resolve(BOB, tenant_id=FAMILY)["source"] == "tenant"
    assert SubscriptionQueries.current_for_tenant(FAMILY)["plan_id"] == "prod_family"
    assert [t["title"] for t in TodoQueries.list_for_user(ALICE, tenant_id=FAMILY)["items"]] == [
        "Buy milk"]
    day = UserActivityQueries.record(ALICE, day="2026-02-01", features=("todos",))
    assert day["event_count"] == 4 and day["features_used"] == ["todos"]
    assert WaitlistQueries.find_by_email("early@example.com")["id"] == waitlist_id
    assert ImpersonationQueries.active_for(ADMIN) is None  # ended by the original
    assert {f["flag_type"] for f in AdminFlagQueries.list_for("user", BOB)} == {"vip"}
    assert AdminNoteQueries.list_for("user", BOB)["items"] == []  # hard-deleted
    assert [n["note"] for n in AdminNoteQueries.list_for("tenant", FAMILY)["items"]] == [
        "Renewal in March."]
