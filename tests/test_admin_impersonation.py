"""ImpersonationQueries: permissions, one active session per admin, audit in the same
transaction, expiry; and two concurrent starts by one admin (real threads)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import peewee
import pytest
from admin_console_helpers import actions, audit_rows, new_admin, session_of
from factories import add_member, make_tenant, make_user
from helpers import race

from datalayer import (
    ConflictError,
    DataLayerError,
    ImpersonationQueries,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
    db,
)
from datalayer.models import AdminAuditLog, AdminImpersonationSession, User
from datalayer.models.base import utcnow

I = ImpersonationQueries  # noqa: E741
Rows = AdminImpersonationSession
IMPERSONATE, WRITE = "users:impersonate", "users:write"


_tokens: dict[str, str] = {}


def token_for(admin: str) -> str:
    """A stepped-up session of the admin (one per admin: admins are new in every test)."""
    if admin not in _tokens:
        _tokens[admin] = session_of(admin)
    return _tokens[admin]


def start(target_user_id: str, admin: str, **options: Any) -> Any:
    """``ImpersonationQueries.start`` through the admin's stepped-up session."""
    return I.start(target_user_id, admin, session_token=token_for(admin), **options)


def open_rows(admin: str) -> list[Rows]:
    return list(Rows.select().where((Rows.admin_user == admin) & Rows.ended_at.is_null()))


@pytest.mark.usefixtures("txn")
class TestImpersonation:
    def test_start_needs_the_permission_and_read_write_needs_users_write(self) -> None:
        user = make_user()
        nobody, viewer, writer = new_admin(), new_admin(IMPERSONATE), new_admin(IMPERSONATE, WRITE)
        with pytest.raises(PermissionDeniedError, match="users:impersonate"):
            start(user.id, nobody, reason="ticket 1")
        with pytest.raises(PermissionDeniedError, match="users:write"):
            start(user.id, viewer, reason="ticket 2", scope="read_write")
        assert Rows.select().count() == 0 and AdminAuditLog.select().where(
            AdminAuditLog.action.startswith("IMPERSONATION")).count() == 0
        read_only = start(user.id, viewer, reason="ticket 3")
        read_write = start(user.id, writer, reason="ticket 4", scope="read_write")
        assert (read_only["scope"], read_write["scope"]) == ("read_only", "read_write")
        with pytest.raises(PermissionDeniedError, match="read-only"):
            I.check_write(read_only["id"])
        assert I.check_write(read_write["id"]) == read_write
        with pytest.raises(PermissionDeniedError):
            I.check_write("no-such-session")

    def test_start_records_the_session_and_its_audit_row(self) -> None:
        user, admin = make_user(), new_admin(IMPERSONATE)
        before = utcnow()
        session = start(user.id, admin, reason="ticket 42", metadata={"ticketId": "T-42"})
        started = dt.datetime.fromisoformat(session["started_at"])
        assert before <= started <= utcnow()
        assert dt.datetime.fromisoformat(session["expires_at"]) - started == dt.timedelta(
            seconds=1800)
        assert (session["target_user_id"], session["reason"], session["metadata"]) == (
            user.id, "ticket 42", {"ticketId": "T-42"})
        assert session["ended_at"] is None and session["end_reason"] is None
        assert I.active_for(admin) == session
        (entry,) = audit_rows(impersonation_session_id=session["id"])
        assert (entry.action, entry.admin_user_id, entry.target_type, entry.target_id) == (
            "IMPERSONATION_START", admin, "user", user.id)
        assert entry.reason == "ticket 42" and entry.metadata["scope"] == "read_only"

    def test_a_second_start_revokes_the_first(self) -> None:
        admin, a, b = new_admin(IMPERSONATE), make_user(), make_user()
        first = start(a.id, admin, reason="one")
        second = start(b.id, admin, reason="two")
        ended = Rows.get_by_id(first["id"])
        assert ended.end_reason == "revoked" and ended.ended_at is not None
        assert [r.id for r in open_rows(admin)] == [second["id"]]
        assert actions(impersonation_session_id=first["id"]) == [
            "IMPERSONATION_START", "IMPERSONATION_END"]
        assert audit_rows(impersonation_session_id=first["id"])[1].metadata == {
            "end_reason": "revoked"}
        # An open session whose time ran out ends as expired, not revoked.
        Rows.update(expires_at=utcnow() - dt.timedelta(seconds=1)).where(
            Rows.id == second["id"]).execute()
        assert I.active_for(admin) is None
        start(a.id, admin, reason="three")
        assert Rows.get_by_id(second["id"]).end_reason == "expired"

    def test_the_database_holds_one_open_session_per_admin(self) -> None:
        admin, user = new_admin(IMPERSONATE), make_user()
        start(user.id, admin, reason="one")
        with pytest.raises(peewee.IntegrityError), db.atomic():
            Rows.create(admin_user=admin, target_user=user, reason="raw",
                        expires_at=utcnow() + dt.timedelta(minutes=5))
        assert len(open_rows(admin)) == 1

    def test_end_by_its_admin_only_once(self) -> None:
        admin, other, user = new_admin(IMPERSONATE), new_admin(IMPERSONATE), make_user()
        session = start(user.id, admin, reason="one")
        with pytest.raises(PermissionDeniedError):  # not theirs, and no admin_roles:write
            I.end(session["id"], other)
        assert I.active_for(admin) is not None
        with pytest.raises(ValidationError):
            I.end(session["id"], admin, reason="bored")
        assert I.end(session["id"], admin, reason="logout") is True
        assert I.end(session["id"], admin) is False
        assert Rows.get_by_id(session["id"]).end_reason == "logout"
        assert I.active_for(admin) is None
        with pytest.raises(PermissionDeniedError):
            I.check_write(session["id"])
        assert actions(impersonation_session_id=session["id"]) == [
            "IMPERSONATION_START", "IMPERSONATION_END"]

    def test_ttl_expiry_and_expire_overdue(self) -> None:
        admin, writer, user = new_admin(IMPERSONATE), new_admin(IMPERSONATE, WRITE), make_user()
        for ttl in (0, 3601, True, 60.0, "60"):
            with pytest.raises(ValidationError):
                start(user.id, admin, reason="r", ttl_seconds=ttl)  # type: ignore[arg-type]
        session = start(user.id, writer, reason="r", scope="read_write", ttl_seconds=60)
        start(user.id, admin, reason="r", ttl_seconds=3600)
        assert I.check_write(session["id"])
        # the clock moves past its end: written into the row (the database's clock decides)
        Rows.update(expires_at=utcnow() - dt.timedelta(minutes=10)).where(
            Rows.id == session["id"]).execute()
        with pytest.raises(PermissionDeniedError, match="expired"):
            I.check_write(session["id"])
        assert I.active_for(writer) is None
        assert I.expire_overdue() == 1
        assert I.expire_overdue() == 0
        assert Rows.get_by_id(session["id"]).end_reason == "expired"
        assert actions(impersonation_session_id=session["id"])[-1] == "IMPERSONATION_END"
        assert I.active_for(admin) is not None  # an hour left: untouched

    def test_target_rules_and_history_outliving_the_user(self) -> None:
        admin, user, stranger = new_admin(IMPERSONATE), make_user(), make_user()
        tenant = make_tenant(user)
        first = start(user.id, admin, reason="one")
        with pytest.raises(NotFoundError, match="not a member"):
            start(user.id, admin, reason="two", target_tenant_id=make_tenant(stranger).id)
        with pytest.raises(NotFoundError):
            start("no-such-user", admin, reason="two")
        with pytest.raises(ValidationError):
            start(user.id, admin, reason="")  # a reason is required
        # Nothing was written, and the open session was not revoked by the failures.
        assert [r.id for r in open_rows(admin)] == [first["id"]]
        scoped = start(user.id, admin, reason="two", target_tenant_id=tenant.id)
        assert scoped["target_tenant_id"] == tenant.id
        User.delete().where(User.id == user.id).execute()
        kept = Rows.get_by_id(scoped["id"])
        assert kept.target_user_id is None and kept.target_tenant_id == tenant.id

    def test_a_failed_audit_leaves_neither(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import datalayer.queries.admin.impersonations as module

        admin, user = new_admin(IMPERSONATE), make_user()
        first = start(user.id, admin, reason="one")

        def broken(*args, **kwargs):
            raise ConflictError("audit store refused")

        monkeypatch.setattr(module, "audit", broken)
        with pytest.raises(ConflictError, match="audit store"):
            start(user.id, admin, reason="two")
        # Neither the new session nor the revocation of the first one happened.
        assert [r.id for r in open_rows(admin)] == [first["id"]]
        assert Rows.select().where(Rows.admin_user == admin).count() == 1
        assert actions(admin_user=admin, action="IMPERSONATION_END") == []


def test_two_concurrent_starts_leave_one_active_session(fresh_db: str) -> None:
    """Threads on connections of their own, released together, many rounds: every start
    either wins or is refused, and the admin never holds two open sessions."""
    for threads in (2, 2, 2, 2, 2, 4, 8):
        admin, user = new_admin(IMPERSONATE), make_user()
        token_for(admin)
        start(user.id, admin, reason="already open")  # one to revoke, as well

        def racer(i: int, admin: str = admin, user: str = user.id) -> object:
            try:
                return start(user, admin, reason=f"concurrent {i}")
            except DataLayerError as exc:
                return exc

        results = race(racer, threads=threads)
        started = [r for r in results if isinstance(r, dict)]
        refused = [r for r in results if not isinstance(r, dict)]
        assert started, results
        assert all(isinstance(e, ConflictError) for e in refused), refused
        assert len(open_rows(admin)) == 1
        sessions = Rows.select().where(Rows.admin_user == admin)
        assert sessions.count() == 1 + len(started)  # the refused left nothing
        assert len(actions(admin_user=admin, action="IMPERSONATION_START")) == 1 + len(started)
        assert len(actions(admin_user=admin, action="IMPERSONATION_END")) == len(started)
        assert {r.end_reason for r in sessions if r.ended_at} == {"revoked"}


def test_membership_target_is_checked_against_the_tenant(txn) -> None:
    admin, user = new_admin(IMPERSONATE), make_user()
    tenant = make_tenant()
    add_member(tenant, user)
    assert start(user.id, admin, reason="member", target_tenant_id=tenant.id)["target_tenant_id"]
