"""Who may do what in a tenant: role checks and the owner lock every membership change takes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from datalayer.errors import ConflictError, DataLayerError, NotFoundError, PermissionDeniedError
from datalayer.models import Tenant, TenantMember, User
from datalayer.queries.base import for_update

MANAGERS = ("owner", "admin")
OWNER = ("owner",)


def denied(tenant_id: str, message: str) -> DataLayerError:
    """Return the error for an actor without the role: NotFoundError if the tenant is gone."""
    if not Tenant.select(Tenant.id).where(Tenant.id == tenant_id).exists():
        return NotFoundError(entity="tenant", id=tenant_id)
    return PermissionDeniedError(message)


def member_role(tenant_id: str, user_id: str) -> str | None:
    """Return the user's role in the tenant, or None when they are not a member."""
    query = TenantMember.select(TenantMember.role).where(
        (TenantMember.tenant == tenant_id) & (TenantMember.user == user_id)
    )
    role: str | None = query.scalar()
    return role


def require_role(tenant_id: str, user_id: str, roles: Iterable[str]) -> str:
    """Return the user's role if it is one of ``roles``; else raise (see ``denied``)."""
    roles = tuple(roles)
    role = member_role(tenant_id, user_id)
    if role not in roles:
        raise denied(tenant_id, f"this needs the role {' or '.join(roles)} in the tenant")
    return role


@dataclass(frozen=True)
class LockedMembers:
    """The roles of a tenant's owners and of the users an operation names, locked."""

    tenant_id: str
    roles: dict[str, str]
    owners: int

    def require(self, user_id: str, roles: tuple[str, ...]) -> str:
        """Return the actor's role if it is one of ``roles``; else raise."""
        role = self.roles.get(user_id)
        if role not in roles:
            raise denied(self.tenant_id, f"this needs the role {' or '.join(roles)} in the tenant")
        return role

    def member(self, user_id: str) -> str:
        """Return the role of a user the operation targets; NotFoundError if not a member."""
        role = self.roles.get(user_id)
        if role is None:
            raise NotFoundError(f"user {user_id} is not a member of tenant {self.tenant_id}")
        return role

    def keep_an_owner(self, user_id: str) -> None:
        """Refuse to take the owner role from ``user_id`` when they are the last owner."""
        if self.roles.get(user_id) == "owner" and self.owners <= 1:
            raise ConflictError("the tenant's last owner cannot leave, be removed or be demoted")


def lock_members(tenant_id: str, *user_ids: str) -> LockedMembers:
    """Lock the tenant's owner rows and the named users' rows; return their roles.

    Every change that could leave a tenant without an owner takes this lock before
    counting owners, so two such changes racing run one after the other: the second
    waits for the first and, as PostgreSQL re-reads a row it waited for, counts the
    owners that really remain. Rows are locked in id order, so lockers never deadlock.
    SQLite's single writer (BEGIN IMMEDIATE) serializes the same changes.
    """
    query = (
        TenantMember.select(TenantMember.user, TenantMember.role)
        .where(
            (TenantMember.tenant == tenant_id)
            & ((TenantMember.role == "owner") | TenantMember.user.in_(user_ids))
        )
        .order_by(TenantMember.id)
    )
    locked = for_update(query)
    rows = cast("list[tuple[str, str]]", list(locked.tuples()))
    owners = sum(1 for _, role in rows if role == "owner")
    return LockedMembers(tenant_id, dict(rows), owners)


def clear_active_tenant(tenant_id: str, user_id: str) -> None:
    """Unset the user's active tenant if it is this one (they are no longer a member)."""
    User.update(active_tenant=None).where(
        (User.id == user_id) & (User.active_tenant == tenant_id)
    ).execute()


__all__: list[str] = []
