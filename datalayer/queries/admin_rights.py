"""Who may do what in the admin console: one table of write → permission → audit action.

Every public admin write names its acting admin and checks them here, where it is
defined (STYLE.md habit 19): the actor must exist, be ``active`` and hold the write's
permission, else ``PermissionDeniedError`` and nothing is written. The check is one
indexed query (the admin by primary key, joined to their roles' permissions and, for a
write that needs a step-up, to the session by its token). Time that decides access
(session expiry, step-up) is the database's clock: ``now()`` on PostgreSQL, the
library's clock on SQLite — never a caller's argument.

``ADMIN_RIGHTS`` is the table docs/admin-rights.md shows (it lives beside the domains,
not in the admin one, because ``UserQueries`` checks it too); tests/test_security_admin.py
holds the two together and walks every public admin write.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

import peewee

from datalayer import arguments
from datalayer.connection.database import db, is_postgres
from datalayer.errors import ConflictError, PermissionDeniedError
from datalayer.models import AdminRole, AdminSession, AdminUser, AdminUserRole
from datalayer.models.base import utcnow
from datalayer.schemas.admin_console import SECRET_MAX

ADMIN_ROLES_WRITE = "admin_roles:write"
USERS_WRITE = "users:write"
TENANTS_WRITE = "tenants:write"
USERS_IMPERSONATE = "users:impersonate"
# What writing about a target needs (flags, notes), by target type.
TARGET_WRITE = {"user": USERS_WRITE, "tenant": TENANTS_WRITE}

# Serializes the changes that could leave no active admin holding admin_roles:write
# (PostgreSQL; SQLite has one writer at a time): a transaction-level advisory lock.
_RIGHTS_LOCK = 0x64617461_6C617972 & 0x7FFFFFFFFFFFFFFF  # "datalayr"


class AdminRight(NamedTuple):
    """One row of the table: a public write, what its actor needs, the audit action(s)."""

    write: str
    needs: str
    actions: tuple[str, ...]


ADMIN_RIGHTS: tuple[AdminRight, ...] = (
    AdminRight("AdminUserQueries.bootstrap",
               "no active admin holds `admin_roles:write` (`datalayer admin bootstrap`)",
               ("ADMIN_BOOTSTRAP",)),
    AdminRight("AdminUserQueries.create", "`admin_roles:write`", ("ADMIN_USER_CREATE",)),
    AdminRight("AdminUserQueries.set_status",
               "`admin_roles:write`; never their own status; the last active holder of "
               "`admin_roles:write` stays active", ("ADMIN_STATUS_CHANGE",)),
    AdminRight("AdminUserQueries.record_login", "the admin themselves, not suspended",
               ("ADMIN_LOGIN",)),
    AdminRight("AdminRoleQueries.upsert_role",
               "`admin_roles:write`; the last holder of `admin_roles:write` keeps it",
               ("ADMIN_ROLE_UPSERT",)),
    AdminRight("AdminRoleQueries.grant",
               "`admin_roles:write` and a stepped-up session; never their own roles",
               ("ADMIN_ROLE_GRANT",)),
    AdminRight("AdminRoleQueries.revoke",
               "`admin_roles:write` and a stepped-up session; never their own roles; the "
               "last holder of `admin_roles:write` keeps it", ("ADMIN_ROLE_REVOKE",)),
    AdminRight("AdminSessionQueries.create", "the admin is active", ("ADMIN_SESSION_CREATE",)),
    AdminRight("AdminSessionQueries.revoke", "the session's token (a logout)", ("ADMIN_LOGOUT",)),
    AdminRight("AdminSessionQueries.revoke_all",
               "their own sessions, or `admin_roles:write`", ("ADMIN_SESSIONS_REVOKE",)),
    AdminRight("AdminSessionQueries.verify_step_up",
               "a valid session (the admin just re-authenticated)", ("ADMIN_STEP_UP",)),
    AdminRight("AdminSessionQueries.delete_expired", "maintenance: only expired sessions",
               ("ADMIN_SESSIONS_EXPIRED",)),
    AdminRight("ImpersonationQueries.start",
               "`users:impersonate` (+ `users:write` for `read_write`) and a stepped-up "
               "session; the target is not staff", ("IMPERSONATION_START", "IMPERSONATION_END")),
    AdminRight("ImpersonationQueries.end", "the session's admin, or `admin_roles:write`",
               ("IMPERSONATION_END",)),
    AdminRight("ImpersonationQueries.expire_overdue", "maintenance: only overdue sessions",
               ("IMPERSONATION_END",)),
    AdminRight("AdminFlagQueries.set", "`users:write` on users, `tenants:write` on tenants",
               ("USER_FLAG_SET", "TENANT_FLAG_SET")),
    AdminRight("AdminFlagQueries.clear", "`users:write` on users, `tenants:write` on tenants",
               ("USER_FLAG_REMOVE", "TENANT_FLAG_REMOVE")),
    AdminRight("AdminNoteQueries.add", "`users:write` on users, `tenants:write` on tenants",
               ("USER_NOTE_ADD", "TENANT_NOTE_ADD")),
    AdminRight("AdminNoteQueries.edit", "the author, active",
               ("USER_NOTE_EDIT", "TENANT_NOTE_EDIT")),
    AdminRight("AdminNoteQueries.delete", "the author, or `admin_roles:write`",
               ("USER_NOTE_DELETE", "TENANT_NOTE_DELETE")),
    AdminRight("AuditLogQueries.append",
               "an active admin; never an action the library writes itself (USER_ERASE, "
               "IMPERSONATION_*, ADMIN_ROLE_*)", ()),
    AdminRight("UserQueries.set_admin_role", "`admin_roles:write`", ("USER_UPDATE",)),
    AdminRight("UserQueries.erase",
               "`users:write` and a stepped-up session (`datalayer user erase`: no step-up)",
               ("USER_ERASE",)),
)  # fmt: skip


class Actor(NamedTuple):
    """The acting admin, checked: active, their permissions, whether the session given is
    stepped up."""

    id: str
    permissions: frozenset[str]
    stepped_up: bool


def check_token(name: str, value: Any) -> str:
    """Validate a session token argument (non-empty text, at most ``SECRET_MAX``)."""
    return arguments.text(name, value, min_length=1, max_length=SECRET_MAX)


def db_now(field: peewee.Field, *, sqlite_now: dt.datetime | None = None) -> Any:
    """The database's clock, for a comparison with ``field``: ``now()`` on PostgreSQL, the
    library's clock (a parameter; ``sqlite_now`` if given) on SQLite, which has no time
    zone-aware clock of its own."""
    if is_postgres():
        return peewee.fn.now()
    return peewee.Value(sqlite_now or utcnow(), converter=field.db_value)


def db_later(field: peewee.Field, seconds: int, *, sqlite_now: dt.datetime | None = None) -> Any:
    """The database's clock plus ``seconds``, to store in ``field`` (as ``db_now``)."""
    if is_postgres():
        return peewee.fn.now() + peewee.SQL("make_interval(secs => %s)", [int(seconds)])
    later = (sqlite_now or utcnow()) + dt.timedelta(seconds=seconds)
    return peewee.Value(later, converter=field.db_value)


def _stepped_up(session_token: str) -> Any:
    """The session with this token is valid and stepped up now (the database's clock)."""
    s = AdminSession
    return (
        (s.token == session_token)
        & (s.expires_at > db_now(s.expires_at))
        & (s.step_up_expires_at > db_now(s.step_up_expires_at))
    )


def acting_admin(actor_admin_id: str, *, session_token: str | None = None) -> Actor:
    """Return the acting admin, who must exist and be active (else PermissionDeniedError).

    One indexed query: the admin by primary key, their roles by the (admin, role) key,
    and, given a ``session_token``, their stepped-up session by its unique token.
    """
    arguments.ident("actor_admin_id", actor_admin_id)
    query: Any = AdminUser.select(AdminUser.status, AdminRole.permissions)
    if session_token is not None:
        session = AdminSession.select(AdminSession.id).where(
            (AdminSession.admin_user == AdminUser.id) & _stepped_up(session_token)
        )
        query = query.select_extend(peewee.fn.EXISTS(session).alias("stepped_up"))
    query = (
        query.join(AdminUserRole, peewee.JOIN.LEFT_OUTER,
                   on=(AdminUserRole.admin_user == AdminUser.id))
        .join(AdminRole, peewee.JOIN.LEFT_OUTER, on=(AdminRole.key == AdminUserRole.role_key))
        .where(AdminUser.id == actor_admin_id)
    )  # fmt: skip
    rows = list(query.tuples())
    if not rows:
        raise PermissionDeniedError(f"admin user {actor_admin_id} not found")
    if rows[0][0] != "active":
        raise PermissionDeniedError(f"admin user {actor_admin_id} is {rows[0][0]}, not active")
    permissions = frozenset(p for row in rows for p in (row[1] or ()))
    stepped_up = session_token is not None and bool(rows[0][2])
    return Actor(actor_admin_id, permissions, stepped_up)


def require_admin(
    actor_admin_id: str, *permissions: str, session_token: str | None = None, step_up: bool = False
) -> Actor:
    """Return the acting admin if active and holding every permission (and, with
    ``step_up``, acting through a stepped-up session); else PermissionDeniedError."""
    actor = acting_admin(actor_admin_id, session_token=session_token if step_up else None)
    missing = [p for p in permissions if p not in actor.permissions]
    if missing:
        raise PermissionDeniedError(
            f"admin user {actor_admin_id} lacks the permission {', '.join(missing)}"
        )
    if step_up and not actor.stepped_up:
        raise PermissionDeniedError(
            "this needs a stepped-up admin session: re-authenticate (verify_step_up) first"
        )
    return actor


def not_themselves(actor_admin_id: str, admin_user_id: str, what: str) -> None:
    """PermissionDeniedError when an admin would change their own ``what``."""
    if actor_admin_id == admin_user_id:
        raise PermissionDeniedError(f"no admin changes their own {what}")


def lock_rights() -> None:
    """Serialize changes to who holds ``admin_roles:write`` (until the transaction ends)."""
    if is_postgres():
        db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_RIGHTS_LOCK,))


def roles_writers() -> set[str]:
    """The active admins holding ``admin_roles:write``."""
    query: Any = (
        AdminUserRole.select(AdminUserRole.admin_user, AdminRole.permissions)
        .join(AdminRole, on=(AdminRole.key == AdminUserRole.role_key))
        .switch(AdminUserRole)
        .join(AdminUser, on=(AdminUser.id == AdminUserRole.admin_user))
        .where(AdminUser.status == "active")
    )
    return {admin for admin, permissions in query.tuples() if ADMIN_ROLES_WRITE in (permissions or ())}


def keep_a_roles_writer() -> None:
    """ConflictError (rolling the change back) when no active admin holds
    ``admin_roles:write`` any more: the last one cannot be removed, suspended or stripped."""
    if not roles_writers():
        raise ConflictError(
            f"this would leave no active admin holding {ADMIN_ROLES_WRITE}: grant it to "
            "another admin first"
        )


__all__ = [
    "ADMIN_RIGHTS",
    "ADMIN_ROLES_WRITE",
    "TARGET_WRITE",
    "TENANTS_WRITE",
    "USERS_IMPERSONATE",
    "USERS_WRITE",
    "Actor",
    "AdminRight",
    "acting_admin",
    "check_token",
    "db_later",
    "db_now",
    "keep_a_roles_writer",
    "lock_rights",
    "not_themselves",
    "require_admin",
    "roles_writers",
]
