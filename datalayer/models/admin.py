"""admin: back-office users, their roles and the append-only audit trail."""

from __future__ import annotations

from typing import Any, NoReturn, get_args

import peewee as pw

from datalayer.errors import PermissionDeniedError
from datalayer.migration_ops import Trigger
from datalayer.models.base import (
    EMPTY_JSON_LIST,
    NOW,
    BaseModel,
    TimestampTZField,
    check_constraint,
    created_at,
    id_field,
    json_array_check,
    one_of,
    pairs,
    text_default,
    updated_at,
    utcnow,
)
from datalayer.types import AdminStatus, AuditTargetType

ADMIN_STATUSES: tuple[AdminStatus, ...] = get_args(AdminStatus)
AUDIT_TARGET_TYPES: tuple[AuditTargetType, ...] = get_args(AuditTargetType)

# The one UPDATE the trail allows (migration 005; 004 before it): erasing a user
# (UserQueries.erase) redacts the rows about them, and scrubs the rows its own USER_ERASE
# row lists (by id, in its metadata), once that row exists and the user no longer does:
# a USER_ERASE row naming a live user lets nothing through. The row's identity (id,
# admin, action, target type, time, impersonation session) stays; its target id may only
# go. "%%" is LIKE's "%" twice: psycopg2 halves it on PostgreSQL, SQLite reads "%%" as "%".
AUDIT_ERASURE_REDACTION = """COALESCE(OLD.action <> 'USER_ERASE'
        AND NEW.id = OLD.id
        AND NEW.admin_user_id = OLD.admin_user_id AND NEW.action = OLD.action
        AND NEW.target_type = OLD.target_type AND NEW.created_at = OLD.created_at
        AND COALESCE(NEW.impersonation_session_id = OLD.impersonation_session_id,
                     NEW.impersonation_session_id IS NULL AND OLD.impersonation_session_id IS NULL)
        AND (NEW.target_id IS NULL OR NEW.target_id = OLD.target_id)
        AND EXISTS (SELECT 1 FROM admin_audit_log AS erasure
                    WHERE erasure.action = 'USER_ERASE' AND erasure.target_type = 'user'
                      AND NOT EXISTS (SELECT 1 FROM "user" WHERE "user".id = erasure.target_id)
                      AND ((OLD.target_type = 'user' AND erasure.target_id = OLD.target_id)
                           OR CAST(erasure.metadata AS TEXT) LIKE '%%"' || OLD.id || '"%%')),
        FALSE)"""

# Installed by migrations 001, 004 and 005, declared as AdminAuditLog.Meta.triggers since 006 (so
# makemigrations and check track them). "%%" because psycopg2 interpolates even an empty
# parameter tuple.
AUDIT_APPEND_ONLY_SQL = (
    """CREATE OR REPLACE FUNCTION admin_audit_log_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            IF (""" + AUDIT_ERASURE_REDACTION + """) THEN
                RETURN NEW;
            END IF;
        END IF;
        RAISE EXCEPTION 'admin_audit_log is append-only: %% is not allowed', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END;
    $$""",
    """CREATE TRIGGER admin_audit_log_append_only
    BEFORE UPDATE OR DELETE ON admin_audit_log
    FOR EACH ROW EXECUTE FUNCTION admin_audit_log_append_only()""",
    """CREATE TRIGGER admin_audit_log_no_truncate
    BEFORE TRUNCATE ON admin_audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION admin_audit_log_append_only()""",
)
AUDIT_APPEND_ONLY_SQLITE = (
    """CREATE TRIGGER admin_audit_log_no_update BEFORE UPDATE ON admin_audit_log
    WHEN NOT (""" + AUDIT_ERASURE_REDACTION + """)
    BEGIN SELECT RAISE(ABORT, 'admin_audit_log is append-only: UPDATE is not allowed'); END""",
    """CREATE TRIGGER admin_audit_log_no_delete BEFORE DELETE ON admin_audit_log
    BEGIN SELECT RAISE(ABORT, 'admin_audit_log is append-only: DELETE is not allowed'); END""",
)
AUDIT_APPEND_ONLY = Trigger(
    "admin_audit_log_append_only",
    postgres=AUDIT_APPEND_ONLY_SQL,
    sqlite=AUDIT_APPEND_ONLY_SQLITE,
    drop_postgres=(
        "DROP TRIGGER IF EXISTS admin_audit_log_append_only ON admin_audit_log",
        "DROP TRIGGER IF EXISTS admin_audit_log_no_truncate ON admin_audit_log",
        "DROP FUNCTION IF EXISTS admin_audit_log_append_only()",
    ),
    drop_sqlite=(
        "DROP TRIGGER IF EXISTS admin_audit_log_no_update",
        "DROP TRIGGER IF EXISTS admin_audit_log_no_delete",
    ),
)


class AdminUser(BaseModel):
    id = id_field()
    email = pw.TextField(unique=True)
    name = pw.TextField(null=True)
    password_hash = pw.TextField(null=True)
    company = pw.TextField(default="", constraints=[text_default("")])
    status = pw.TextField(
        choices=pairs(ADMIN_STATUSES),
        default="pending",
        constraints=[text_default("pending")],
        index=True,
    )
    avatar_url = pw.TextField(null=True)
    created_at = created_at()
    updated_at = updated_at()
    last_login_at = TimestampTZField(null=True)
    invited_by = pw.TextField(null=True)

    class Meta:
        table_name = "admin_users"
        constraints = [check_constraint("admin_users_status_check", one_of("status", ADMIN_STATUSES))]


class AdminRole(BaseModel):
    key = pw.TextField(primary_key=True)
    name = pw.TextField()
    description = pw.TextField(null=True)
    permissions = pw.JSONField(default=list, constraints=[EMPTY_JSON_LIST])
    created_at = created_at()

    class Meta:
        table_name = "admin_roles"
        constraints = [json_array_check("admin_roles_permissions_check", "permissions")]


class AdminUserRole(BaseModel):
    admin_user = pw.ForeignKeyField(
        AdminUser,
        column_name="admin_user_id",
        on_delete="CASCADE",
        backref="role_grants",
        index=False,
    )
    role_key = pw.ForeignKeyField(
        AdminRole,
        column_name="role_key",
        on_delete="CASCADE",
        backref="grants",
        object_id_name="role_key_id",
    )
    granted_by = pw.ForeignKeyField(
        AdminUser,
        column_name="granted_by",
        null=True,
        backref="granted_roles",
        object_id_name="granted_by_id",
    )
    granted_at = TimestampTZField(default=utcnow, constraints=[NOW])

    class Meta:
        table_name = "admin_user_roles"
        primary_key = pw.CompositeKey("admin_user", "role_key")


class AdminAuditLog(BaseModel):
    """Append-only: rows are inserted, never updated or deleted."""

    id = id_field()
    admin_user = pw.ForeignKeyField(
        AdminUser, column_name="admin_user_id", backref="audit_entries", index=False
    )
    action = pw.TextField()
    target_type = pw.TextField(choices=pairs(AUDIT_TARGET_TYPES))
    target_id = pw.TextField(null=True)
    reason = pw.TextField(null=True)
    metadata = pw.JSONField(null=True)
    ip = pw.TextField(null=True)
    user_agent = pw.TextField(null=True)
    impersonation_session_id = pw.TextField(null=True)
    created_at = TimestampTZField(default=utcnow, constraints=[NOW])

    class Meta:
        table_name = "admin_audit_log"
        indexes = (
            (("admin_user", "created_at"), False),
            (("target_type", "target_id", "created_at"), False),
            (("action", "created_at"), False),
        )
        constraints = [
            check_constraint("admin_audit_log_target_type_check", one_of("target_type", AUDIT_TARGET_TYPES)),
        ]
        triggers = [AUDIT_APPEND_ONLY]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # peewee builds rows read from the database with __no_default__ set.
        self._persisted = bool(kwargs.get("__no_default__"))
        super().__init__(*args, **kwargs)

    def save(self, *args: Any, **kwargs: Any) -> Any:
        if self._persisted:
            _refuse("update")
        kwargs["force_insert"] = True
        result = super().save(*args, **kwargs)
        self._persisted = True
        return result

    @classmethod
    def update(cls, __data: Any = None, **update: Any) -> NoReturn:
        _refuse("update")

    @classmethod
    def delete(cls) -> NoReturn:
        _refuse("delete")

    def delete_instance(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("delete")


# Unfiltered and time-range audit pages and summaries, newest first.
AdminAuditLog.add_index(
    AdminAuditLog.index(
        AdminAuditLog.created_at, AdminAuditLog.id, name="admin_audit_log_recent_idx"
    )
)


def _refuse(operation: str) -> NoReturn:
    raise PermissionDeniedError(f"admin_audit_log is append-only: {operation} is not allowed")
