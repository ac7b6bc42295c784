"""DTOs of the admin console: its sessions, impersonation sessions, support flags and notes.

An admin session's ``token`` is loadable (``create`` takes it) but never dumped: no DTO
carries it, so it cannot reach a response or a log through one.
"""

from __future__ import annotations

from typing import Any, TypedDict

from marshmallow import ValidationError as SchemaError
from marshmallow import validate, validates_schema

from datalayer.models.admin_console import (
    NOTE_MAX,
    AdminFlag,
    AdminImpersonationSession,
    AdminSession,
    AdminTenantNote,
    AdminUserNote,
)
from datalayer.schemas.base import Dumper, Json, Text, model_schema, writable_schema
from datalayer.types import (
    AdminFlagId,
    AdminSessionId,
    AdminUserId,
    FlagTargetType,
    FlagType,
    ImpersonationEndReason,
    ImpersonationScope,
    ImpersonationSessionId,
    NoteId,
    TenantId,
    UserId,
)

SECRET_MAX = 8192
ID_MAX = 255


def _text(max_length: int, **kwargs: Any) -> Text:
    return Text(validate=validate.Length(min=1, max=max_length), **kwargs)


def _json_object(value: Any) -> None:
    if value is not None and not isinstance(value, dict):
        raise SchemaError("Must be a JSON object.")


AdminSessionSchema = model_schema(
    AdminSession,
    name="AdminSessionSchema",
    load_only=("token",),
    dump_only=("admin_user_id", "step_up_verified_at", "step_up_expires_at"),
    overrides={
        "token": Text(
            required=True, load_only=True, validate=validate.Length(min=1, max=SECRET_MAX)
        ),
        "ip_address": Text(allow_none=True, validate=validate.Length(max=64)),
        "user_agent": Text(allow_none=True, validate=validate.Length(max=2048)),
    },
)
CreateAdminSessionSchema = writable_schema(
    AdminSessionSchema,
    name="CreateAdminSessionSchema",
    only=("token", "expires_at", "ip_address", "user_agent"),
    required=("token", "expires_at"),
)

AdminImpersonationSessionSchema = model_schema(
    AdminImpersonationSession,
    name="AdminImpersonationSessionSchema",
    dump_only=("admin_user_id", "started_at", "expires_at", "ended_at", "end_reason"),
    overrides={
        # null once the user is deleted: the history outlives them
        "target_user_id": _text(ID_MAX, allow_none=True),
        "target_tenant_id": _text(ID_MAX, allow_none=True),
        "reason": _text(2000, required=True),
    },
)
# What ``ImpersonationQueries.start`` takes besides the acting admin and the ttl.
StartImpersonationSchema = writable_schema(
    AdminImpersonationSessionSchema,
    name="StartImpersonationSchema",
    only=("target_user_id", "target_tenant_id", "scope", "reason", "metadata"),
    required=("target_user_id", "reason"),
    overrides={
        "target_user_id": _text(ID_MAX, required=True),
        "metadata": Json(allow_none=True, validate=_json_object),
    },
)
# How a session ends (``end`` and ``expire_overdue`` set ended_at themselves).
EndImpersonationSchema = writable_schema(
    AdminImpersonationSessionSchema,
    name="EndImpersonationSchema",
    only=("end_reason",),
    required=("end_reason",),
    overrides={
        "end_reason": Text(
            required=True, validate=validate.OneOf(("manual", "expired", "revoked", "logout"))
        )
    },
)

AdminFlagSchema = model_schema(
    AdminFlag,
    name="AdminFlagSchema",
    dump_only=("created_by",),
    overrides={
        "target_id": _text(ID_MAX, required=True),
        "custom_label": _text(100, allow_none=True),
        "reason": _text(2000, required=True),
    },
)
_SetAdminFlagFields = writable_schema(
    AdminFlagSchema,
    name="_SetAdminFlagFields",
    only=("target_type", "target_id", "flag_type", "custom_label", "reason", "expires_at"),
    required=("target_type", "target_id", "flag_type", "reason"),
)


class SetAdminFlagSchema(_SetAdminFlagFields):  # type: ignore[misc,valid-type]  # a schema class built at run time
    """Set (create or renew) a flag: a ``custom`` flag needs a label, the others take none."""

    @validates_schema
    def _custom_label(self, data: dict[str, Any], **kwargs: Any) -> None:
        label = data.get("custom_label")
        if data.get("flag_type") == "custom" and not label:
            raise SchemaError("Required for a custom flag.", "custom_label")
        if data.get("flag_type") not in (None, "custom") and label is not None:
            raise SchemaError("Only a custom flag has a label.", "custom_label")


_NOTE = {"note": _text(NOTE_MAX, required=True)}
AdminUserNoteSchema = model_schema(
    AdminUserNote,
    name="AdminUserNoteSchema",
    dump_only=("user_id", "admin_user_id"),
    overrides=_NOTE,
)
CreateAdminUserNoteSchema = writable_schema(
    AdminUserNoteSchema, name="CreateAdminUserNoteSchema", only=("note",), required=("note",)
)
UpdateAdminUserNoteSchema = writable_schema(
    AdminUserNoteSchema, name="UpdateAdminUserNoteSchema", only=("note",), required=("note",)
)
AdminTenantNoteSchema = model_schema(
    AdminTenantNote,
    name="AdminTenantNoteSchema",
    dump_only=("tenant_id", "admin_user_id"),
    overrides={"note": _text(NOTE_MAX, required=True)},
)
CreateAdminTenantNoteSchema = writable_schema(
    AdminTenantNoteSchema, name="CreateAdminTenantNoteSchema", only=("note",), required=("note",)
)
UpdateAdminTenantNoteSchema = writable_schema(
    AdminTenantNoteSchema, name="UpdateAdminTenantNoteSchema", only=("note",), required=("note",)
)


class AdminSessionDTO(TypedDict):
    id: AdminSessionId
    admin_user_id: AdminUserId
    expires_at: str
    created_at: str
    updated_at: str
    ip_address: str | None
    user_agent: str | None
    step_up_verified_at: str | None
    step_up_expires_at: str | None


class AdminImpersonationSessionDTO(TypedDict):
    id: ImpersonationSessionId
    admin_user_id: AdminUserId
    target_user_id: UserId | None
    target_tenant_id: TenantId | None
    scope: ImpersonationScope
    reason: str
    started_at: str
    expires_at: str
    ended_at: str | None
    end_reason: ImpersonationEndReason | None
    metadata: Any


class AdminFlagDTO(TypedDict):
    id: AdminFlagId
    target_type: FlagTargetType
    target_id: str
    flag_type: FlagType
    custom_label: str | None
    reason: str
    created_by: AdminUserId
    created_at: str
    expires_at: str | None


class AdminUserNoteDTO(TypedDict):
    id: NoteId
    user_id: UserId
    admin_user_id: AdminUserId
    note: str
    created_at: str
    updated_at: str


class AdminTenantNoteDTO(TypedDict):
    id: NoteId
    tenant_id: TenantId
    admin_user_id: AdminUserId
    note: str
    created_at: str
    updated_at: str


admin_session_schema = AdminSessionSchema()
create_admin_session_schema = CreateAdminSessionSchema()
admin_impersonation_session_schema = AdminImpersonationSessionSchema()
start_impersonation_schema = StartImpersonationSchema()
end_impersonation_schema = EndImpersonationSchema()
admin_flag_schema = AdminFlagSchema()
set_admin_flag_schema = SetAdminFlagSchema()
admin_user_note_schema = AdminUserNoteSchema()
create_admin_user_note_schema = CreateAdminUserNoteSchema()
update_admin_user_note_schema = UpdateAdminUserNoteSchema()
admin_tenant_note_schema = AdminTenantNoteSchema()
create_admin_tenant_note_schema = CreateAdminTenantNoteSchema()
update_admin_tenant_note_schema = UpdateAdminTenantNoteSchema()

admin_session_dumper: Dumper[AdminSessionDTO] = Dumper(admin_session_schema, AdminSession)
admin_impersonation_session_dumper: Dumper[AdminImpersonationSessionDTO] = Dumper(
    admin_impersonation_session_schema, AdminImpersonationSession
)
admin_flag_dumper: Dumper[AdminFlagDTO] = Dumper(admin_flag_schema, AdminFlag)
admin_user_note_dumper: Dumper[AdminUserNoteDTO] = Dumper(admin_user_note_schema, AdminUserNote)
admin_tenant_note_dumper: Dumper[AdminTenantNoteDTO] = Dumper(
    admin_tenant_note_schema, AdminTenantNote
)

__all__ = [
    "AdminFlagDTO",
    "AdminFlagSchema",
    "AdminImpersonationSessionDTO",
    "AdminImpersonationSessionSchema",
    "AdminSessionDTO",
    "AdminSessionSchema",
    "AdminTenantNoteDTO",
    "AdminTenantNoteSchema",
    "AdminUserNoteDTO",
    "AdminUserNoteSchema",
    "CreateAdminSessionSchema",
    "CreateAdminTenantNoteSchema",
    "CreateAdminUserNoteSchema",
    "EndImpersonationSchema",
    "SetAdminFlagSchema",
    "StartImpersonationSchema",
    "UpdateAdminTenantNoteSchema",
    "UpdateAdminUserNoteSchema",
]
