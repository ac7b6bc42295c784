"""What a database made by the original TypeScript package looks like, and telling it apart.

The facts come from ``original-schema.md``: Drizzle's bookkeeping table
``drizzle.__drizzle_migrations`` holds one row per applied migration (the SHA-256 of its
SQL file); the two migrations create 27 tables in ``public``. ``recognise`` reads only the
catalog and that table, and says what it found: fully migrated, first migration only,
already adopted, or something else (refused, with what was found).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from peewee_migrate.models import MIGRATE_TABLE

from datalayer.errors import AdoptRefused

DRIZZLE_TABLE = "drizzle.__drizzle_migrations"
HASH_0000 = "9b65cbd4ac5b2531bcd6eeaca75d7617a7c26fe0d41cbb46c1a87d97f6cbab34"
HASH_0001 = "bd726e88e6aae17c8c696b66b33c5e8bbb67fea6383f30c6e68b116585b3f58a"

_TYPES = {
    "t": "text", "ts": "timestamp without time zone", "tz": "timestamp with time zone",
    "b": "boolean", "i": "integer", "d": "date", "jb": "jsonb", "js": "json",
    "ta": "text[]", "u": "uuid", "v255": "character varying(255)",
}
_STAMPS = "created_at:ts updated_at:ts"
_STAMPS_TZ = "created_at:tz updated_at:tz"

# Every table after both migrations: column:type (codes above), in column order.
_SHAPES = {
    "user": "id:t name:t email:t email_verified:b image:t active_tenant_id:t "
            f"{_STAMPS} analytics_consent:t first_seen_at:tz last_active_at:tz "
            "lifecycle_stage:t churn_risk_score:i is_power_user:b preferred_language:t "
            "admin_role:t",
    "session": "id:t expires_at:ts token:t created_at:ts updated_at:ts ip_address:t "
               "user_agent:t user_id:t",
    "account": "id:t account_id:t provider_id:t user_id:t access_token:t refresh_token:t "
               "id_token:t access_token_expires_at:ts refresh_token_expires_at:ts scope:t "
               f"password:t {_STAMPS}",
    "verification": f"id:t identifier:t value:t expires_at:ts {_STAMPS}",
    "jwks": "id:t public_key:t private_key:t created_at:ts expires_at:ts",
    "tenants": f"id:t name:t type:t {_STAMPS}",
    "tenant_members": "id:t tenant_id:t user_id:t role:t member_role:t joined_at:ts "
                      "updated_at:ts",
    "tenant_invites": "id:t tenant_id:t invited_by:t email:t token:t status:t expires_at:ts "
                      f"{_STAMPS}",
    "tenant_activity_daily": "id:t tenant_id:t date:d active_users:i event_count:i "
                             f"new_members:i {_STAMPS_TZ}",
    "notifications": "id:t tenant_id:t recipient_user_id:t actor_user_id:t type:t title:t "
                     "body:t deep_link:t data:js batch_key:t created_at:ts read_at:ts "
                     "archived_at:ts",
    "notification_deliveries": "id:t notification_id:t channel:t status:t "
                               "provider_message_id:t error:t created_at:ts",
    "notification_preferences": "id:t user_id:t tenant_id:t in_app_enabled:b push_enabled:b "
                                f"email_enabled:b marketing_email_enabled:b {_STAMPS}",
    "notification_targets": "id:t user_id:t novu_subscriber_id:t expo_push_token:t "
                            f"last_active_at:ts {_STAMPS}",
    "subscriptions": "id:t tenant_id:t purchased_by_user_id:t status:t plan_id:t plan_name:t "
                     "current_period_start:ts current_period_end:ts cancel_at_period_end:b "
                     "trial_start:ts trial_end:ts provider:t polar_subscription_id:t "
                     "polar_customer_id:t revenuecat_app_user_id:t "
                     f"revenuecat_original_transaction_id:t {_STAMPS}",
    "subscription_events": "id:t event_id:t provider:t event_type:t payload:jb "
                           "processed_at:ts",
    "admin_users": "id:t email:t name:t password_hash:t company:t status:t avatar_url:t "
                   f"{_STAMPS_TZ} last_login_at:tz invited_by:t",
    "admin_roles": "key:t name:t description:t permissions:ta created_at:tz",
    "admin_user_roles": "admin_user_id:t role_key:t granted_by:t granted_at:tz",
    "admin_sessions": f"id:t admin_user_id:t token:t expires_at:tz {_STAMPS_TZ} "
                      "ip_address:t user_agent:t step_up_verified_at:tz step_up_expires_at:tz",
    "admin_audit_log": "id:t admin_user_id:t action:t target_type:t target_id:t reason:t "
                       "metadata:jb created_at:tz ip:t user_agent:t impersonation_session_id:t",
    "admin_impersonation_sessions": "id:t admin_user_id:t target_user_id:t target_tenant_id:t "
                                    "scope:t reason:t started_at:tz expires_at:tz ended_at:tz "
                                    "end_reason:t metadata:jb",
    "admin_user_notes": f"id:t user_id:t admin_user_id:t note:t {_STAMPS_TZ}",
    "admin_tenant_notes": f"id:t tenant_id:t admin_user_id:t note:t {_STAMPS_TZ}",
    "admin_flags": "id:t target_type:t target_id:t flag_type:t custom_label:t reason:t "
                   "created_by:t created_at:tz expires_at:tz",
    "todos": f"id:t user_id:t tenant_id:t title:t description:t completed:b due_date:ts "
             f"{_STAMPS}",
    "user_activity_daily": "id:u user_id:t date:d event_count:i session_count:i "
                           f"active_minutes:i features_used:ta {_STAMPS_TZ}",
    "waitlist": "id:u email:v255 created_at:ts",
}
ORIGINAL_TABLES: tuple[str, ...] = tuple(_SHAPES)


def original_columns(table: str, variant: str) -> dict[str, str]:
    """The columns (name -> type) of an original table, for ``full`` or ``first``."""
    columns = dict(item.split(":") for item in _SHAPES[table].split())
    shape = {name: _TYPES[code] for name, code in columns.items()}
    if table == "user" and variant == "first":  # before 0001: is_admin, no admin_role
        shape.pop("admin_role")
        shape["is_admin"] = "boolean"
    return shape


@dataclass
class Found:
    """What ``recognise`` saw."""

    variant: str  # "full", "first" or "adopted"
    description: str
    drizzle_rows: int = 0
    other_tables: list[str] = field(default_factory=list)  # in public, left as they are


def recognise(database: Any) -> Found:
    """Say which kind of database this is; raise ``AdoptRefused`` for anything else."""
    tables = _public_tables(database)
    drizzle = _drizzle_rows(database)
    if MIGRATE_TABLE in tables:
        if drizzle is not None:
            return Found("adopted", "already adopted: datalayer manages this database "
                         f"(public.{MIGRATE_TABLE}) and {DRIZZLE_TABLE} is kept from before",
                         len(drizzle))
        raise AdoptRefused(
            f"refused: found a datalayer database (public.{MIGRATE_TABLE}) with no "
            f"{DRIZZLE_TABLE}: the TypeScript package did not make it, nothing to adopt")
    if drizzle is None:
        listed = _some(sorted(tables)) if tables else "no tables at all"
        raise AdoptRefused(
            f"refused: no {DRIZZLE_TABLE} table, so not a database made by the TypeScript "
            f"package's migrator; public has {len(tables)} table(s): {listed}")
    hashes = [row[0] for row in drizzle]
    if hashes == [HASH_0000]:
        variant = "first"
    elif hashes == [HASH_0000, HASH_0001]:
        variant = "full"
    else:
        shown = ", ".join(h[:12] + "…" for h in hashes) or "no rows"
        raise AdoptRefused(
            f"refused: {DRIZZLE_TABLE} records {len(hashes)} migration(s) ({shown}), not "
            "the package's 0000 (9b65cbd4ac5b…) and, optionally, 0001 (bd726e88e6aa…)")
    problems = _shape_problems(database, variant, tables)
    if problems:
        raise AdoptRefused(
            f"refused: {DRIZZLE_TABLE} says {_describe(variant)}, but the tables differ "
            f"from what it makes ({len(problems)} difference(s)): " + "; ".join(problems[:8])
            + ("; …" if len(problems) > 8 else ""))
    others = sorted(set(tables) - set(ORIGINAL_TABLES))
    description = (f"a database made by the TypeScript package, {_describe(variant)} "
                   f"({DRIZZLE_TABLE}: {len(hashes)} row(s)); {len(ORIGINAL_TABLES)} tables")
    return Found(variant, description, len(hashes), others)


def _describe(variant: str) -> str:
    return ("both Drizzle migrations applied" if variant == "full"
            else "only the first Drizzle migration applied (0001, admin_role, pending)")


def _some(names: list[str], limit: int = 10) -> str:
    return ", ".join(names[:limit]) + (", …" if len(names) > limit else "")


def _public_tables(database: Any) -> list[str]:
    cursor = database.execute_sql(
        "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace "
        "AND c.relkind IN ('r', 'p', 'v', 'm', 'f')")
    return [name for (name,) in cursor.fetchall()]


def _drizzle_rows(database: Any) -> list[tuple[str, int]] | None:
    exists = database.execute_sql("SELECT to_regclass(%s)", (DRIZZLE_TABLE,)).fetchone()[0]
    if exists is None:
        return None
    cursor = database.execute_sql(
        f"SELECT hash, created_at FROM {DRIZZLE_TABLE} ORDER BY created_at, id")
    return list(cursor.fetchall())


def _shape_problems(database: Any, variant: str, tables: list[str]) -> list[str]:
    cursor = database.execute_sql(
        "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) "
        "FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid "
        "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') "
        "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY c.relname, a.attnum")
    found: dict[str, dict[str, str]] = {}
    for table, column, type_ in cursor.fetchall():
        found.setdefault(table, {})[column] = type_
    problems = []
    for table in ORIGINAL_TABLES:
        if table not in found:
            problems.append(f"table {table} is missing")
            continue
        want, have = original_columns(table, variant), found[table]
        problems += [f"{table}.{c} is missing" for c in want if c not in have]
        problems += [f"{table}.{c} ({have[c]}) is not the package's" for c in have
                     if c not in want]
        problems += [f"{table}.{c} is {have[c]}, expected {want[c]}" for c in want
                     if c in have and have[c] != want[c]]
    return problems
