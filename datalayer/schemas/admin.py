"""DTOs of the admin domain: back-office users, their roles and the audit trail.

``password_hash`` is loadable (a create may set it) but never dumped; it must arrive
already hashed — a value that does not look like a password hash is refused, so a
plain password cannot be stored by mistake.
"""

from __future__ import annotations

import re
from typing import Any, Required, TypedDict

from marshmallow import validate

from datalayer.models import AdminAuditLog, AdminRole, AdminUser, AdminUserRole
from datalayer.schemas.base import (
    Dumper,
    Email,
    Json,
    StringList,
    Text,
    Url,
    model_schema,
    writable_schema,
)
from datalayer.types import (
    AdminStatus,
    AdminUserId,
    AuditLogId,
    AuditTargetType,
    ImpersonationSessionId,
)

# Modular-crypt / PHC strings ($argon2id$..., $2b$..., $scrypt$...) and werkzeug-style
# "method$salt$hash" (pbkdf2:sha256:600000$...): a scheme, then "$"-separated parts.
PASSWORD_HASH_RE = re.compile(r"^(\$[a-z0-9-]+\$|[a-z0-9_-]+(:[a-z0-9_-]+)*\$)\S{16,}$", re.I)
ROLE_KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
AUDIT_ACTION_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")


def _text(max_length: int = 255, **kwargs: Any) -> Text:
    return Text(validate=validate.Length(min=1, max=max_length), **kwargs)


AdminUserSchema = model_schema(
    AdminUser,
    name="AdminUserSchema",
    load_only=("password_hash",),
    dump_only=("last_login_at", "invited_by"),
    overrides={
        "email": Email(required=True),
        "name": _text(allow_none=True),
        "company": Text(validate=validate.Length(max=255)),
        "avatar_url": Url(allow_none=True, validate=validate.Length(max=2048)),
        "password_hash": Text(
            load_only=True,
            allow_none=True,
            validate=validate.Regexp(
                PASSWORD_HASH_RE, error="Must be a password hash, never a plain password."
            ),
        ),
    },
)
CreateAdminUserSchema = writable_schema(
    AdminUserSchema,
    name="CreateAdminUserSchema",
    required=("email",),
)

AdminRoleSchema = model_schema(
    AdminRole,
    name="AdminRoleSchema",
    overrides={
        "key": Text(
            required=True,
            validate=[
                validate.Length(min=1, max=100),
                validate.Regexp(ROLE_KEY_RE, error="Must be lower_snake_case."),
            ],
        ),
        "name": _text(required=True),
        "description": Text(allow_none=True, validate=validate.Length(max=1000)),
        "permissions": StringList(
            required=True,
            validate=validate.Length(max=500),
        ),
    },
)
UpsertAdminRoleSchema = writable_schema(
    AdminRoleSchema,
    name="UpsertAdminRoleSchema",
    required=("key", "name", "permissions"),
)

AdminUserRoleSchema = model_schema(AdminUserRole, name="AdminUserRoleSchema")

AdminAuditLogSchema = model_schema(
    AdminAuditLog,
    name="AdminAuditLogSchema",
    overrides={
        "action": Text(
            required=True,
            validate=[
                validate.Length(min=1, max=100),
                validate.Regexp(AUDIT_ACTION_RE, error="Must be UPPER_SNAKE_CASE."),
            ],
        ),
        "target_id": _text(allow_none=True),
        "reason": Text(allow_none=True, validate=validate.Length(max=2000)),
        "metadata": Json(allow_none=True),
        "ip": Text(allow_none=True, validate=validate.Length(max=64)),
        "user_agent": Text(allow_none=True, validate=validate.Length(max=1000)),
        "impersonation_session_id": _text(allow_none=True),
    },
)
AppendAdminAuditLogSchema = writable_schema(
    AdminAuditLogSchema,
    name="AppendAdminAuditLogSchema",
    required=("admin_user_id", "action", "target_type"),
)


# Write inputs: what ``data`` may hold (``total=False``: every key may be left out but the
# ``Required`` ones). Static types only — at run time any mapping is accepted and checked
# by the schema, which refuses unknown keys. tests/test_schemas_common.py keeps each one
# equal to its schema's fields. The call syntax, because ``Required`` inside a string
# annotation (``from __future__ import annotations``) is lost at run time on 3.11.


CreateAdminUserInput = TypedDict(
    "CreateAdminUserInput",
    {
        "email": Required[str],
        "name": str | None,
        "password_hash": str | None,
        "company": str,
        "status": AdminStatus,
        "avatar_url": str | None,
    },
    total=False,
)


class AdminUserDTO(TypedDict):
    id: AdminUserId
    email: str
    name: str | None
    company: str
    status: AdminStatus
    avatar_url: str | None
    created_at: str
    updated_at: str
    last_login_at: str | None
    invited_by: AdminUserId | None


class AdminRoleDTO(TypedDict):
    key: str
    name: str
    description: str | None
    permissions: list[str]
    created_at: str


class AdminUserRoleDTO(TypedDict):
    admin_user_id: AdminUserId
    role_key: str
    granted_by: AdminUserId | None
    granted_at: str


class AdminAuditLogDTO(TypedDict):
    id: AuditLogId
    admin_user_id: AdminUserId
    action: str
    target_type: AuditTargetType
    target_id: str | None
    reason: str | None
    metadata: Any
    ip: str | None
    user_agent: str | None
    impersonation_session_id: ImpersonationSessionId | None
    created_at: str


class AuditSummaryDTO(TypedDict):
    since: str
    until: str
    total: int
    by_action: dict[str, int]
    by_admin: dict[str, int]


admin_user_schema = AdminUserSchema()
create_admin_user_schema = CreateAdminUserSchema()
admin_role_schema = AdminRoleSchema()
upsert_admin_role_schema = UpsertAdminRoleSchema()
admin_user_role_schema = AdminUserRoleSchema()
admin_audit_log_schema = AdminAuditLogSchema()
append_admin_audit_log_schema = AppendAdminAuditLogSchema()

admin_user_dumper: Dumper[AdminUserDTO] = Dumper(admin_user_schema, AdminUser)
admin_role_dumper: Dumper[AdminRoleDTO] = Dumper(admin_role_schema, AdminRole)
admin_user_role_dumper: Dumper[AdminUserRoleDTO] = Dumper(admin_user_role_schema, AdminUserRole)
admin_audit_log_dumper: Dumper[AdminAuditLogDTO] = Dumper(admin_audit_log_schema, AdminAuditLog)

__all__ = [
    "CreateAdminUserInput",
    "AdminAuditLogDTO",
    "AdminAuditLogSchema",
    "AdminRoleDTO",
    "AdminRoleSchema",
    "AdminUserDTO",
    "AdminUserRoleDTO",
    "AdminUserRoleSchema",
    "AdminUserSchema",
    "AppendAdminAuditLogSchema",
    "AuditSummaryDTO",
    "CreateAdminUserSchema",
    "UpsertAdminRoleSchema",
]
