"""The tenant domain's schemas and DTOs (no database needed)."""

from __future__ import annotations

import typing

import pytest

from datalayer import ValidationError
from datalayer.models.tenant import (
    INVITE_ROLES,
    INVITE_STATUSES,
    MEMBER_ROLES,
    MEMBER_SUB_ROLES,
    TENANT_TYPES,
)
from datalayer.schemas import tenant as schemas
from datalayer.schemas.base import load

PAIRS = [
    ("TenantSchema", "TenantDTO"),
    ("TenantWithRoleSchema", "TenantWithRoleDTO"),
    ("TenantMemberSchema", "TenantMemberDTO"),
    ("TenantMemberWithUserSchema", "TenantMemberWithUserDTO"),
    ("TenantInviteSchema", "TenantInviteDTO"),
    ("TenantActivityDailySchema", "TenantActivityDailyDTO"),
]


@pytest.mark.parametrize(("schema_name", "dto_name"), PAIRS)
def test_dto_keys_are_the_schemas_dumped_keys(schema_name: str, dto_name: str) -> None:
    schema = getattr(schemas, schema_name)()
    dto = getattr(schemas, dto_name)
    assert set(typing.get_type_hints(dto)) == set(schema.dump_fields)
    assert schema_name in schemas.__all__ and dto_name in schemas.__all__


def test_invite_token_hash_is_never_dumped_nor_loaded() -> None:
    assert "token_hash" not in schemas.TenantInviteSchema().dump_fields
    assert "token_hash" not in schemas.tenant_invite_dumper.columns
    with pytest.raises(ValidationError) as info:
        load(schemas.create_tenant_invite_schema, {"email": "a@b.co", "token_hash": "x"})
    assert "token_hash" in info.value.messages


def _one_of(schema: object, field: str) -> set[str]:
    validators = schema.fields[field].validators  # type: ignore[attr-defined]
    return {c for v in validators if hasattr(v, "choices") for c in v.choices}


def test_enumerations_come_from_the_models() -> None:
    assert _one_of(schemas.tenant_schema, "type") == set(TENANT_TYPES)
    assert _one_of(schemas.tenant_member_schema, "role") == set(MEMBER_ROLES)
    assert _one_of(schemas.tenant_member_schema, "member_role") == set(MEMBER_SUB_ROLES)
    assert _one_of(schemas.tenant_invite_schema, "role") == set(INVITE_ROLES)
    assert _one_of(schemas.tenant_invite_schema, "status") == set(INVITE_STATUSES)


def test_tenant_name_is_1_to_100_characters() -> None:
    create = schemas.create_tenant_schema
    assert load(create, {"name": "x" * 100}) == {"name": "x" * 100}
    for bad in ("", "x" * 101, 5, None):
        with pytest.raises(ValidationError) as info:
            load(create, {"name": bad})
        assert "name" in info.value.messages
    assert load(schemas.update_tenant_schema, {}) == {}


def test_invite_email_is_trimmed_lowercased_and_checked() -> None:
    create = schemas.create_tenant_invite_schema
    assert load(create, {"email": " A@Example.COM "}) == {"email": "a@example.com"}
    with pytest.raises(ValidationError) as info:
        load(create, {"email": "nope"})
    assert "email" in info.value.messages
