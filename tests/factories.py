"""Small factories: plain functions that insert rows through the models."""

from __future__ import annotations

import itertools
from typing import Any

from datalayer.models import Tenant, TenantMember, User

_seq = itertools.count(1)


def make_user(**fields: Any) -> User:
    """Insert a user with a unique email."""
    n = next(_seq)
    fields.setdefault("name", f"User {n}")
    fields.setdefault("email", f"user{n}-{id(fields)}@example.com")
    return User.create(**fields)


def make_tenant(owner: User | None = None, **fields: Any) -> Tenant:
    """Insert a tenant, with ``owner`` as its owner member when given."""
    fields.setdefault("name", f"Tenant {next(_seq)}")
    tenant = Tenant.create(**fields)
    if owner is not None:
        add_member(tenant, owner, role="owner")
    return tenant


def add_member(tenant: Tenant, user: User, role: str = "member", **fields: Any) -> TenantMember:
    """Insert a membership."""
    return TenantMember.create(tenant=tenant, user=user, role=role, **fields)
