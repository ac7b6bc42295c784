"""tenant: tenants, their members, invites and daily activity rollups."""

from __future__ import annotations

import datetime as dt
from typing import get_args

import peewee as pw

from datalayer.models.auth import User
from datalayer.models.base import (
    NOW,
    ZERO,
    BaseModel,
    ServerDefault,
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
from datalayer.types import InviteRole, InviteStatus, MemberSubRole, Role, TenantType

TENANT_TYPES: tuple[TenantType, ...] = get_args(TenantType)
MEMBER_ROLES: tuple[Role, ...] = get_args(Role)
MEMBER_SUB_ROLES: tuple[MemberSubRole, ...] = get_args(MemberSubRole)
INVITE_ROLES: tuple[InviteRole, ...] = get_args(InviteRole)
INVITE_STATUSES: tuple[InviteStatus, ...] = get_args(InviteStatus)
INVITE_TTL = dt.timedelta(days=7)


def _invite_expiry() -> dt.datetime:
    return utcnow() + INVITE_TTL


class Tenant(BaseModel):
    id = id_field()
    name = pw.TextField()
    type = pw.TextField(
        choices=pairs(TENANT_TYPES), default="group", constraints=[text_default("group")]
    )
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        table_name = "tenants"
        constraints = [
            check_constraint("tenants_name_length_check", "length(name) BETWEEN 1 AND 100"),
            check_constraint("tenants_type_check", one_of("type", TENANT_TYPES)),
        ]


class TenantMember(BaseModel):
    id = id_field()
    tenant = pw.ForeignKeyField(
        Tenant, column_name="tenant_id", on_delete="CASCADE", backref="members", index=False
    )
    user = pw.ForeignKeyField(
        User, column_name="user_id", on_delete="CASCADE", backref="memberships"
    )
    role = pw.TextField(
        choices=pairs(MEMBER_ROLES), default="member", constraints=[text_default("member")]
    )
    member_role = pw.TextField(
        choices=pairs(MEMBER_SUB_ROLES),
        null=True,
        default="contributor",
        constraints=[text_default("contributor")],
    )
    joined_at = TimestampTZField(default=utcnow, constraints=[NOW])
    updated_at = updated_at()

    class Meta:
        table_name = "tenant_members"
        indexes = ((("tenant", "user"), True),)
        constraints = [
            check_constraint("tenant_members_role_check", one_of("role", MEMBER_ROLES)),
            check_constraint(
                "tenant_members_member_role_check",
                one_of("member_role", MEMBER_SUB_ROLES, nullable=True),
            ),
        ]


# Member pages of a tenant, newest first.
TenantMember.add_index(
    TenantMember.index(
        TenantMember.tenant,
        TenantMember.joined_at,
        TenantMember.id,
        name="tenant_members_tenant_joined_idx",
    )
)


class TenantInvite(BaseModel):
    id = id_field()
    tenant = pw.ForeignKeyField(
        Tenant, column_name="tenant_id", on_delete="CASCADE", backref="invites"
    )
    invited_by = pw.ForeignKeyField(
        User,
        column_name="invited_by",
        on_delete="CASCADE",
        backref="sent_invites",
        object_id_name="invited_by_id",
    )
    email = pw.TextField()
    role = pw.TextField(
        choices=pairs(INVITE_ROLES), default="member", constraints=[text_default("member")]
    )
    token_hash = pw.TextField(unique=True)
    status = pw.TextField(
        choices=pairs(INVITE_STATUSES), default="pending", constraints=[text_default("pending")]
    )
    expires_at = TimestampTZField(
        default=_invite_expiry,
        constraints=[
            ServerDefault(
                "(now() + interval '7 days')",
                "(strftime('%Y-%m-%d %H:%M:%f000+00:00', 'now', '+7 days'))",
            )
        ],
    )
    accepted_at = TimestampTZField(null=True)
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        table_name = "tenant_invites"
        constraints = [
            check_constraint("tenant_invites_role_check", one_of("role", INVITE_ROLES)),
            check_constraint("tenant_invites_status_check", one_of("status", INVITE_STATUSES)),
        ]


TenantInvite.add_index(
    TenantInvite.index(
        TenantInvite.tenant,
        TenantInvite.email,
        unique=True,
        where=pw.SQL("status = 'pending'"),
        name="tenant_invites_pending_email_uniq",
    )
)


class TenantActivityDaily(BaseModel):
    id = id_field()
    tenant = pw.ForeignKeyField(
        Tenant, column_name="tenant_id", on_delete="CASCADE", backref="activity", index=False
    )
    date = pw.DateField()
    active_users = pw.IntegerField(default=0, constraints=[ZERO])
    event_count = pw.IntegerField(default=0, constraints=[ZERO])
    new_members = pw.IntegerField(default=0, constraints=[ZERO])
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        table_name = "tenant_activity_daily"
        indexes = ((("tenant", "date"), True),)
