"""Queries of the tenant domain: tenants."""

from __future__ import annotations

from typing import Any, cast

from datalayer.connection.replicas import replica_read
from datalayer.errors import NotFoundError, error_boundary
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
from datalayer.types import TenantId, UserId


@error_boundary
class TenantQueries:
    """Tenants: created with an owner, changed by owners and admins, deleted by owners."""

    @staticmethod
    def find_by_id(tenant_id: TenantId) -> TenantDTO | None:
        """Return the tenant with this id, or None.

        Trusted code: it checks no membership (code acting for a user checks
        ``TenantMemberQueries.find`` first, or uses ``list_for_user``).

        Returns:
            The tenant, or None when none has this id.

        Raises:
            ValidationError: ``tenant_id`` is not a valid id.
        """
        check_id("tenant_id", tenant_id)
        with read():
            return tenant_dumper.one(tenant_dumper.select().where(Tenant.id == tenant_id))

    @staticmethod
    def create_with_owner(owner_user_id: UserId, data: CreateTenantInput) -> TenantDTO:
        """Create a tenant owned by the user; make it their active tenant if they had none.

        Any caller acting for ``owner_user_id``. The tenant and its first membership
        (``owner``) are written in one transaction.

        Returns:
            The new tenant.

        Raises:
            ValidationError: ``data`` (``name`` 1-255 characters, ``type`` one of team,
                organization, group, family) or the id is not valid; nothing was written.
            NotFoundError: the user does not exist.
        """
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
    def list_for_user(user_id: UserId) -> list[TenantWithRoleDTO]:
        """Return the tenants the user belongs to, each with the user's role, in joining order.

        Any caller acting for ``user_id``. Runs on a read replica when there is one.

        Returns:
            The tenants, each with ``role``; an empty list when the user belongs to none.

        Raises:
            ValidationError: ``user_id`` is not a valid id.
        """
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
    def update(tenant_id: TenantId, actor_user_id: UserId, data: UpdateTenantInput) -> TenantDTO:
        """Change the tenant's name or type (owners and admins).

        The actor (``actor_user_id``) must be an owner or an admin of the tenant.

        Returns:
            The changed tenant.

        Raises:
            ValidationError: ``data`` or an id is not valid; nothing was written.
            PermissionDeniedError: the actor is a plain member or not a member.
            NotFoundError: the tenant does not exist (or was deleted meanwhile).
        """
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
            raise NotFoundError(entity="tenant", id=tenant_id)
        return tenant_dumper.row(rows[0])

    @staticmethod
    def delete(tenant_id: TenantId, actor_user_id: UserId) -> None:
        """Delete the tenant and everything in it (owners only).

        The actor (``actor_user_id``) must be an owner. Memberships, invites, todos,
        notifications, subscriptions and activity of the tenant go with it, in one
        transaction; members whose active tenant it was have none afterwards.

        Returns:
            None.

        Raises:
            ValidationError: an id is not valid.
            PermissionDeniedError: the actor is not an owner of the tenant.
            NotFoundError: the tenant does not exist.
        """
        check_id("tenant_id", tenant_id)
        check_id("actor_user_id", actor_user_id)
        with write():
            # The owner lock serializes this with member changes (and a second delete).
            lock_members(tenant_id, actor_user_id).require(actor_user_id, OWNER)
            Tenant.delete().where(Tenant.id == tenant_id).execute()


__all__ = ["TenantQueries"]
