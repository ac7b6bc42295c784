"""Queries of the tenant domain: tenants, members, invites, daily activity."""

from __future__ import annotations

from datalayer.queries.tenant.activity import TenantActivityQueries
from datalayer.queries.tenant.invites import TenantInviteQueries
from datalayer.queries.tenant.members import TenantMemberQueries
from datalayer.queries.tenant.tenants import TenantQueries

__all__ = [
    "TenantActivityQueries",
    "TenantInviteQueries",
    "TenantMemberQueries",
    "TenantQueries",
]
