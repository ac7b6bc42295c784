"""Support flags on users and tenants (vip, at_risk, do_not_contact, ...), which may expire.

One flag per (target, flag type): ``set`` is an ``INSERT ... ON CONFLICT DO UPDATE`` on
that unique key, so setting a flag again (also concurrently) renews its reason, label
and expiry instead of adding a second one. An expired flag is left out of every list
and comes back to life when set again. Set and clear are audited in their transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeGuard

import peewee

from datalayer import arguments
from datalayer.errors import NotFoundError, ValidationError, error_boundary
from datalayer.models import AdminFlag, Tenant, User
from datalayer.models.admin_console import FLAG_TARGET_TYPES, FLAG_TYPES
from datalayer.queries.admin._audit import audit
from datalayer.queries.admin_rights import TARGET_WRITE, require_admin
from datalayer.queries.base import Page, keyset_page, read, write
from datalayer.schemas.admin_console import AdminFlagDTO, admin_flag_dumper, set_admin_flag_schema
from datalayer.schemas.base import check_id, check_now, load, require
from datalayer.types import AdminUserId, FlagTargetType, FlagType, TenantId, UserId

F = AdminFlag
TARGETS: dict[str, Any] = {"user": User, "tenant": Tenant}


def _is_target_type(value: object) -> TypeGuard[FlagTargetType]:
    return value in FLAG_TARGET_TYPES


def _is_flag_type(value: object) -> TypeGuard[FlagType]:
    return value in FLAG_TYPES


def _target_type(value: Any) -> FlagTargetType:
    return require(
        "target_type", value, _is_target_type, f"Must be one of: {', '.join(FLAG_TARGET_TYPES)}."
    )


def _flag_type(value: Any) -> FlagType:
    return require("flag_type", value, _is_flag_type, f"Must be one of: {', '.join(FLAG_TYPES)}.")


def _unexpired(now: dt.datetime) -> Any:
    return F.expires_at.is_null() | (F.expires_at > now)


def _require_target(target_type: str, target_id: str) -> None:
    model = TARGETS[target_type]
    if not model.select(model.id).where(model.id == target_id).exists():
        raise NotFoundError(entity=target_type, id=target_id)


@error_boundary
class AdminFlagQueries:
    """Flags an admin puts on a user or a tenant, each at most once per type."""

    @staticmethod
    def set(  # noqa: A003 - the spec's name
        target_type: FlagTargetType,
        target_id: UserId | TenantId,
        actor_admin_id: AdminUserId,
        *,
        flag_type: FlagType,
        reason: str,
        custom_label: str | None = None,
        expires_at: dt.datetime | None = None,
    ) -> AdminFlagDTO:
        """Flag the target (audited USER_FLAG_SET / TENANT_FLAG_SET); setting the same flag
        type again updates its reason, label and expiry. ``custom`` needs a label.

        The actor needs ``users:write`` on a user, ``tenants:write`` on a tenant.

        Returns:
            The flag as it is now.

        Raises:
            ValidationError: ``target_type`` (user, tenant), ``flag_type``, ``reason``,
                ``custom_label``, an ``expires_at`` not in the future, or an id is not
                valid; nothing was written.
            PermissionDeniedError: the actor is not an active admin with that permission.
            NotFoundError: the target does not exist.
        """
        values = load(
            set_admin_flag_schema,
            {
                "target_type": target_type,
                "target_id": target_id,
                "flag_type": flag_type,
                "reason": reason,
                "custom_label": custom_label,
                "expires_at": expires_at,
            },
        )
        check_id("actor_admin_id", actor_admin_id)
        now = check_now(None)
        if values.get("expires_at") is not None and values["expires_at"] <= now:
            raise ValidationError({"expires_at": ["Must be in the future."]})
        renewed = {
            F.reason: peewee.EXCLUDED.reason,
            F.custom_label: peewee.EXCLUDED.custom_label,
            F.expires_at: peewee.EXCLUDED.expires_at,
        }
        query = F.insert(
            created_by=actor_admin_id, created_at=now, **{"expires_at": None, **values}
        ).on_conflict(conflict_target=[F.target_type, F.target_id, F.flag_type], update=renewed)
        with write():
            require_admin(actor_admin_id, TARGET_WRITE[values["target_type"]])
            _require_target(values["target_type"], values["target_id"])
            row = admin_flag_dumper.written_one(query)
            audit(
                actor_admin_id,
                f"{row['target_type'].upper()}_FLAG_SET",
                row["target_type"],
                row["target_id"],
                reason=row["reason"],
                metadata={
                    "flag_id": row["id"],
                    "flag_type": row["flag_type"],
                    "custom_label": row["custom_label"],
                    "expires_at": row["expires_at"],
                },
            )
        return row

    @staticmethod
    def clear(
        target_type: FlagTargetType, target_id: UserId | TenantId, actor_admin_id: AdminUserId, *, flag_type: FlagType
    ) -> bool:
        """Remove the flag (audited USER_FLAG_REMOVE / TENANT_FLAG_REMOVE); False when the
        target had none of that type.

        Back-office code acting as ``actor_admin_id``.

        Returns:
            True when a flag was removed; False when the target had none of that type.

        Raises:
            ValidationError: ``target_type``, ``flag_type`` or an id is not valid.
            NotFoundError: the actor does not exist.
        """
        target_type = _target_type(target_type)
        check_id("target_id", target_id)
        flag_type = _flag_type(flag_type)
        check_id("actor_admin_id", actor_admin_id)
        query = (
            F.delete()
            .where(
                (F.target_type == target_type)
                & (F.target_id == target_id)
                & (F.flag_type == flag_type)
            )
            .returning(F.id)
        )
        with write():
            require_admin(actor_admin_id, TARGET_WRITE[target_type])
            rows = list(query.tuples().execute())
            if rows:
                audit(
                    actor_admin_id,
                    f"{target_type.upper()}_FLAG_REMOVE",
                    target_type,
                    target_id,
                    metadata={"flag_id": rows[0][0], "flag_type": flag_type},
                )
        return bool(rows)

    @staticmethod
    def list_for(
        target_type: FlagTargetType, target_id: UserId | TenantId, *, now: dt.datetime | None = None
    ) -> list[AdminFlagDTO]:
        """Return the target's flags that have not expired at ``now``, newest first.

        Back-office code (the console's user and tenant pages).

        Returns:
            The flags; an empty list when the target has none (or does not exist).

        Raises:
            ValidationError: ``target_type``, the id or ``now`` is not valid.
        """
        target_type = _target_type(target_type)
        check_id("target_id", target_id)
        now = check_now(now)
        query = (
            admin_flag_dumper.select()
            .where((F.target_type == target_type) & (F.target_id == target_id) & _unexpired(now))
            .order_by(F.created_at.desc(), F.id.desc())
        )
        with read():
            return admin_flag_dumper.many(query)

    @staticmethod
    def list_by_type(
        *,
        flag_type: FlagType,
        limit: int = 50,
        cursor: str | None = None,
        now: dt.datetime | None = None,
    ) -> Page[AdminFlagDTO]:
        """Return a newest-first page of the unexpired flags of this type (every target).

        Back-office code (e.g. every ``at_risk`` user and tenant).

        Returns:
            A page; ``items`` is empty when no target carries the flag.

        Raises:
            ValidationError: ``flag_type``, ``limit`` (1-1000), ``cursor`` or ``now`` is
                not valid.
        """
        if cursor is not None:  # a forged cursor is named whatever else is wrong
            arguments.cursor(cursor)
        flag_type = _flag_type(flag_type)
        now = check_now(now)
        query = admin_flag_dumper.select().where((F.flag_type == flag_type) & _unexpired(now))
        return keyset_page(
            query,
            dumper=admin_flag_dumper,
            ts_field=F.created_at,
            id_field=F.id,
            limit=limit,
            cursor=cursor,
        )


__all__ = ["AdminFlagQueries"]
