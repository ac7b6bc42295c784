"""Issue 23, "An admin's rights are not checked", "Step-up and expiry trust the caller's
clock", "Staff can be impersonated", "Audit gaps": every item a test, on both backends.
And the table of write -> permission -> audit action, held to the docs and walked."""

from __future__ import annotations

import datetime as dt
import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from admin_console_helpers import ROLES_WRITE, actions, give, new_admin, session_of
from factories import make_tenant, make_user
from helpers import APP_ROLE

import datalayer
from datalayer import (
    AdminFlagQueries,
    AdminNoteQueries,
    AdminRoleQueries,
    AdminSessionQueries,
    AdminUserQueries,
    AuditLogQueries,
    ConflictError,
    ImpersonationQueries,
    PermissionDeniedError,
    UserQueries,
    ValidationError,
    db,
)
from datalayer.models import (
    AdminAuditLog,
    AdminImpersonationSession,
    AdminSession,
    AdminUser,
    AdminUserRole,
)
from datalayer.models.base import utcnow
from datalayer.queries.admin_rights import ADMIN_RIGHTS, require_admin

pytestmark = pytest.mark.usefixtures("txn")
DOCS = Path(__file__).resolve().parent.parent / "docs" / "admin-rights.md"


def _rows() -> int:
    return AdminAuditLog.select().count() + AdminUserRole.select().count()


def _super(*extra: str) -> tuple[str, str]:
    admin = new_admin(ROLES_WRITE, "users:write", "tenants:write", "users:impersonate", *extra)
    return admin, session_of(admin)


def test_a_read_only_admin_cannot_grant_suspend_revoke_or_flag() -> None:
    superuser, _ = _super()
    ro = new_admin("users:read")
    ro_token = session_of(ro)
    AdminRoleQueries.upsert_role("super_admin", superuser, name="Super", permissions=[ROLES_WRITE])
    before = _rows()
    for attempt in (
        lambda: AdminRoleQueries.grant(ro, ro, role_key="super_admin", session_token=ro_token),
        lambda: AdminRoleQueries.grant(superuser, ro, role_key="super_admin", session_token=ro_token),
        lambda: AdminRoleQueries.revoke(superuser, ro, role_key="super_admin", session_token=ro_token),
        lambda: AdminUserQueries.set_status(superuser, ro, status="suspended"),
        lambda: AdminFlagQueries.set("user", make_user().id, ro, flag_type="vip", reason="r"),
        lambda: AdminSessionQueries.revoke_all(superuser, actor_admin_id=ro),
        lambda: AdminUserQueries.create(ro, {"email": "new@example.com", "status": "active"}),
    ):
        with pytest.raises(PermissionDeniedError):
            attempt()
    assert _rows() == before
    assert AdminUser.get_by_id(superuser).status == "active"


def test_no_admin_changes_their_own_status_or_roles() -> None:
    admin, token = _super()
    other, _ = _super()  # so admin is not the last holder either
    AdminRoleQueries.upsert_role("extra", admin, name="Extra", permissions=["x:y"])
    for attempt in (
        lambda: AdminUserQueries.set_status(admin, admin, status="suspended"),
        lambda: AdminRoleQueries.grant(admin, admin, role_key="extra", session_token=token),
    ):
        with pytest.raises(PermissionDeniedError, match="their own"):
            attempt()
    # a suspended admin cannot reactivate themselves (nor act at all)
    AdminUserQueries.set_status(other, admin, status="suspended")
    with pytest.raises(PermissionDeniedError):
        AdminUserQueries.set_status(other, other, status="active")
    assert AdminUser.get_by_id(other).status == "suspended"


def _role_of(admin: str) -> str:
    return str(AdminUserRole.get(AdminUserRole.admin_user == admin).role_key_id)


def test_the_last_roles_writer_cannot_be_stripped() -> None:
    a, _ = _super()
    b, _ = _super()
    AdminUserQueries.set_status(b, a, status="suspended")  # a still holds admin_roles:write
    with pytest.raises(ConflictError):  # rewriting a's role without it would leave nobody
        AdminRoleQueries.upsert_role(_role_of(a), a, name="stripped", permissions=["users:read"])
    assert ROLES_WRITE in AdminRoleQueries.permissions_for(a)
    AdminUserQueries.set_status(b, a, status="active")
    AdminRoleQueries.upsert_role(_role_of(a), a, name="stripped", permissions=["users:read"])
    assert ROLES_WRITE not in AdminRoleQueries.permissions_for(a)  # b holds it: allowed


def test_starting_an_impersonation_needs_a_stepped_up_session_of_the_actor() -> None:
    admin = new_admin("users:impersonate")
    user = make_user()
    plain = session_of(admin, step_up_seconds=None)
    someone_elses = session_of(new_admin("users:impersonate"))
    for token in (plain, someone_elses, "no-such-token"):
        with pytest.raises(PermissionDeniedError, match="stepped-up"):
            ImpersonationQueries.start(user.id, admin, reason="ticket", session_token=token)
    assert AdminImpersonationSession.select().count() == 0
    stepped = session_of(admin)
    AdminSession.update(step_up_expires_at=utcnow() - dt.timedelta(minutes=10)).where(
        AdminSession.token == stepped).execute()  # the step-up ran out (the row's clock)
    with pytest.raises(PermissionDeniedError):
        ImpersonationQueries.start(user.id, admin, reason="ticket", session_token=stepped)
    AdminSessionQueries.verify_step_up(stepped)
    assert ImpersonationQueries.start(user.id, admin, reason="ticket", session_token=stepped)


def test_no_public_argument_moves_the_clock() -> None:
    for function in (
        AdminSessionQueries.require_step_up, AdminSessionQueries.verify_step_up,
        AdminSessionQueries.find_valid, ImpersonationQueries.check_write,
        ImpersonationQueries.active_for,
    ):  # fmt: skip
        assert "now" not in inspect.signature(function).parameters, function.__qualname__
    admin = new_admin()
    token = session_of(admin, step_up_seconds=None)
    with pytest.raises(ValidationError):
        AdminSessionQueries.verify_step_up(token, ttl_seconds=3601)  # the maximum holds
    row = AdminSessionQueries.verify_step_up(token, ttl_seconds=3600)
    since = dt.datetime.fromisoformat(row["step_up_verified_at"])
    until = dt.datetime.fromisoformat(row["step_up_expires_at"])
    assert until - since == dt.timedelta(seconds=3600)
    AdminSession.update(expires_at=utcnow() - dt.timedelta(minutes=10)).where(
        AdminSession.token == token).execute()
    with pytest.raises(PermissionDeniedError):  # an expired session's step-up is void
        AdminSessionQueries.require_step_up(token)


def test_an_expired_impersonation_cannot_write() -> None:
    admin, token = _super()
    session = ImpersonationQueries.start(make_user().id, admin, reason="r", scope="read_write",
                                         session_token=token)  # fmt: skip
    AdminImpersonationSession.update(expires_at=utcnow() - dt.timedelta(minutes=10)).where(
        AdminImpersonationSession.id == session["id"]).execute()
    with pytest.raises(PermissionDeniedError, match="expired"):
        ImpersonationQueries.check_write(session["id"])


def test_staff_are_not_impersonated() -> None:
    admin, token = _super()
    staff = make_user(admin_role="super_admin")
    colleague = make_user(email="colleague@example.com")
    AdminUser.create(email="colleague@example.com", status="active")
    for target in (staff, colleague):
        with pytest.raises(PermissionDeniedError, match="staff"):
            ImpersonationQueries.start(target.id, admin, reason="r", session_token=token)
    assert AdminImpersonationSession.select().count() == 0


def test_role_upserts_and_admin_creation_are_audited() -> None:
    admin, _ = _super()
    AdminRoleQueries.upsert_role("auditor", admin, name="Auditor", permissions=["audit:read"])
    created = AdminUserQueries.create(admin, {"email": "fresh@example.com", "status": "active"})
    assert actions(admin_user=admin, action="ADMIN_ROLE_UPSERT") == ["ADMIN_ROLE_UPSERT"]
    (row,) = [r for r in AdminAuditLog.select().where(AdminAuditLog.action == "ADMIN_USER_CREATE")]
    assert (row.admin_user_id, row.target_id) == (admin, created["id"])
    assert created["invited_by"] == admin


# --- the table, the docs, and every public admin write ------------------------------

READS = {
    "find_by_id", "find_by_email", "permissions_for", "has_permission", "find_role",
    "find_valid", "require_step_up", "active_for", "check_write", "list_for",
    "list_by_type", "list", "summary",
}  # fmt: skip


def _public_admin_writes() -> set[str]:
    names = set()
    for namespace in datalayer.queries.admin.__all__:
        cls = getattr(datalayer, namespace)
        for name, _ in inspect.getmembers(cls, inspect.isfunction):
            if not name.startswith("_") and name not in READS:
                names.add(f"{namespace}.{name}")
    return names | {"UserQueries.set_admin_role", "UserQueries.erase"}


def test_the_table_lists_every_public_admin_write() -> None:
    assert {r.write for r in ADMIN_RIGHTS} == _public_admin_writes()


def test_the_docs_show_the_table_of_the_code() -> None:
    rows = re.findall(r"^\| `([^`]+)` \| (.+) \| (.+) \|$", DOCS.read_text(), re.M)
    documented = [(w, needs, tuple(a.split(" / ")) if a != "—" else ()) for w, needs, a in rows]
    assert documented == [(r.write, r.needs, r.actions) for r in ADMIN_RIGHTS]


def _world() -> dict[str, Any]:
    admin, token = _super()
    other, _ = _super()
    user, tenant = make_user(), make_tenant()
    target = new_admin()
    AdminRoleQueries.upsert_role("walk", admin, name="Walk", permissions=["x:y"])
    AdminRoleQueries.grant(target, admin, role_key="walk", session_token=token)
    session = ImpersonationQueries.start(user.id, other, reason="r", session_token=session_of(other))
    note = AdminNoteQueries.add("user", user.id, admin, note="n")
    AdminFlagQueries.set("tenant", tenant.id, admin, flag_type="vip", reason="r")
    logout = session_of(target)
    AdminSession.create(admin_user=target, token="expired-token",
                        expires_at=utcnow() - dt.timedelta(minutes=1))  # fmt: skip
    AdminImpersonationSession.update(expires_at=utcnow() - dt.timedelta(minutes=1)).where(
        AdminImpersonationSession.id == session["id"]).execute()
    return {"admin": admin, "token": token, "other": other, "user": user, "tenant": tenant,
            "target": target, "note": note, "logout": logout, "session": session}  # fmt: skip


def _calls(w: dict[str, Any]) -> dict[str, Any]:
    a, t, tgt = w["admin"], w["token"], w["target"]
    return {
        "AdminUserQueries.bootstrap": None,  # tests/test_admin_bootstrap.py (needs no holder)
        "AdminUserQueries.create": lambda: AdminUserQueries.create(a, {"email": "w@example.com"}),
        "AdminUserQueries.set_status":
            lambda: AdminUserQueries.set_status(tgt, a, status="suspended"),
        "AdminUserQueries.record_login": lambda: AdminUserQueries.record_login(a),
        "AdminRoleQueries.upsert_role":
            lambda: AdminRoleQueries.upsert_role("walk", a, name="W", permissions=["x:z"]),
        "AdminRoleQueries.grant":
            lambda: AdminRoleQueries.grant(w["other"], a, role_key="walk", session_token=t),
        "AdminRoleQueries.revoke":
            lambda: AdminRoleQueries.revoke(tgt, a, role_key="walk", session_token=t),
        "AdminSessionQueries.create": lambda: AdminSessionQueries.create(
            a, token="walk-token", expires_at=utcnow() + dt.timedelta(hours=1)),
        "AdminSessionQueries.revoke": lambda: AdminSessionQueries.revoke(w["logout"]),
        "AdminSessionQueries.revoke_all": lambda: AdminSessionQueries.revoke_all(tgt, a),
        "AdminSessionQueries.verify_step_up": lambda: AdminSessionQueries.verify_step_up(t),
        "AdminSessionQueries.delete_expired": lambda: AdminSessionQueries.delete_expired(),
        "ImpersonationQueries.start": lambda: ImpersonationQueries.start(
            w["user"].id, a, reason="walk", session_token=t),
        "ImpersonationQueries.end": lambda: ImpersonationQueries.end(w["session"]["id"], a),
        "ImpersonationQueries.expire_overdue": lambda: ImpersonationQueries.expire_overdue(),
        "AdminFlagQueries.set": lambda: AdminFlagQueries.set(
            "user", w["user"].id, a, flag_type="vip", reason="r"),
        "AdminFlagQueries.clear": lambda: AdminFlagQueries.clear(
            "tenant", w["tenant"].id, a, flag_type="vip"),
        "AdminNoteQueries.add": lambda: AdminNoteQueries.add("tenant", w["tenant"].id, a, note="n"),
        "AdminNoteQueries.edit": lambda: AdminNoteQueries.edit("user", w["note"]["id"], a, note="m"),
        "AdminNoteQueries.delete": lambda: AdminNoteQueries.delete("user", w["note"]["id"], a),
        "AuditLogQueries.append": lambda: AuditLogQueries.append(
            a, action="WALK", target_type="system"),
        "UserQueries.set_admin_role":
            lambda: UserQueries.set_admin_role(w["user"].id, a, role="read_only"),
        "UserQueries.erase": lambda: UserQueries.erase(
            make_user().id, a, reason="walk", session_token=t),
    }  # fmt: skip


@pytest.mark.parametrize("right", ADMIN_RIGHTS, ids=lambda r: r.write)
def test_every_admin_write_leaves_its_audit_row_in_the_same_transaction(right: Any) -> None:
    world = _world()
    call = _calls(world)[right.write]
    if call is None:
        pytest.skip("walked in tests/test_admin_bootstrap.py")
    if right.write == "UserQueries.erase" and APP_ROLE:
        pytest.skip("erasure redacts audit rows: the owner's; test_app_role.py shows the refusal")
    expected = set(right.actions) or {"WALK"}
    before = AdminAuditLog.select().where(AdminAuditLog.action.in_(expected)).count()
    with db.atomic() as transaction:
        call()
        written = AdminAuditLog.select().where(AdminAuditLog.action.in_(expected)).count()
        assert written > before, right.write
        transaction.rollback()  # the write and its audit row go together
    assert AdminAuditLog.select().where(AdminAuditLog.action.in_(expected)).count() == before



def test_the_permission_check_is_one_query(query_counter: Any) -> None:
    admin, token = _super()
    for _ in range(5):  # more roles do not mean more queries
        give(admin, "x:y")
    query_counter.statements.clear()
    actor = require_admin(admin, ROLES_WRITE, session_token=token, step_up=True)
    assert actor.stepped_up and ROLES_WRITE in actor.permissions
    assert query_counter.count == 1
