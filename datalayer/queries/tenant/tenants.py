"""Queries of the tenant domain: tenants."""

from __future__ import annotations

from typing import Any, cast

from datalayer.connection.replicas import replica_read
from datalayer.errors import NotFoundError
from datalayer.models import Tenant, TenantMember, User
from datalayer.queries.base import read, write
from datalayer.queries.tenant._access import MANAGERS, OWNER, lock_members, require_role
from datalayer.schemas.base import check_id, load
from datalayer.schemas.tenant import (
    CreateTenantInput,
    TenantDTO,
    TenantWithRoleDTO,
    UpdateTenantInput,
    create_tenant_schema,
    tenant_dumper,
    update_tenant_schema,
)


class TenantQueries:
    """Tenants: created with an owner, changed by owners and admins, deleted by owners."""

    @staticmethod
    def find_by_id(tenant_id: str) -> TenantDTO | None:
        """Return the tenant with this id, or None."""
        check_id("tenant_id", tenant_id)
        with read():
            return tenant_dumper.one(tenant_dumper.select().where(Tenant.id == tenant_id))

    @staticmethod
    def create_with_owner(owner_user_id: str, data: CreateTenantInput) -> TenantDTO:
        """Create a tenant owned by the user; make it their active tenant if they had none."""
        check_id("owner_user_id", owner_user_id)
        values = load(create_tenant_schema, data)
        with write():
            query = Tenant.insert(**values).returning(*tenant_dumper.fields)
            tenant = tenant_dumper.written_one(query)
            TenantMember.insert(tenant=tenant["id"], user=owner_user_id, role="owner").execute()
            User.update(active_tenant=tenant["id"]).where(
                (User.id == owner_user_id) & User.active_tenant.is_null()
            ).execute()
        return tenant

    @staticmethod
    @replica_read
    def list_for_user(user_id: str) -> list[TenantWithRoleDTO]:
        """Return the tenants the user belongs to, each with the user's role, in joining order."""
        check_id("user_id", user_id)
        query = (
            tenant_dumper.select(TenantMember.role)
            .join(TenantMember, on=(TenantMember.tenant == Tenant.id))
            .where(TenantMember.user == user_id)
            .order_by(TenantMember.joined_at, TenantMember.id)
        )
        width = len(tenant_dumper.columns)
        with read():
            rows = cast("list[tuple[Any, ...]]", list(query.tuples()))
        return [{**tenant_dumper.row(values[:width]), "role": values[width]} for values in rows]

    @staticmethod
    def update(tenant_id: str, actor_user_id: str, data: UpdateTenantInput) -> TenantDTO:
        """Change the tenant's name or type (owners and admins)."""
        check_id("tenant_id", tenant_id)
        check_id("actor_user_id", actor_user_id)
        values = load(update_tenant_schema, data)
        with write():
            require_role(tenant_id, actor_user_id, MANAGERS)
            query = (
                Tenant.update(values).where(Tenant.id == tenant_id).returning(*tenant_dumper.fields)
            )
            rows = list(query.tuples().execute())
        if not rows:  # deleted meanwhile
            raise NotFoundError(f"tenant {tenant_id} not found")
        return tenant_dumper.row(rows[0])

    @staticmethod
    def delete(tenant_id: str, actor_user_id: str) -> None:
        """Delete the tenant and everything in it (owners only)."""
        check_id("tenant_id", tenant_id)
        check_id("actor_user_id", actor_user_id)
        with write():
            # The owner lock serializes this with member changes (and a second delete).
            lock_members(tenant_id, actor_user_id).require(actor_user_id, OWNER)
            Tenant.delete().where(Tenant.id == tenant_id).execute()


__all__ = ["TenantQueries"]
