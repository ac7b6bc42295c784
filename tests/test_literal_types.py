"""The Literal types (``datalayer.types``) and the closed sets the database checks agree:
the models' tuples are the Literals' values, and the CHECK constraints of a migrated
database (written by the migrations, which never import the models) list the same values."""

from __future__ import annotations

import re
import typing

import pytest
from helpers import IS_PG

from datalayer import db, types
from datalayer.models import (
    ALL_MODELS,
    admin,
    admin_console,
    auth,
    notifications,
    subscriptions,
    tenant,
)

# Each Literal beside the tuple its models (and so their CHECKs and choices) use.
PAIRS = [
    (types.AnalyticsConsent, auth.ANALYTICS_CONSENT),
    (types.LifecycleStage, auth.LIFECYCLE_STAGES),
    (types.UserAdminRole, auth.USER_ADMIN_ROLES),
    (types.TenantType, tenant.TENANT_TYPES),
    (types.Role, tenant.MEMBER_ROLES),
    (types.MemberSubRole, tenant.MEMBER_SUB_ROLES),
    (types.InviteRole, tenant.INVITE_ROLES),
    (types.InviteStatus, tenant.INVITE_STATUSES),
    (types.NotificationType, notifications.NOTIFICATION_TYPES),
    (types.Channel, notifications.CHANNELS),
    (types.DeliveryStatus, notifications.DELIVERY_STATUSES),
    (types.SubscriptionStatus, subscriptions.SUBSCRIPTION_STATUSES),
    (types.Provider, subscriptions.PROVIDERS),
    (types.IngestOutcome, subscriptions.EVENT_OUTCOMES),
    (types.AdminStatus, admin.ADMIN_STATUSES),
    (types.AuditTargetType, admin.AUDIT_TARGET_TYPES),
    (types.ImpersonationScope, admin_console.IMPERSONATION_SCOPES),
    (types.ImpersonationEndReason, admin_console.IMPERSONATION_END_REASONS),
    (types.FlagTargetType, admin_console.FLAG_TARGET_TYPES),
    (types.FlagType, admin_console.FLAG_TYPES),
]


def test_every_literal_is_the_tuple_its_models_use() -> None:
    literals = {n for n in types.__all__ if typing.get_origin(getattr(types, n)) is typing.Literal}
    assert literals == {_name(lit) for lit, _ in PAIRS}  # none left out
    for literal, values in PAIRS:
        assert typing.get_args(literal) == values, _name(literal)
    assert typing.get_args(types.Role) == ("owner", "admin", "member")


def _name(literal: object) -> str:
    return next(n for n in types.__all__ if getattr(types, n) is literal)


def _checked_columns() -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(table, column, Literal name, values) for every column whose choices a CHECK lists."""
    by_values = {typing.get_args(lit): _name(lit) for lit, _ in PAIRS}
    found = []
    for model in ALL_MODELS:
        texts = [getattr(c, "sql", str(c)) for c in model._meta.constraints or []]
        for field in model._meta.fields.values():
            values = tuple(c[0] for c in field.choices or ())
            name = f"{model._meta.table_name}_{field.column_name}_check"
            # a list of values (notifications.type is checked only for its shape)
            if values and any(name in t and " IN (" in t for t in texts):
                found.append((model._meta.table_name, name, by_values[values], values))
    return found


def _database_check(table: str, name: str) -> str:
    """The text of the named CHECK as the migrated database holds it."""
    if IS_PG:
        row = db.execute_sql(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = %s", (name,)
        ).fetchone()
        return str(row[0])
    (create,) = db.execute_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    match = re.search(rf'CONSTRAINT "?{name}"? CHECK \((.*?)\)(,|\s*\)$)', create, re.S)
    assert match, (name, create)
    return match.group(1)


@pytest.mark.usefixtures("txn")
def test_the_database_checks_list_the_literals_values() -> None:
    columns = _checked_columns()
    assert {literal for _, _, literal, _ in columns} >= {"Role", "TenantType", "Channel"}
    for table, name, literal, values in columns:
        listed = re.findall(r"'([^']*)'", _database_check(table, name))
        assert set(listed) == set(values), (name, literal, listed)
