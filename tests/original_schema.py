"""The original TypeScript package's database, written for the tests from the fact sheet.

``../shared/spec/original-schema.md`` describes what its two Drizzle migrations create
(27 tables, 231 columns) and how its application writes values; the DDL below is
written from those facts (never fetched). ``build(url, full=...)`` creates the schema
and Drizzle's bookkeeping rows, fully migrated or with only the first migration;
``fill(url)`` writes rows the way the original application writes them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg2

HASH_0000 = "9b65cbd4ac5b2531bcd6eeaca75d7617a7c26fe0d41cbb46c1a87d97f6cbab34"
HASH_0001 = "bd726e88e6aae17c8c696b66b33c5e8bbb67fea6383f30c6e68b116585b3f58a"
WHEN_0000, WHEN_0001 = 1770352645547, 1770352700000

TS, TSTZ = "timestamp", "timestamp with time zone"
STAMPS = f'"created_at" {TS} DEFAULT now() NOT NULL, "updated_at" {TS} DEFAULT now() NOT NULL'
STAMPS_TZ = f'"created_at" {TSTZ} DEFAULT now() NOT NULL, "updated_at" {TSTZ} DEFAULT now() NOT NULL'

TABLES_0000 = {
    "user": f'''"id" text PRIMARY KEY NOT NULL, "name" text NOT NULL, "email" text NOT NULL,
        "email_verified" boolean DEFAULT false NOT NULL, "image" text, "active_tenant_id" text,
        {STAMPS}, "analytics_consent" text DEFAULT 'anonymous' NOT NULL,
        "first_seen_at" {TSTZ}, "last_active_at" {TSTZ},
        "lifecycle_stage" text DEFAULT 'new' NOT NULL, "churn_risk_score" integer DEFAULT 0,
        "is_power_user" boolean DEFAULT false, "is_admin" boolean DEFAULT false,
        "preferred_language" text DEFAULT 'en',
        CONSTRAINT "user_email_unique" UNIQUE("email")''',
    "session": f'''"id" text PRIMARY KEY NOT NULL, "expires_at" {TS} NOT NULL,
        "token" text NOT NULL, "created_at" {TS} DEFAULT now() NOT NULL,
        "updated_at" {TS} NOT NULL, "ip_address" text, "user_agent" text,
        "user_id" text NOT NULL, CONSTRAINT "session_token_unique" UNIQUE("token")''',
    "account": f'''"id" text PRIMARY KEY NOT NULL, "account_id" text NOT NULL,
        "provider_id" text NOT NULL, "user_id" text NOT NULL, "access_token" text,
        "refresh_token" text, "id_token" text, "access_token_expires_at" {TS},
        "refresh_token_expires_at" {TS}, "scope" text, "password" text,
        "created_at" {TS} DEFAULT now() NOT NULL, "updated_at" {TS} NOT NULL''',
    "verification": f'''"id" text PRIMARY KEY NOT NULL, "identifier" text NOT NULL,
        "value" text NOT NULL, "expires_at" {TS} NOT NULL, {STAMPS}''',
    "jwks": f'''"id" text PRIMARY KEY NOT NULL, "public_key" text NOT NULL,
        "private_key" text NOT NULL, "created_at" {TS} DEFAULT now() NOT NULL,
        "expires_at" {TS}''',
    "tenants": f'''"id" text PRIMARY KEY NOT NULL, "name" text NOT NULL,
        "type" text DEFAULT 'group' NOT NULL, {STAMPS}''',
    "tenant_members": f'''"id" text PRIMARY KEY NOT NULL, "tenant_id" text NOT NULL,
        "user_id" text NOT NULL, "role" text DEFAULT 'member' NOT NULL,
        "member_role" text DEFAULT 'contributor', "joined_at" {TS} DEFAULT now() NOT NULL,
        "updated_at" {TS} DEFAULT now() NOT NULL''',
    "tenant_invites": f'''"id" text PRIMARY KEY NOT NULL, "tenant_id" text NOT NULL,
        "invited_by" text NOT NULL, "email" text NOT NULL, "token" text NOT NULL,
        "status" text DEFAULT 'pending' NOT NULL, "expires_at" {TS} NOT NULL, {STAMPS},
        CONSTRAINT "tenant_invites_token_unique" UNIQUE("token")''',
    "tenant_activity_daily": f'''"id" text PRIMARY KEY NOT NULL, "tenant_id" text NOT NULL,
        "date" date NOT NULL, "active_users" integer DEFAULT 0 NOT NULL,
        "event_count" integer DEFAULT 0 NOT NULL, "new_members" integer DEFAULT 0 NOT NULL,
        {STAMPS_TZ}''',
    "notifications": f'''"id" text PRIMARY KEY NOT NULL, "tenant_id" text,
        "recipient_user_id" text NOT NULL, "actor_user_id" text, "type" text NOT NULL,
        "title" text NOT NULL, "body" text NOT NULL, "deep_link" text, "data" json,
        "batch_key" text, "created_at" {TS} DEFAULT now() NOT NULL, "read_at" {TS},
        "archived_at" {TS}''',
    "notification_deliveries": f'''"id" text PRIMARY KEY NOT NULL,
        "notification_id" text NOT NULL, "channel" text NOT NULL, "status" text NOT NULL,
        "provider_message_id" text, "error" text, "created_at" {TS} DEFAULT now() NOT NULL''',
    "notification_preferences": f'''"id" text PRIMARY KEY NOT NULL, "user_id" text NOT NULL,
        "tenant_id" text, "in_app_enabled" boolean DEFAULT true NOT NULL,
        "push_enabled" boolean DEFAULT false NOT NULL,
        "email_enabled" boolean DEFAULT true NOT NULL,
        "marketing_email_enabled" boolean DEFAULT false NOT NULL, {STAMPS}''',
    "notification_targets": f'''"id" text PRIMARY KEY NOT NULL, "user_id" text NOT NULL,
        "novu_subscriber_id" text, "expo_push_token" text, "last_active_at" {TS}, {STAMPS}''',
    "subscriptions": f'''"id" text PRIMARY KEY NOT NULL, "tenant_id" text NOT NULL,
        "purchased_by_user_id" text, "status" text DEFAULT 'active' NOT NULL,
        "plan_id" text NOT NULL, "plan_name" text, "current_period_start" {TS},
        "current_period_end" {TS}, "cancel_at_period_end" boolean DEFAULT false,
        "trial_start" {TS}, "trial_end" {TS}, "provider" text NOT NULL,
        "polar_subscription_id" text, "polar_customer_id" text,
        "revenuecat_app_user_id" text, "revenuecat_original_transaction_id" text, {STAMPS}''',
    "subscription_events": f'''"id" text PRIMARY KEY NOT NULL, "event_id" text NOT NULL,
        "provider" text NOT NULL, "event_type" text NOT NULL, "payload" jsonb,
        "processed_at" {TS} DEFAULT now() NOT NULL,
        CONSTRAINT "subscription_events_event_id_unique" UNIQUE("event_id")''',
    "admin_users": f'''"id" text PRIMARY KEY NOT NULL, "email" text NOT NULL, "name" text,
        "password_hash" text, "company" text DEFAULT 'Dogfoo' NOT NULL,
        "status" text DEFAULT 'pending' NOT NULL, "avatar_url" text, {STAMPS_TZ},
        "last_login_at" {TSTZ}, "invited_by" text,
        CONSTRAINT "admin_users_email_unique" UNIQUE("email")''',
    "admin_roles": f'''"key" text PRIMARY KEY NOT NULL, "name" text NOT NULL,
        "description" text, "permissions" text[] DEFAULT '{{}}' NOT NULL,
        "created_at" {TSTZ} DEFAULT now() NOT NULL''',
    "admin_user_roles": f'''"admin_user_id" text NOT NULL, "role_key" text NOT NULL,
        "granted_by" text, "granted_at" {TSTZ} DEFAULT now() NOT NULL,
        CONSTRAINT "admin_user_roles_admin_user_id_role_key_pk"
            PRIMARY KEY("admin_user_id","role_key")''',
    "admin_sessions": f'''"id" text PRIMARY KEY NOT NULL, "admin_user_id" text NOT NULL,
        "token" text NOT NULL, "expires_at" {TSTZ} NOT NULL, {STAMPS_TZ},
        "ip_address" text, "user_agent" text, "step_up_verified_at" {TSTZ},
        "step_up_expires_at" {TSTZ}, CONSTRAINT "admin_sessions_token_unique" UNIQUE("token")''',
    "admin_audit_log": f'''"id" text PRIMARY KEY NOT NULL, "admin_user_id" text NOT NULL,
        "action" text NOT NULL, "target_type" text NOT NULL, "target_id" text,
        "reason" text, "metadata" jsonb, "created_at" {TSTZ} DEFAULT now() NOT NULL,
        "ip" text, "user_agent" text, "impersonation_session_id" text''',
    "admin_impersonation_sessions": f'''"id" text PRIMARY KEY NOT NULL,
        "admin_user_id" text NOT NULL, "target_user_id" text NOT NULL,
        "target_tenant_id" text, "scope" text DEFAULT 'read_only' NOT NULL,
        "reason" text NOT NULL, "started_at" {TSTZ} DEFAULT now() NOT NULL,
        "expires_at" {TSTZ} NOT NULL, "ended_at" {TSTZ}, "end_reason" text,
        "metadata" jsonb''',
    "admin_user_notes": f'''"id" text PRIMARY KEY NOT NULL, "user_id" text NOT NULL,
        "admin_user_id" text NOT NULL, "note" text NOT NULL, {STAMPS_TZ}''',
    "admin_tenant_notes": f'''"id" text PRIMARY KEY NOT NULL, "tenant_id" text NOT NULL,
        "admin_user_id" text NOT NULL, "note" text NOT NULL, {STAMPS_TZ}''',
    "admin_flags": f'''"id" text PRIMARY KEY NOT NULL, "target_type" text NOT NULL,
        "target_id" text NOT NULL, "flag_type" text NOT NULL, "custom_label" text,
        "reason" text NOT NULL, "created_by" text NOT NULL,
        "created_at" {TSTZ} DEFAULT now() NOT NULL, "expires_at" {TSTZ},
        CONSTRAINT "admin_flags_unique" UNIQUE("target_type","target_id","flag_type")''',
    "todos": f'''"id" text PRIMARY KEY NOT NULL, "user_id" text NOT NULL, "tenant_id" text,
        "title" text NOT NULL, "description" text, "completed" boolean DEFAULT false NOT NULL,
        "due_date" {TS}, {STAMPS}''',
    "user_activity_daily": f'''"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
        "user_id" text NOT NULL, "date" date NOT NULL,
        "event_count" integer DEFAULT 0 NOT NULL, "session_count" integer DEFAULT 0 NOT NULL,
        "active_minutes" integer DEFAULT 0 NOT NULL, "features_used" text[] DEFAULT '{{}}',
        {STAMPS_TZ}''',
    "waitlist": f'''"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
        "email" varchar(255) NOT NULL, "created_at" {TS} DEFAULT now() NOT NULL,
        CONSTRAINT "waitlist_email_unique" UNIQUE("email")''',
}

# (table, column, referenced table, referenced column, on delete)
FOREIGN_KEYS = [
    ("session", "user_id", "user", "id", "cascade"),
    ("account", "user_id", "user", "id", "cascade"),
    ("tenant_members", "tenant_id", "tenants", "id", "cascade"),
    ("tenant_members", "user_id", "user", "id", "cascade"),
    ("tenant_invites", "tenant_id", "tenants", "id", "cascade"),
    ("tenant_invites", "invited_by", "user", "id", "cascade"),
    ("tenant_activity_daily", "tenant_id", "tenants", "id", "cascade"),
    ("notifications", "tenant_id", "tenants", "id", "cascade"),
    ("notifications", "recipient_user_id", "user", "id", "cascade"),
    ("notifications", "actor_user_id", "user", "id", "set null"),
    ("notification_deliveries", "notification_id", "notifications", "id", "cascade"),
    ("notification_preferences", "user_id", "user", "id", "cascade"),
    ("notification_preferences", "tenant_id", "tenants", "id", "cascade"),
    ("notification_targets", "user_id", "user", "id", "cascade"),
    ("subscriptions", "tenant_id", "tenants", "id", "cascade"),
    ("subscriptions", "purchased_by_user_id", "user", "id", "set null"),
    ("admin_user_roles", "admin_user_id", "admin_users", "id", "cascade"),
    ("admin_user_roles", "role_key", "admin_roles", "key", "cascade"),
    ("admin_user_roles", "granted_by", "admin_users", "id", "no action"),
    ("admin_sessions", "admin_user_id", "admin_users", "id", "cascade"),
    ("admin_audit_log", "admin_user_id", "admin_users", "id", "no action"),
    ("admin_impersonation_sessions", "admin_user_id", "admin_users", "id", "no action"),
    ("admin_impersonation_sessions", "target_user_id", "user", "id", "no action"),
    ("admin_impersonation_sessions", "target_tenant_id", "tenants", "id", "no action"),
    ("admin_user_notes", "user_id", "user", "id", "cascade"),
    ("admin_user_notes", "admin_user_id", "admin_users", "id", "no action"),
    ("admin_tenant_notes", "tenant_id", "tenants", "id", "cascade"),
    ("admin_tenant_notes", "admin_user_id", "admin_users", "id", "no action"),
    ("admin_flags", "created_by", "admin_users", "id", "no action"),
    ("todos", "user_id", "user", "id", "cascade"),
    ("todos", "tenant_id", "tenants", "id", "cascade"),
    ("user_activity_daily", "user_id", "user", "id", "cascade"),
]

# name -> (table, columns, unique)
INDEXES = {
    "session_userId_idx": ("session", "user_id", False),
    "account_userId_idx": ("account", "user_id", False),
    "verification_identifier_idx": ("verification", "identifier", False),
    "tenant_members_tenant_id_idx": ("tenant_members", "tenant_id", False),
    "tenant_members_user_id_idx": ("tenant_members", "user_id", False),
    "tenant_members_tenant_user_idx": ("tenant_members", "tenant_id, user_id", False),
    "tenant_invites_email_idx": ("tenant_invites", "email", False),
    "tenant_invites_token_idx": ("tenant_invites", "token", False),
    "tenant_invites_tenant_id_idx": ("tenant_invites", "tenant_id", False),
    "tenant_invites_tenant_email_unique_idx": ("tenant_invites", "tenant_id, email", False),
    "tenant_activity_tenant_date_idx": ("tenant_activity_daily", "tenant_id, date", True),
    "notifications_inbox_idx": (
        "notifications", "tenant_id, recipient_user_id, created_at", False),
    "notifications_unread_idx": ("notifications", "recipient_user_id, read_at", False),
    "notifications_batch_key_idx": ("notifications", "batch_key", False),
    "notification_deliveries_notification_id_idx": (
        "notification_deliveries", "notification_id", False),
    "notification_preferences_user_id_idx": ("notification_preferences", "user_id", False),
    "notification_preferences_tenant_id_idx": ("notification_preferences", "tenant_id", False),
    "notification_targets_user_id_idx": ("notification_targets", "user_id", False),
    "notification_targets_novu_subscriber_id_idx": (
        "notification_targets", "novu_subscriber_id", False),
    "subscriptions_tenant_idx": ("subscriptions", "tenant_id", False),
    "subscriptions_polar_sub_idx": ("subscriptions", "polar_subscription_id", False),
    "subscriptions_rc_user_idx": ("subscriptions", "revenuecat_app_user_id", False),
    "subscriptions_status_idx": ("subscriptions", "tenant_id, status", False),
    "subscription_events_event_id_idx": ("subscription_events", "event_id", False),
    "admin_users_email_idx": ("admin_users", "email", False),
    "admin_users_status_idx": ("admin_users", "status", False),
    "admin_user_roles_user_idx": ("admin_user_roles", "admin_user_id", False),
    "admin_sessions_user_idx": ("admin_sessions", "admin_user_id", False),
    "admin_sessions_token_idx": ("admin_sessions", "token", False),
    "admin_sessions_expires_idx": ("admin_sessions", "expires_at", False),
    "admin_audit_log_admin_user_idx": ("admin_audit_log", "admin_user_id", False),
    "admin_audit_log_action_idx": ("admin_audit_log", "action", False),
    "admin_audit_log_target_idx": ("admin_audit_log", "target_type, target_id", False),
    "admin_audit_log_created_idx": ("admin_audit_log", "created_at", False),
    "admin_impersonation_sessions_admin_idx": (
        "admin_impersonation_sessions", "admin_user_id", False),
    "admin_impersonation_sessions_target_idx": (
        "admin_impersonation_sessions", "target_user_id", False),
    "admin_impersonation_sessions_active_idx": (
        "admin_impersonation_sessions", "admin_user_id, ended_at", False),
    "admin_user_notes_user_idx": ("admin_user_notes", "user_id", False),
    "admin_user_notes_admin_idx": ("admin_user_notes", "admin_user_id", False),
    "admin_tenant_notes_tenant_idx": ("admin_tenant_notes", "tenant_id", False),
    "admin_tenant_notes_admin_idx": ("admin_tenant_notes", "admin_user_id", False),
    "admin_flags_target_idx": ("admin_flags", "target_type, target_id", False),
    "admin_flags_type_idx": ("admin_flags", "flag_type", False),
    "user_activity_user_date_idx": ("user_activity_daily", "user_id, date", True),
}

ORIGINAL_TABLES = tuple(TABLES_0000)

# 0001_add_admin_role_column: admin_role replaces is_admin.
MIGRATION_0001 = [
    'ALTER TABLE "user" ADD COLUMN "admin_role" text',
    """UPDATE "user" SET "admin_role" = 'super_admin' WHERE "is_admin" = true""",
    'ALTER TABLE "user" DROP COLUMN "is_admin"',
]


def _quote_columns(columns: str) -> str:
    return ", ".join(f'"{c.strip()}"' for c in columns.split(","))


def migration_0000() -> list[str]:
    """The statements of the first Drizzle migration, in the order drizzle-kit writes them."""
    statements = [f'CREATE TABLE "{t}" (\n\t{body}\n)' for t, body in TABLES_0000.items()]
    for table, column, ref, ref_column, on_delete in FOREIGN_KEYS:
        name = f"{table}_{column}_{ref}_{ref_column}_fk"
        statements.append(
            f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" FOREIGN KEY ("{column}") '
            f'REFERENCES "public"."{ref}"("{ref_column}") ON DELETE {on_delete} '
            "ON UPDATE no action")
    for name, (table, columns, unique) in INDEXES.items():
        kind = "UNIQUE INDEX" if unique else "INDEX"
        statements.append(
            f'CREATE {kind} "{name}" ON "{table}" USING btree ({_quote_columns(columns)})')
    return statements


DRIZZLE_TABLE = """CREATE TABLE IF NOT EXISTS "drizzle"."__drizzle_migrations" (
    id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)"""


@contextmanager
def connect(url: str) -> Iterator[Any]:
    """A psycopg2 connection committed at the end of the block (rolled back on error)."""
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


def build(url: str, *, full: bool = True) -> None:
    """Create the original schema as Drizzle's migrator does: both migrations, or the first."""
    with connect(url) as cur:
        cur.execute('CREATE SCHEMA IF NOT EXISTS "drizzle"')
        cur.execute(DRIZZLE_TABLE)
        for statement in migration_0000():
            cur.execute(statement)
        cur.execute('INSERT INTO "drizzle"."__drizzle_migrations" ("hash", "created_at") '
                    "VALUES (%s, %s)", (HASH_0000, WHEN_0000))
    if full:
        migrate_0001(url)


def migrate_0001(url: str) -> None:
    """Apply the second Drizzle migration to a first-migration-only database."""
    with connect(url) as cur:
        for statement in MIGRATION_0001:
            cur.execute(statement)
        cur.execute('INSERT INTO "drizzle"."__drizzle_migrations" ("hash", "created_at") '
                    "VALUES (%s, %s)", (HASH_0001, WHEN_0001))


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Sample:
    """What ``fill`` wrote that the tests look for after adoption."""

    full: bool
    users: dict[str, str] = field(default_factory=dict)  # name -> id
    tenants: dict[str, str] = field(default_factory=dict)
    invite_token: str = ""  # carol's pending invite, e-mailed before adoption
    resent_invites: tuple[str, str] = ("", "")  # erin's (older, newer) invite ids
    folded_notification: str = ""  # push failed, then sent
    deliveries: int = 0  # log rows written
    delivery_groups: int = 0  # distinct (notification, channel)


def wall(text: str) -> dt.datetime:
    """A ``toISOString()`` instant as the original stores it in a ``timestamp``: UTC, no zone."""
    return dt.datetime.fromisoformat(text)


def auth_id(seed: str) -> str:
    """A Better Auth id: 32 characters of [A-Za-z0-9] (deterministic here)."""
    digest = hashlib.sha256(seed.encode()).hexdigest()
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(letters[int(digest[i:i + 2], 16) % 62] for i in range(0, 64, 2))


def uuid4(seed: str) -> str:
    """A lower-case ``crypto.randomUUID()``-shaped id (deterministic here)."""
    h = hashlib.md5(seed.encode()).hexdigest()  # noqa: S324 (an id, not a secret)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def insert(cur: Any, table: str, *rows: dict[str, Any]) -> None:
    """Insert rows given as dicts (each names its own columns)."""
    for row in rows:
        names = ", ".join(f'"{c}"' for c in row)
        marks = ", ".join(["%s"] * len(row))
        cur.execute(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', list(row.values()))


PERMISSIONS = [
    "metrics:read", "tenants:read", "tenants:notes:write", "users:read", "users:notes:write",
    "users:flags:write", "users:email:resend", "subscriptions:read", "subscriptions:modify",
    "audit_logs:read", "webhooks:read", "webhooks:replay", "impersonation:use",
    "impersonation:manage", "admin_users:read", "admin_users:write", "admin_roles:write",
    "system:manage",
]


def fill(url: str, *, full: bool = True) -> Sample:
    """Write rows as the original application writes them (see the fact sheet's "Values")."""
    s = Sample(full=full)
    u = s.users
    u.update(alice=auth_id("alice"), bob=auth_id("bob"), carol=auth_id("carol"),
             frank=auth_id("frank"), dave=uuid4("dave"))  # dave: made in the admin portal
    t = s.tenants
    t.update(t1=uuid4("t1"), t2=uuid4("t2"))
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    future = now + dt.timedelta(days=6)
    with connect(url) as cur:
        insert(cur, "tenants",
               {"id": t["t1"], "name": "Alice's family", "type": "family",
                "created_at": wall("2025-01-10T08:00:00.123"),
                "updated_at": wall("2025-01-10T08:00:00.123")},
               {"id": t["t2"], "name": "Dave's family", "type": "family",
                "created_at": wall("2025-01-11T09:30:00.000"),
                "updated_at": wall("2025-01-11T09:30:00.000")})
        admin = {"is_admin": True} if not full else {"admin_role": "super_admin"}
        insert(cur, "user",
               {"id": u["alice"], "name": "Alice", "email": "alice@example.com",
                "email_verified": True, "active_tenant_id": t["t1"],
                "created_at": wall("2025-01-10T07:59:59.001"),
                "updated_at": wall("2025-01-12T10:00:00.500"),
                "last_active_at": dt.datetime(2025, 1, 12, 10, 0, tzinfo=dt.UTC),
                "lifecycle_stage": "activated"},
               {"id": u["bob"], "name": "Bob", "email": "bob@example.com",
                "active_tenant_id": t["t1"], "created_at": wall("2025-01-11T12:00:00.000"),
                "updated_at": wall("2025-01-11T12:00:00.000"), "preferred_language": "es"},
               {"id": u["carol"], "name": "Carol", "email": "carol@example.com",
                "created_at": wall("2025-02-01T00:00:00.000"),
                "updated_at": wall("2025-02-01T00:00:00.000")},
               # frank's active tenant was deleted: the original had no FK to stop it.
               {"id": u["frank"], "name": "Frank", "email": "frank@example.com",
                "active_tenant_id": uuid4("deleted tenant"),
                "created_at": wall("2025-02-02T00:00:00.000"),
                "updated_at": wall("2025-02-02T00:00:00.000")},
               {"id": u["dave"], "name": "Dave", "email": "dave@example.com",
                "active_tenant_id": t["t2"], "created_at": wall("2025-01-11T09:29:00.000"),
                "updated_at": wall("2025-01-11T09:29:00.000"), **admin})
        _auth(cur, s, future)
        _tenancy(cur, s, future)
        _notifications(cur, s)
        _subscriptions(cur, s)
        _admin(cur, s)
        _features(cur, s)
    return s


def _auth(cur: Any, s: Sample, future: dt.datetime) -> None:
    u = s.users
    insert(cur, "session",
           {"id": auth_id("session alice"), "expires_at": future,
            "token": auth_id("session token alice"),
            "created_at": wall("2025-01-12T10:00:00.000"), "updated_at": future,
            "ip_address": "203.0.113.7", "user_agent": "Mozilla/5.0", "user_id": u["alice"]})
    password = "0123456789abcdef0123456789abcdef:" + "ab" * 64  # scrypt <salt>:<key>
    insert(cur, "account",
           {"id": auth_id("account alice"), "account_id": u["alice"],
            "provider_id": "credential", "user_id": u["alice"], "password": password,
            "created_at": wall("2025-01-10T07:59:59.001"),
            "updated_at": wall("2025-01-10T07:59:59.001")},
           {"id": uuid4("account dave"), "account_id": u["dave"], "provider_id": "credential",
            "user_id": u["dave"], "password": password,
            "created_at": wall("2025-01-11T09:29:00.000"),
            "updated_at": wall("2025-01-11T09:29:00.000")})
    insert(cur, "verification",
           {"id": auth_id("verification 1"), "identifier": "reset-password:" + "x" * 24,
            "value": u["alice"], "expires_at": wall("2025-01-12T11:00:00.000"),
            "created_at": wall("2025-01-12T10:00:00.000"),
            "updated_at": wall("2025-01-12T10:00:00.000")},
           {"id": uuid4("verification 2"), "identifier": "admin-invite:new@example.com",
            "value": "f" * 64, "expires_at": future,
            "created_at": wall("2025-02-01T10:00:00.000"),
            "updated_at": wall("2025-02-01T10:00:00.000")})
    insert(cur, "jwks",
           {"id": auth_id("jwk 1"), "public_key": json.dumps({"kty": "OKP", "crv": "Ed25519"}),
            "private_key": json.dumps("encrypted-jwk"),
            "created_at": wall("2025-01-01T00:00:00.000"),
            "expires_at": wall("2025-01-31T00:00:00.000")})


def _tenancy(cur: Any, s: Sample, future: dt.datetime) -> None:
    u, t = s.users, s.tenants
    insert(cur, "tenant_members",
           {"id": uuid4("m alice"), "tenant_id": t["t1"], "user_id": u["alice"],
            "role": "owner", "joined_at": wall("2025-01-10T08:00:00.123"),
            "updated_at": wall("2025-01-10T08:00:00.123")},
           {"id": uuid4("m bob"), "tenant_id": t["t1"], "user_id": u["bob"],
            "role": "member", "joined_at": wall("2025-01-12T09:00:00.000"),
            "updated_at": wall("2025-01-12T09:00:00.000")},
           {"id": uuid4("m dave"), "tenant_id": t["t2"], "user_id": u["dave"],
            "role": "owner", "joined_at": wall("2025-01-11T09:30:00.000"),
            "updated_at": wall("2025-01-11T09:30:00.000")})
    s.invite_token = uuid4("invite token carol")
    older, newer = uuid4("invite erin 1"), uuid4("invite erin 2")
    s.resent_invites = (older, newer)
    invite = {"tenant_id": t["t1"], "invited_by": u["alice"]}
    insert(cur, "tenant_invites",
           {**invite, "id": uuid4("invite bob"), "email": "bob@example.com",
            "token": uuid4("invite token bob"), "status": "accepted",
            "expires_at": wall("2025-01-18T08:00:00.000"),
            "created_at": wall("2025-01-11T08:00:00.000"),
            "updated_at": wall("2025-01-12T09:00:00.000")},
           {**invite, "id": uuid4("invite carol"), "email": "carol@example.com",
            "token": s.invite_token, "expires_at": future,
            "created_at": wall("2025-02-01T08:00:00.000"),
            "updated_at": wall("2025-02-01T08:00:00.000")},
           # erin's first invite ran out (still 'pending': 'expired' is never written),
           # so alice invited her again: two pending rows for one address.
           {**invite, "id": older, "email": "erin@example.com",
            "token": uuid4("invite token erin 1"), "expires_at": wall("2025-02-08T08:00:00.000"),
            "created_at": wall("2025-02-01T08:00:00.000"),
            "updated_at": wall("2025-02-01T08:00:00.000")},
           {**invite, "id": newer, "email": "erin@example.com",
            "token": uuid4("invite token erin 2"), "expires_at": future,
            "created_at": wall("2025-02-10T08:00:00.000"),
            "updated_at": wall("2025-02-10T08:00:00.000")})
    insert(cur, "tenant_activity_daily",
           {"id": uuid4("activity t1"), "tenant_id": t["t1"], "date": dt.date(2025, 1, 12),
            "event_count": 5,
            "created_at": dt.datetime(2025, 1, 12, 10, 0, tzinfo=dt.UTC),
            "updated_at": dt.datetime(2025, 1, 12, 18, 0, tzinfo=dt.UTC)})


def _notifications(cur: Any, s: Sample) -> None:
    u, t = s.users, s.tenants
    base = {"tenant_id": t["t1"]}
    n1, n2, n3, n4, n5 = (uuid4(f"notification {i}") for i in range(1, 6))
    s.folded_notification = n2
    insert(cur, "notifications",
           {**base, "id": n1, "recipient_user_id": u["alice"], "actor_user_id": u["bob"],
            "type": "direct_message", "title": "Bob", "body": "hi!",
            "deep_link": "/messages/1", "data": '{"messageId":"m1",  "preview":"hi"}',
            "batch_key": f"{u['bob']}_direct_message_29000000",
            "created_at": wall("2025-01-12T10:00:00.250"),
            "read_at": wall("2025-01-12T10:05:00.000")},
           {**base, "id": n2, "recipient_user_id": u["bob"], "actor_user_id": u["alice"],
            "type": "kudos_sent", "title": "Kudos", "body": "Alice sent you kudos",
            "batch_key": f"{u['alice']}_kudos_sent_29000001",
            "created_at": wall("2025-01-12T11:00:00.000"),
            "archived_at": wall("2025-01-13T11:00:00.000")},
           {**base, "id": n3, "recipient_user_id": u["alice"], "type": "member_joined",
            "title": "Bob joined", "body": "Bob joined Alice's family",
            "batch_key": "system_member_joined_29000002",
            "created_at": wall("2025-01-12T09:00:01.000")},
           {"id": n4, "recipient_user_id": u["alice"], "type": "test", "title": "Test",
            "body": "A test notification", "created_at": wall("2025-01-13T00:00:00.000")},
           {**base, "id": n5, "recipient_user_id": u["alice"], "actor_user_id": u["bob"],
            "type": "todo_assigned", "title": "New todo", "body": "Bob assigned you a todo",
            "data": '{"todoId": "x"}', "batch_key": f"{u['bob']}_todo_assigned_29000003",
            "created_at": wall("2025-01-14T00:00:00.000")})
    deliveries = [
        (n1, "in_app", "sent", None, None, "2025-01-12T10:00:00.300"),
        (n2, "push", "failed", None, "Expo push failed: TooManyRequests",
         "2025-01-12T11:00:00.100"),
        (n2, "push", "sent", "expo-ticket-123", None, "2025-01-12T11:01:00.100"),
        (n3, "in_app", "skipped", None, "User opted out", "2025-01-12T09:00:01.100"),
        (n5, "push", "failed", None, "Expo push failed: DeviceNotRegistered",
         "2025-01-14T00:00:00.100"),
    ]
    for i, (nid, channel, status, message_id, error, at) in enumerate(deliveries):
        insert(cur, "notification_deliveries",
               {"id": uuid4(f"delivery {i}"), "notification_id": nid, "channel": channel,
                "status": status, "provider_message_id": message_id, "error": error,
                "created_at": wall(at)})
    s.deliveries, s.delivery_groups = len(deliveries), 4
    insert(cur, "notification_preferences",
           {"id": uuid4("pref alice"), "user_id": u["alice"], "push_enabled": True,
            "created_at": wall("2025-01-10T08:00:00.000"),
            "updated_at": wall("2025-01-10T08:00:00.000")},
           {"id": uuid4("pref alice t1"), "user_id": u["alice"], "tenant_id": t["t1"],
            "email_enabled": False, "created_at": wall("2025-01-10T08:00:00.000"),
            "updated_at": wall("2025-01-11T08:00:00.000")})
    insert(cur, "notification_targets",
           {"id": uuid4("target alice"), "user_id": u["alice"], "novu_subscriber_id": u["alice"],
            "expo_push_token": "ExponentPushToken[xxxxxxxxxxxxxxxxxxxxxx]",
            "last_active_at": wall("2025-01-12T10:00:00.000"),
            "created_at": wall("2025-01-10T08:00:00.000"),
            "updated_at": wall("2025-01-12T10:00:00.000")})


def _subscriptions(cur: Any, s: Sample) -> None:
    u, t = s.users, s.tenants
    insert(cur, "subscriptions",
           {"id": uuid4("subscription t1"), "tenant_id": t["t1"],
            "purchased_by_user_id": u["alice"], "plan_id": "prod_polar_family",
            "plan_name": "Family", "current_period_start": wall("2025-01-15T00:00:00.000"),
            "current_period_end": wall("2025-02-15T00:00:00.000"), "provider": "polar",
            "polar_subscription_id": "sub_123", "polar_customer_id": "cus_123",
            "created_at": wall("2025-01-15T00:00:01.000"),
            "updated_at": wall("2025-01-15T00:00:02.000")})
    insert(cur, "subscription_events",
           {"id": uuid4("event 1"), "event_id": "evt_polar_1", "provider": "polar",
            "event_type": "subscription.created",
            "payload": json.dumps({"type": "subscription.created", "data": {"id": "sub_123"}}),
            "processed_at": wall("2025-01-15T00:00:01.500")},
           {"id": uuid4("event 2"), "event_id": "rc_1736899200000", "provider": "revenuecat",
            "event_type": "INITIAL_PURCHASE", "payload": None,
            "processed_at": wall("2025-01-15T00:00:03.000")})


def _admin(cur: Any, s: Sample) -> None:
    u, t = s.users, s.tenants
    # The app authorises admins via user.admin_role and writes notes, flags and
    # impersonations with the admin's user id, which needs an admin_users row of that id.
    insert(cur, "admin_users",
           {"id": u["dave"], "email": "dave@example.com", "name": "Dave", "status": "active",
            "created_at": dt.datetime(2025, 1, 11, 9, 29, tzinfo=dt.UTC),
            "updated_at": dt.datetime(2025, 1, 11, 9, 29, tzinfo=dt.UTC)})
    insert(cur, "admin_roles",
           {"key": "super_admin", "name": "Super admin", "permissions": PERMISSIONS},
           {"key": "read_only", "name": "Read only", "description": "Looks, never touches",
            "permissions": ["metrics:read", "users:read"]})
    insert(cur, "admin_user_roles", {"admin_user_id": u["dave"], "role_key": "super_admin"})
    insert(cur, "admin_audit_log",
           {"id": uuid4("audit 1"), "admin_user_id": u["dave"], "action": "USER_NOTE_ADD",
            "target_type": "user", "target_id": u["bob"],
            "metadata": json.dumps({"noteId": uuid4("note bob")})})
    insert(cur, "admin_impersonation_sessions",
           {"id": uuid4("impersonation 1"), "admin_user_id": u["dave"],
            "target_user_id": u["bob"], "target_tenant_id": t["t1"],
            "reason": "Ticket 42", "expires_at": dt.datetime(2025, 1, 13, 11, tzinfo=dt.UTC),
            "started_at": dt.datetime(2025, 1, 13, 10, tzinfo=dt.UTC),
            "ended_at": dt.datetime(2025, 1, 13, 10, 20, tzinfo=dt.UTC),
            "end_reason": "manual", "metadata": json.dumps({"ticketId": "42"})})
    insert(cur, "admin_user_notes",
           {"id": uuid4("note bob"), "user_id": u["bob"], "admin_user_id": u["dave"],
            "note": "Asked about billing"})
    insert(cur, "admin_tenant_notes",
           {"id": uuid4("note t1"), "tenant_id": t["t1"], "admin_user_id": u["dave"],
            "note": "Friendly family"})
    insert(cur, "admin_flags",
           {"id": uuid4("flag bob"), "target_type": "user", "target_id": u["bob"],
            "flag_type": "vip", "reason": "Early supporter", "created_by": u["dave"]})


def _features(cur: Any, s: Sample) -> None:
    u, t = s.users, s.tenants
    insert(cur, "todos",
           {"id": uuid4("todo 1"), "user_id": u["alice"], "tenant_id": t["t1"],
            "title": "Buy milk", "created_at": wall("2025-01-12T10:00:00.000"),
            "updated_at": wall("2025-01-12T10:00:00.000")},
           {"id": uuid4("todo 2"), "user_id": u["alice"], "tenant_id": t["t1"],
            "title": "Plan trip", "description": "Summer", "completed": True,
            "due_date": wall("2025-06-01T12:00:00.000"),
            "created_at": wall("2025-01-12T10:01:00.000"),
            "updated_at": wall("2025-01-13T10:01:00.000")},
           {"id": uuid4("todo 3"), "user_id": u["alice"], "tenant_id": None,
            "title": "Personal", "created_at": wall("2025-01-12T10:02:00.000"),
            "updated_at": wall("2025-01-12T10:02:00.000")},
           {"id": uuid4("todo 4"), "user_id": u["bob"], "tenant_id": t["t1"],
            "title": "Walk the dog", "created_at": wall("2025-01-12T10:03:00.000"),
            "updated_at": wall("2025-01-12T10:03:00.000")})
    insert(cur, "user_activity_daily",
           {"user_id": u["alice"], "date": dt.date(2025, 1, 12), "event_count": 12,
            "created_at": dt.datetime(2025, 1, 12, 10, tzinfo=dt.UTC),
            "updated_at": dt.datetime(2025, 1, 12, 22, tzinfo=dt.UTC)},
           # NULL features_used: the column allows it (the app itself writes '{}').
           {"user_id": u["bob"], "date": dt.date(2025, 1, 12), "event_count": 1,
            "features_used": None})
    insert(cur, "waitlist",
           {"email": "early@example.com", "created_at": wall("2024-12-01T00:00:00.000")},
           {"email": "later@example.com"})
