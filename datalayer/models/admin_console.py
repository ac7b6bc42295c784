"""admin console: the back office's own sessions (with step-up), impersonation sessions,
support flags and notes on users and tenants. Migration 002 creates these five tables.
"""

from __future__ import annotations

from typing import get_args

import peewee as pw

from datalayer.models.admin import AdminUser
from datalayer.models.auth import User
from datalayer.models.base import (
    NOW,
    BaseModel,
    TimestampTZField,
    check_constraint,
    created_at,
    id_field,
    one_of,
    pairs,
    text_default,
    updated_at,
    utcnow,
)
from datalayer.models.tenant import Tenant
from datalayer.types import FlagTargetType, FlagType, ImpersonationEndReason, ImpersonationScope

IMPERSONATION_SCOPES: tuple[ImpersonationScope, ...] = get_args(ImpersonationScope)
IMPERSONATION_END_REASONS: tuple[ImpersonationEndReason, ...] = get_args(ImpersonationEndReason)
FLAG_TARGET_TYPES: tuple[FlagTargetType, ...] = get_args(FlagTargetType)
FLAG_TYPES: tuple[FlagType, ...] = get_args(FlagType)
NOTE_MAX = 10_000


class AdminSession(BaseModel):
    """A back-office login. ``token`` is stored as Better Auth stores it, never dumped."""

    id = id_field()
    admin_user = pw.ForeignKeyField(
        AdminUser, column_name="admin_user_id", on_delete="CASCADE", backref="sessions"
    )
    token = pw.TextField(unique=True)
    expires_at = TimestampTZField(index=True)
    created_at = created_at()
    updated_at = updated_at()
    ip_address = pw.TextField(null=True)
    user_agent = pw.TextField(null=True)
    step_up_verified_at = TimestampTZField(null=True)
    step_up_expires_at = TimestampTZField(null=True)

    class Meta:
        table_name = "admin_sessions"


class AdminImpersonationSession(BaseModel):
    """An admin acting as a user. The history outlives the user and the tenant (SET NULL)."""

    id = id_field()
    admin_user = pw.ForeignKeyField(
        AdminUser, column_name="admin_user_id", backref="impersonations", index=False
    )
    target_user = pw.ForeignKeyField(
        User,
        column_name="target_user_id",
        null=True,
        on_delete="SET NULL",
        backref="impersonations",
    )
    target_tenant = pw.ForeignKeyField(
        Tenant,
        column_name="target_tenant_id",
        null=True,
        on_delete="SET NULL",
        backref="impersonations",
    )
    scope = pw.TextField(
        choices=pairs(IMPERSONATION_SCOPES),
        default="read_only",
        constraints=[text_default("read_only")],
    )
    reason = pw.TextField()
    started_at = TimestampTZField(default=utcnow, constraints=[NOW])
    expires_at = TimestampTZField()
    ended_at = TimestampTZField(null=True)
    end_reason = pw.TextField(choices=pairs(IMPERSONATION_END_REASONS), null=True)
    metadata = pw.JSONField(null=True)

    class Meta:
        table_name = "admin_impersonation_sessions"
        indexes = ((("admin_user", "ended_at"), False),)
        constraints = [
            check_constraint(
                "admin_impersonation_sessions_scope_check", one_of("scope", IMPERSONATION_SCOPES)
            ),
            check_constraint(
                "admin_impersonation_sessions_end_reason_check",
                one_of("end_reason", IMPERSONATION_END_REASONS, nullable=True),
            ),
            check_constraint(
                "admin_impersonation_sessions_ended_check",
                "(ended_at IS NULL) = (end_reason IS NULL)",
            ),
        ]


# At most one session per admin that has not ended: concurrent starts meet in this index.
AdminImpersonationSession.add_index(
    AdminImpersonationSession.index(
        AdminImpersonationSession.admin_user,
        unique=True,
        where=pw.SQL("ended_at IS NULL"),
        name="admin_impersonation_sessions_one_active_uniq",
    )
)


class AdminFlag(BaseModel):
    """A support flag on a user or a tenant (``target_id`` has no FK: it names either)."""

    id = id_field()
    target_type = pw.TextField(choices=pairs(FLAG_TARGET_TYPES))
    target_id = pw.TextField()
    flag_type = pw.TextField(choices=pairs(FLAG_TYPES))
    custom_label = pw.TextField(null=True)
    reason = pw.TextField()
    created_by = pw.ForeignKeyField(
        AdminUser, column_name="created_by", backref="flags_set", object_id_name="created_by_id"
    )
    created_at = TimestampTZField(default=utcnow, constraints=[NOW])
    expires_at = TimestampTZField(null=True)

    class Meta:
        table_name = "admin_flags"
        indexes = ((("target_type", "target_id", "flag_type"), True),)
        constraints = [
            check_constraint("admin_flags_target_type_check", one_of("target_type", FLAG_TARGET_TYPES)),
            check_constraint("admin_flags_flag_type_check", one_of("flag_type", FLAG_TYPES)),
            check_constraint(
                "admin_flags_custom_label_check",
                "(flag_type = 'custom' AND custom_label IS NOT NULL) "
                "OR (flag_type <> 'custom' AND custom_label IS NULL)",
            ),
        ]


# Pages of one flag type, newest first.
AdminFlag.add_index(
    AdminFlag.index(
        AdminFlag.flag_type, AdminFlag.created_at, AdminFlag.id, name="admin_flags_type_idx"
    )
)


class AdminUserNote(BaseModel):
    id = id_field()
    user = pw.ForeignKeyField(
        User, column_name="user_id", on_delete="CASCADE", backref="admin_notes", index=False
    )
    admin_user = pw.ForeignKeyField(AdminUser, column_name="admin_user_id", backref="user_notes")
    note = pw.TextField()
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        table_name = "admin_user_notes"
        constraints = [
            check_constraint("admin_user_notes_note_length_check", f"length(note) BETWEEN 1 AND {NOTE_MAX}")
        ]


AdminUserNote.add_index(
    AdminUserNote.index(
        AdminUserNote.user,
        AdminUserNote.created_at,
        AdminUserNote.id,
        name="admin_user_notes_user_recent_idx",
    )
)


class AdminTenantNote(BaseModel):
    id = id_field()
    tenant = pw.ForeignKeyField(
        Tenant, column_name="tenant_id", on_delete="CASCADE", backref="admin_notes", index=False
    )
    admin_user = pw.ForeignKeyField(AdminUser, column_name="admin_user_id", backref="tenant_notes")
    note = pw.TextField()
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        table_name = "admin_tenant_notes"
        constraints = [
            check_constraint("admin_tenant_notes_note_length_check", f"length(note) BETWEEN 1 AND {NOTE_MAX}")
        ]


AdminTenantNote.add_index(
    AdminTenantNote.index(
        AdminTenantNote.tenant,
        AdminTenantNote.created_at,
        AdminTenantNote.id,
        name="admin_tenant_notes_tenant_recent_idx",
    )
)

ADMIN_CONSOLE_MODELS: tuple[type[BaseModel], ...] = (
    AdminSession,
    AdminImpersonationSession,
    AdminFlag,
    AdminUserNote,
    AdminTenantNote,
)
