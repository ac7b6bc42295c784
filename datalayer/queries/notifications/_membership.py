"""Tenant membership, as the notifications domain checks it (read off the models: query
domains do not import each other)."""

from __future__ import annotations

from typing import cast

from datalayer.errors import DataLayerError, NotFoundError, PermissionDeniedError
from datalayer.models import Tenant, TenantMember


def require_members(tenant_id: str, *user_ids: str, who: tuple[str, ...]) -> None:
    """Refuse unless every one of ``user_ids`` belongs to the tenant.

    ``who`` names each user in the error (``"recipient"``, ``"actor"``...). One query.
    NotFoundError when the tenant does not exist, PermissionDeniedError otherwise.
    """
    query = TenantMember.select(TenantMember.user).where(
        (TenantMember.tenant == tenant_id) & TenantMember.user.in_(sorted(set(user_ids)))
    )
    members = {row[0] for row in cast("list[tuple[str]]", list(query.tuples()))}
    for user_id, name in zip(user_ids, who, strict=True):
        if user_id not in members:
            raise _refusal(tenant_id, f"the {name} is not a member of the tenant")


def _refusal(tenant_id: str, message: str) -> DataLayerError:
    if not Tenant.select(Tenant.id).where(Tenant.id == tenant_id).exists():
        return NotFoundError(entity="tenant", id=tenant_id)
    return PermissionDeniedError(message)


__all__ = ["require_members"]
