"""Admins' notes on users (admin_user_notes) and tenants (admin_tenant_notes).

A note is edited by its author only; it is deleted by its author or by an admin holding
``admin_roles:write``. Adding, editing and deleting are audited (USER_NOTE_ADD,
TENANT_NOTE_EDIT, ...) in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import marshmallow

from datalayer import arguments
from datalayer.errors import NotFoundError, PermissionDeniedError, error_boundary
from datalayer.models import AdminTenantNote, AdminUserNote
from datalayer.models.base import utcnow
from datalayer.queries.admin._audit import audit
from datalayer.queries.admin_rights import TARGET_WRITE, acting_admin, require_admin
from datalayer.queries.base import Page, keyset_page, write
from datalayer.schemas.admin_console import (
    AdminTenantNoteDTO,
    AdminUserNoteDTO,
    admin_tenant_note_dumper,
    admin_user_note_dumper,
    create_admin_tenant_note_schema,
    create_admin_user_note_schema,
    update_admin_tenant_note_schema,
    update_admin_user_note_schema,
)
from datalayer.schemas.base import Dumper, check_id, load, require
from datalayer.types import AdminUserId, FlagTargetType, NoteId, TenantId, UserId

MODERATE = "admin_roles:write"  # deletes another admin's note


@dataclass(frozen=True)
class _Kind:
    """One of the two note tables."""

    model: Any
    target: Any  # the FK field naming the user or the tenant
    dumper: Dumper[Any]
    create: marshmallow.Schema
    update: marshmallow.Schema
    action: str  # the audit action's prefix


KINDS = {
    "user": _Kind(
        AdminUserNote,
        AdminUserNote.user,
        admin_user_note_dumper,
        create_admin_user_note_schema,
        update_admin_user_note_schema,
        "USER_NOTE",
    ),
    "tenant": _Kind(
        AdminTenantNote,
        AdminTenantNote.tenant,
        admin_tenant_note_dumper,
        create_admin_tenant_note_schema,
        update_admin_tenant_note_schema,
        "TENANT_NOTE",
    ),
}
NoteDTO = AdminUserNoteDTO | AdminTenantNoteDTO


def _kind(target_type: Any) -> _Kind:
    require("target_type", target_type, lambda v: v in KINDS, "Must be one of: user, tenant.")
    return KINDS[target_type]


@error_boundary
class AdminNoteQueries:
    """Notes admins keep about a user or a tenant (``target_type`` 'user' or 'tenant')."""

    @staticmethod
    def add(target_type: FlagTargetType, target_id: UserId | TenantId, actor_admin_id: AdminUserId, *, note: str) -> NoteDTO:
        """Add a note (audited *_NOTE_ADD); NotFoundError when the target or admin is unknown.

        Back-office code acting as ``actor_admin_id`` (the note's author).

        Returns:
            The new note.

        Raises:
            ValidationError: ``target_type`` (user, tenant), ``note`` or an id is not
                valid; nothing was written.
            NotFoundError: the target or the admin does not exist.
        """
        kind = _kind(target_type)
        check_id("target_id", target_id)
        check_id("actor_admin_id", actor_admin_id)
        values = load(kind.create, {"note": note})
        query = kind.model.insert(
            {kind.target: target_id, kind.model.admin_user: actor_admin_id, **values}
        )
        with write():
            require_admin(actor_admin_id, TARGET_WRITE[target_type])
            row = kind.dumper.written_one(query)
            audit(
                actor_admin_id,
                f"{kind.action}_ADD",
                target_type,
                target_id,
                metadata={"note_id": row["id"]},
            )
        return cast(NoteDTO, row)

    @staticmethod
    def edit(target_type: FlagTargetType, note_id: NoteId, actor_admin_id: AdminUserId, *, note: str) -> NoteDTO:
        """Replace the note's text (audited *_NOTE_EDIT). PermissionDeniedError unless
        ``actor_admin_id`` wrote it; NotFoundError when there is no such note.

        Back-office code acting as ``actor_admin_id``, the note's author.

        Returns:
            The changed note.

        Raises:
            ValidationError: ``target_type``, ``note`` or an id is not valid.
            PermissionDeniedError: the actor did not write the note.
            NotFoundError: no note has this id.
        """
        kind = _kind(target_type)
        check_id("note_id", note_id)
        check_id("actor_admin_id", actor_admin_id)
        values = load(kind.update, {"note": note})
        model = kind.model
        query = model.update(note=values["note"], updated_at=utcnow()).where(
            (model.id == note_id) & (model.admin_user == actor_admin_id)
        )
        with write():
            acting_admin(actor_admin_id)
            row = kind.dumper.written(query)
            if row is None:
                if model.select(model.id).where(model.id == note_id).exists():
                    raise PermissionDeniedError("only its author edits a note")
                raise NotFoundError(entity=f"{target_type}_note", id=note_id)
            audit(
                actor_admin_id,
                f"{kind.action}_EDIT",
                target_type,
                row[kind.target.column_name],
                metadata={"note_id": note_id},
            )
        return cast(NoteDTO, row)

    @staticmethod
    def delete(target_type: FlagTargetType, note_id: NoteId, actor_admin_id: AdminUserId) -> bool:
        """Delete the note (audited *_NOTE_DELETE); False when there is none. Its author,
        or an admin with ``admin_roles:write``; anyone else gets PermissionDeniedError.

        Returns:
            True when it was deleted; False when no note has this id.

        Raises:
            ValidationError: ``target_type`` or an id is not valid.
            PermissionDeniedError: the actor is neither the author nor holds
                ``admin_roles:write``.
        """
        kind = _kind(target_type)
        check_id("note_id", note_id)
        check_id("actor_admin_id", actor_admin_id)
        model = kind.model
        with write():
            found: Any = (
                model.select(model.admin_user, kind.target).where(model.id == note_id).tuples()
            )
            row = next(iter(found), None)
            if row is None:
                return False
            author, target_id = row
            actor = acting_admin(actor_admin_id)
            if author != actor_admin_id and MODERATE not in actor.permissions:
                raise PermissionDeniedError(
                    f"only its author, or an admin with {MODERATE}, deletes a note"
                )
            if not model.delete().where(model.id == note_id).execute():
                return False  # deleted meanwhile by someone else
            audit(
                actor_admin_id,
                f"{kind.action}_DELETE",
                target_type,
                target_id,
                metadata={"note_id": note_id, "author": author},
            )
        return True

    @staticmethod
    def list_for(
        target_type: FlagTargetType, target_id: UserId | TenantId, *, limit: int = 50, cursor: str | None = None
    ) -> Page[NoteDTO]:
        """Return a newest-first page of the notes about the target.

        Back-office code (the console's user and tenant pages).

        Returns:
            A page; ``items`` is empty when there is no note about the target.

        Raises:
            ValidationError: ``target_type``, the id, ``limit`` or ``cursor`` is not valid.
        """
        if cursor is not None:  # a forged cursor is named whatever else is wrong
            arguments.cursor(cursor)
        kind = _kind(target_type)
        check_id("target_id", target_id)
        model = kind.model
        query = kind.dumper.select().where(kind.target == target_id)
        return keyset_page(
            query,
            dumper=kind.dumper,
            ts_field=model.created_at,
            id_field=model.id,
            limit=limit,
            cursor=cursor,
        )


__all__ = ["AdminNoteQueries"]
