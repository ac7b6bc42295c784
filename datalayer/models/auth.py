"""auth: Better Auth's core schema (user, session, account, verification) and its JWT plugin."""

from __future__ import annotations

from typing import get_args

import peewee as pw

from datalayer.models.base import (
    FALSE,
    BaseModel,
    Dialect,
    TimestampTZField,
    check_constraint,
    created_at,
    id_field,
    int_default,
    one_of,
    pairs,
    text_default,
    updated_at,
)
from datalayer.types import AnalyticsConsent, LifecycleStage, UserAdminRole

ANALYTICS_CONSENT: tuple[AnalyticsConsent, ...] = get_args(AnalyticsConsent)
LIFECYCLE_STAGES: tuple[LifecycleStage, ...] = get_args(LifecycleStage)
USER_ADMIN_ROLES: tuple[UserAdminRole, ...] = get_args(UserAdminRole)


class User(BaseModel):
    id = id_field()
    name = pw.TextField()
    email = pw.TextField(unique=True)
    email_verified = pw.BooleanField(default=False, constraints=[FALSE])
    image = pw.TextField(null=True)
    # A deferred FK: tenants is defined in the tenant module, which references user.
    # Deferred: tenants (tenant module) references user. PostgreSQL gets the constraint
    # by ALTER TABLE once both tables exist; SQLite, which cannot add one later, inline.
    active_tenant = pw.DeferredForeignKey(
        "Tenant",
        column_name="active_tenant_id",
        null=True,
        on_delete="SET NULL",
        backref="active_users",
        constraints=[Dialect("", 'REFERENCES "tenants" ("id") ON DELETE SET NULL')],
    )
    created_at = created_at()
    updated_at = updated_at()
    analytics_consent = pw.TextField(
        choices=pairs(ANALYTICS_CONSENT),
        default="anonymous",
        constraints=[text_default("anonymous")],
    )
    first_seen_at = TimestampTZField(null=True)
    last_active_at = TimestampTZField(null=True)
    lifecycle_stage = pw.TextField(
        choices=pairs(LIFECYCLE_STAGES), default="new", constraints=[text_default("new")]
    )
    churn_risk_score = pw.IntegerField(null=True, default=0, constraints=[int_default(0)])
    is_power_user = pw.BooleanField(null=True, default=False, constraints=[FALSE])
    admin_role = pw.TextField(choices=pairs(USER_ADMIN_ROLES), null=True)
    preferred_language = pw.TextField(null=True, default="en", constraints=[text_default("en")])

    class Meta:
        table_name = "user"
        constraints = [
            check_constraint("user_analytics_consent_check", one_of("analytics_consent", ANALYTICS_CONSENT)),
            check_constraint("user_lifecycle_stage_check", one_of("lifecycle_stage", LIFECYCLE_STAGES)),
            check_constraint("user_admin_role_check", one_of("admin_role", USER_ADMIN_ROLES, nullable=True)),
        ]


class Session(BaseModel):
    id = id_field()
    expires_at = TimestampTZField()
    token = pw.TextField(unique=True)
    created_at = created_at()
    updated_at = updated_at()
    ip_address = pw.TextField(null=True)
    user_agent = pw.TextField(null=True)
    user = pw.ForeignKeyField(User, column_name="user_id", on_delete="CASCADE", backref="sessions")

    class Meta:
        table_name = "session"


class Account(BaseModel):
    id = id_field()
    account_id = pw.TextField()
    provider_id = pw.TextField()
    user = pw.ForeignKeyField(User, column_name="user_id", on_delete="CASCADE", backref="accounts")
    access_token = pw.TextField(null=True)
    refresh_token = pw.TextField(null=True)
    id_token = pw.TextField(null=True)
    access_token_expires_at = TimestampTZField(null=True)
    refresh_token_expires_at = TimestampTZField(null=True)
    scope = pw.TextField(null=True)
    password = pw.TextField(null=True)
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        table_name = "account"
        indexes = ((("provider_id", "account_id"), True),)


class Verification(BaseModel):
    id = id_field()
    identifier = pw.TextField(index=True)
    value = pw.TextField()
    expires_at = TimestampTZField()
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        table_name = "verification"


class Jwks(BaseModel):
    id = id_field()
    public_key = pw.TextField()
    private_key = pw.TextField()
    created_at = created_at()
    expires_at = TimestampTZField(null=True)

    class Meta:
        table_name = "jwks"
