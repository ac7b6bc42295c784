"""Queries of a tenant's members: roles, removal, leaving, ownership transfer."""

from __future__ import annotations

from typing import Any

from datalayer.connection.replicas import replica_read
from datalayer.errors import PermissionDeniedError, ValidationError, error_boundary
from datalayer.models import TenantMember, User
from datalayer.queries.base import Page, keyset_page, read, write
from datalayer.queries.tenant._access import MANAGERS, OWNER, clear_active_tenant, lock_members
from datalayer.schemas.base import check_id, load
from datalayer.schemas.tenant import (
    TenantMemberDTO,
    TenantMemberWithUserDTO,
    tenant_member_dumper,
    update_tenant_member_schema,
)
from datalayer.types import MemberSubRole, Role, TenantId, UserId

_USER_COLUMNS = (User.name, User.email, User.image)


def _with_user(dto: TenantMemberDTO, extras: tuple[Any, ...]) -> TenantMemberWithUserDTO:
    name, email, image = extras
    return {**dto, "name": name, "email": email, "image": image}


def _scope(tenant_id: str, user_id: str) -> Any:
    return (TenantMember.tenant == tenant_id) & (TenantMember.user == user_id)


def _set_role(tenant_id: str, user_id: str, values: dict[str, Any]) -> TenantMemberDTO:
    query = (
        TenantMember.update(values)
        .where(_scope(tenant_id, user_id))
        .returning(*tenant_member_dumper.fields)
    )
    return tenant_member_dumper.written_one(query)  # the caller holds the row's lock


def _delete(tenant_id: str, user_id: str) -> TenantMemberDTO:
    query = (
        TenantMember.delete()
        .where(_scope(tenant_id, user_id))
        .returning(*tenant_member_dumper.fields)
    )
    member = tenant_member_dumper.written_one(query)  # the caller holds the row's lock
    clear_active_tenant(tenant_id, user_id)
    return member


@error_boundary
class TenantMemberQueries:
    """A tenant's members. Owners and admins manage them; a tenant always keeps an owner."""

    @staticmethod
    def find(tenant_id: TenantId, user_id: UserId) -> TenantMemberDTO | None:
        """Return the user's membership in the tenant, or None.

        Any caller: this is the membership check other code makes before acting for a
        user in a tenant.

        Returns:
            The membership (with ``role`` and ``member_role``), or None when the user is
            not a member (or the tenant or user does not exist).

        Raises:
            ValidationError: an id is not valid.
        """
        check_id("tenant_id", tenant_id)
        check_id("user_id", user_id)
        query = tenant_member_dumper.select().where(_scope(tenant_id, user_id))
        with read():
            return tenant_member_dumper.one(query)

    @staticmethod
    @replica_read
    def list_for_tenant(
        tenant_id: TenantId, *, limit: int = 50, cursor: str | None = None
    ) -> Page[TenantMemberWithUserDTO]:
        """Return a newest-first page of the tenant's members, each with the user's name, email, image.

        Trusted code, or code acting for a member of the tenant (check it first: this
        lists members' email addresses). Runs on a read replica when there is one.

        Returns:
            A page; ``items`` is empty when the tenant has no member or does not exist.

        Raises:
            ValidationError: ``tenant_id``, ``limit`` (1-1000) or ``cursor`` is not valid.
        """
        check_id("tenant_id", tenant_id)
        query = (
            tenant_member_dumper.select(*_USER_COLUMNS)
            .join(User, on=(TenantMember.user == User.id))
            .where(TenantMember.tenant == tenant_id)
        )
        return keyset_page(
            query,
            dumper=tenant_member_dumper,
            ts_field=TenantMember.joined_at,
            id_field=TenantMember.id,
            limit=limit,
            cursor=cursor,
            transform=_with_user,
            extra=len(_USER_COLUMNS),
        )

    @staticmethod
    def count_owners(tenant_id: TenantId) -> int:
        """Return how many owners the tenant has.

        Any caller.

        Returns:
            The count; 0 when the tenant does not exist.

        Raises:
            ValidationError: ``tenant_id`` is not a valid id.
        """
        check_id("tenant_id", tenant_id)
        query = TenantMember.select().where(
            (TenantMember.tenant == tenant_id) & (TenantMember.role == "owner")
        )
        with read():
            return int(query.count())

    @staticmethod
    def change_role(
        tenant_id: TenantId,
        user_id: UserId,
        actor_user_id: UserId,
        *,
        role: Role,
        member_role: MemberSubRole | None = None,
    ) -> TenantMemberDTO:
        """Give a member another role (and sub-role when given); the last owner stays owner.

        The actor must be an owner or an admin of the tenant, and an owner to give or take
        the ``owner`` role; nobody changes their own role.

        Returns:
            The changed membership.

        Raises:
            ValidationError: ``role`` (owner, admin, member), ``member_role`` or an id is
                not valid.
            PermissionDeniedError: the actor lacks the role, or changes their own.
            NotFoundError: the target is not a member, or the tenant does not exist.
            ConflictError: it would demote the tenant's last owner.
        """
        check_id("tenant_id", tenant_id)
        check_id("actor_user_id", actor_user_id)
        check_id("user_id", user_id)
        data = {"role": role} if member_role is None else {"role": role, "member_role": member_role}
        values = load(update_tenant_member_schema, data)
        if actor_user_id == user_id:
            raise PermissionDeniedError("nobody changes their own role")
        with write():
            locked = lock_members(tenant_id, actor_user_id, user_id)
            actor_role = locked.require(actor_user_id, MANAGERS)
            target_role = locked.member(user_id)
            if "owner" in (target_role, values["role"]) and actor_role != "owner":
                raise PermissionDeniedError("only an owner gives or takes the owner role")
            if values["role"] != "owner":
                locked.keep_an_owner(user_id)
            return _set_role(tenant_id, user_id, values)

    @staticmethod
    def remove(tenant_id: TenantId, user_id: UserId, actor_user_id: UserId) -> TenantMemberDTO:
        """Remove a member from the tenant; return the removed membership.

        The actor must be an owner or an admin of the tenant, and an owner to remove an
        owner. The removed user's active tenant is cleared when it was this one.

        Returns:
            The membership as it was.

        Raises:
            ValidationError: an id is not valid.
            PermissionDeniedError: the actor lacks the role.
            NotFoundError: the target is not a member, or the tenant does not exist.
            ConflictError: the target is the tenant's last owner.
        """
        check_id("tenant_id", tenant_id)
        check_id("actor_user_id", actor_user_id)
        check_id("user_id", user_id)
        with write():
            locked = lock_members(tenant_id, actor_user_id, user_id)
            actor_role = locked.require(actor_user_id, MANAGERS)
            if locked.member(user_id) == "owner" and actor_role != "owner":
                raise PermissionDeniedError("only an owner removes an owner")
            locked.keep_an_owner(user_id)
            return _delete(tenant_id, user_id)

    @staticmethod
    def leave(tenant_id: TenantId, user_id: UserId) -> TenantMemberDTO:
        """Leave the tenant; return the ended membership.

        Any caller acting for ``user_id`` (a member leaves by themselves). Their active
        tenant is cleared when it was this one.

        Returns:
            The membership as it was.

        Raises:
            ValidationError: an id is not valid.
            NotFoundError: the user is not a member of the tenant.
            ConflictError: the user is the tenant's last owner (transfer ownership first).
        """
        check_id("tenant_id", tenant_id)
        check_id("user_id", user_id)
        with write():
            locked = lock_members(tenant_id, user_id)
            locked.member(user_id)
            locked.keep_an_owner(user_id)
            return _delete(tenant_id, user_id)

    @staticmethod
    def transfer_ownership(
        tenant_id: TenantId, to_user_id: UserId, actor_user_id: UserId
    ) -> TenantMemberDTO:
        """Make another member the owner and the acting owner an admin; return the new owner.

        ``actor_user_id`` must be an owner of the tenant; ``to_user_id`` a member of it.

        Returns:
            The new owner's membership.

        Raises:
            ValidationError: an id is not valid, or both ids are the same.
            PermissionDeniedError: the actor is not an owner.
            NotFoundError: ``to_user_id`` is not a member, or the tenant does not exist.
        """
        check_id("tenant_id", tenant_id)
        check_id("to_user_id", to_user_id)
        check_id("actor_user_id", actor_user_id)
        if actor_user_id == to_user_id:
            raise ValidationError({"to_user_id": ["Must differ from actor_user_id."]})
        with write():
            locked = lock_members(tenant_id, actor_user_id, to_user_id)
            locked.require(actor_user_id, OWNER)
            locked.member(to_user_id)
            new_owner = _set_role(tenant_id, to_user_id, {"role": "owner"})
            _set_role(tenant_id, actor_user_id, {"role": "admin"})
            return new_owner


__all__ = ["TenantMemberQueries"]
