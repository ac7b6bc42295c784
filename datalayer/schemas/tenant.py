"""DTOs of the tenant domain: tenants, their members, invites and daily activity rollups."""

from __future__ import annotations

from typing import Required, TypedDict

from marshmallow import validate

from datalayer.models import Tenant, TenantActivityDaily, TenantInvite, TenantMember
from datalayer.models.tenant import MEMBER_ROLES
from datalayer.schemas.base import (
    Dumper,
    Email,
    Int4,
    Text,
    model_schema,
    writable_schema,
)
from datalayer.types import (
    InviteRole,
    InviteStatus,
    MemberSubRole,
    Role,
    TenantActivityId,
    TenantId,
    TenantInviteId,
    TenantMemberId,
    TenantType,
    UserId,
)

TenantSchema = model_schema(
    Tenant,
    name="TenantSchema",
    overrides={"name": Text(required=True, validate=validate.Length(min=1, max=100))},
)
CreateTenantSchema = writable_schema(
    TenantSchema, name="CreateTenantSchema", required=("name",)
)
UpdateTenantSchema = writable_schema(TenantSchema, name="UpdateTenantSchema")
# A tenant as one of its members sees it in their list: with the member's role.
TenantWithRoleSchema = model_schema(
    Tenant,
    name="TenantWithRoleSchema",
    overrides={"role": Text(dump_only=True, validate=validate.OneOf(MEMBER_ROLES))},
)

TenantMemberSchema = model_schema(
    TenantMember, name="TenantMemberSchema", dump_only=("tenant_id", "user_id", "joined_at")
)
CreateTenantMemberSchema = writable_schema(
    TenantMemberSchema, name="CreateTenantMemberSchema"
)
UpdateTenantMemberSchema = writable_schema(
    TenantMemberSchema,
    name="UpdateTenantMemberSchema",
    required=("role",),
)
# A member as the tenant's member list shows them: with the user's name, email and image.
TenantMemberWithUserSchema = model_schema(
    TenantMember,
    name="TenantMemberWithUserSchema",
    dump_only=("tenant_id", "user_id", "joined_at"),
    overrides={
        "name": Text(dump_only=True),
        "email": Email(dump_only=True),
        "image": Text(dump_only=True, allow_none=True),
    },
)

# token_hash is never dumped: the plaintext token is returned once by create(), and the
# hash is written by the query module itself, never taken from a caller.
TenantInviteSchema = model_schema(
    TenantInvite,
    name="TenantInviteSchema",
    secret=("token_hash",),
    dump_only=("tenant_id", "invited_by", "status", "expires_at", "accepted_at"),
    overrides={"email": Email(required=True)},
)
CreateTenantInviteSchema = writable_schema(
    TenantInviteSchema, name="CreateTenantInviteSchema", required=("email",)
)

TenantActivityDailySchema = model_schema(
    TenantActivityDaily, name="TenantActivityDailySchema", dump_only=("tenant_id",)
)
# record() adds these amounts to the day's counters: none may be negative.
CreateTenantActivityDailySchema = writable_schema(
    TenantActivityDailySchema,
    name="CreateTenantActivityDailySchema",
    required=("date",),
    overrides={
        name: Int4(required=True, validate=validate.Range(min=0))
        for name in ("event_count", "active_users", "new_members")
    },
)


# Write inputs: what ``data`` may hold (``total=False``: every key may be left out but the
# ``Required`` ones). Static types only — at run time any mapping is accepted and checked
# by the schema, which refuses unknown keys. tests/test_schemas_common.py keeps each one
# equal to its schema's fields. The call syntax, because ``Required`` inside a string
# annotation (``from __future__ import annotations``) is lost at run time on 3.11.


CreateTenantInput = TypedDict(
    "CreateTenantInput",
    {
        "name": Required[str],
        "type": TenantType,
    },
    total=False,
)


UpdateTenantInput = TypedDict(
    "UpdateTenantInput",
    {
        "name": str,
        "type": TenantType,
    },
    total=False,
)


class TenantDTO(TypedDict):
    id: TenantId
    name: str
    type: TenantType
    created_at: str
    updated_at: str


class TenantWithRoleDTO(TenantDTO):
    role: str


class TenantMemberDTO(TypedDict):
    id: TenantMemberId
    tenant_id: TenantId
    user_id: UserId
    role: Role
    member_role: MemberSubRole | None
    joined_at: str
    updated_at: str


class TenantMemberWithUserDTO(TenantMemberDTO):
    name: str
    email: str
    image: str | None


class TenantInviteDTO(TypedDict):
    id: TenantInviteId
    tenant_id: TenantId
    invited_by: UserId
    email: str
    role: InviteRole
    status: InviteStatus
    expires_at: str
    accepted_at: str | None
    created_at: str
    updated_at: str


class TenantActivityDailyDTO(TypedDict):
    id: TenantActivityId
    tenant_id: TenantId
    date: str
    active_users: int
    event_count: int
    new_members: int
    created_at: str
    updated_at: str


# Built once, at import: the instances the query modules use.
tenant_schema = TenantSchema()
create_tenant_schema = CreateTenantSchema()
update_tenant_schema = UpdateTenantSchema()
tenant_with_role_schema = TenantWithRoleSchema()
tenant_member_schema = TenantMemberSchema()
create_tenant_member_schema = CreateTenantMemberSchema()
update_tenant_member_schema = UpdateTenantMemberSchema()
tenant_member_with_user_schema = TenantMemberWithUserSchema()
tenant_invite_schema = TenantInviteSchema()
create_tenant_invite_schema = CreateTenantInviteSchema()
tenant_activity_daily_schema = TenantActivityDailySchema()
create_tenant_activity_daily_schema = CreateTenantActivityDailySchema()

tenant_dumper: Dumper[TenantDTO] = Dumper(tenant_schema, Tenant)
tenant_member_dumper: Dumper[TenantMemberDTO] = Dumper(tenant_member_schema, TenantMember)
tenant_invite_dumper: Dumper[TenantInviteDTO] = Dumper(tenant_invite_schema, TenantInvite)
tenant_activity_daily_dumper: Dumper[TenantActivityDailyDTO] = Dumper(tenant_activity_daily_schema, TenantActivityDaily)

__all__ = [
    "CreateTenantInput",
    "UpdateTenantInput",
    "CreateTenantActivityDailySchema",
    "CreateTenantInviteSchema",
    "CreateTenantMemberSchema",
    "CreateTenantSchema",
    "TenantActivityDailyDTO",
    "TenantActivityDailySchema",
    "TenantDTO",
    "TenantInviteDTO",
    "TenantInviteSchema",
    "TenantMemberDTO",
    "TenantMemberSchema",
    "TenantMemberWithUserDTO",
    "TenantMemberWithUserSchema",
    "TenantSchema",
    "TenantWithRoleDTO",
    "TenantWithRoleSchema",
    "UpdateTenantMemberSchema",
    "UpdateTenantSchema",
]
