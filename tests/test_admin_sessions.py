"""AdminSessionQueries: the admin console's sessions, their secrecy and step-up."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from admin_console_helpers import ROLES_WRITE, actions, new_admin

from datalayer import (
    AdminSessionQueries,
    AdminUserQueries,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from datalayer.models import AdminAuditLog, AdminSession
from datalayer.schemas.admin_console import AdminSessionDTO, admin_session_schema

pytestmark = pytest.mark.usefixtures("txn")

UTC = dt.UTC
Sessions = AdminSessionQueries


def _later(**delta: float) -> dt.datetime:
    return dt.datetime.now(UTC) + dt.timedelta(**delta)


def _move_clock_past(token: str, column: str) -> None:
    """Make the session's ``column`` lie in the past: the clock moves by writing the row
    (expiry and step-up follow the database's clock, no caller's ``now``)."""
    field = getattr(AdminSession, column)
    AdminSession.update({field: _later(minutes=-10)}).where(AdminSession.token == token).execute()


def test_create_and_find_never_show_the_token() -> None:
    admin = new_admin()
    token = "tok-" + "x" * 40
    created = Sessions.create(
        admin, token=token, expires_at=_later(days=1), ip_address="10.0.0.1", user_agent="console"
    )
    assert set(created) == set(AdminSessionDTO.__annotations__)
    assert "token" not in created and token not in json.dumps(created)
    assert created["admin_user_id"] == admin and created["step_up_expires_at"] is None
    assert Sessions.find_valid(token) == created
    row = AdminSession.get_by_id(created["id"])
    assert row.token == token  # stored as Better Auth reads it ...
    assert "token" not in admin_session_schema.dump(row)  # ... but no DTO carries it
    entry = AdminAuditLog.get(
        (AdminAuditLog.action == "ADMIN_SESSION_CREATE") & (AdminAuditLog.admin_user == admin)
    )
    assert entry.ip == "10.0.0.1" and entry.metadata["session_id"] == created["id"]
    assert token not in json.dumps(entry.metadata)
    assert Sessions.find_valid("other-token") is None


def test_expiry_and_suspension_end_validity() -> None:
    admin, other = new_admin(), new_admin(ROLES_WRITE)
    Sessions.create(admin, token="t-expiring", expires_at=_later(hours=1))
    Sessions.create(admin, token="t-live", expires_at=_later(hours=1))
    assert Sessions.find_valid("t-expiring")
    _move_clock_past("t-expiring", "expires_at")
    assert Sessions.find_valid("t-expiring") is None
    assert Sessions.find_valid("t-live")
    AdminUserQueries.set_status(admin, other, status="suspended")
    assert Sessions.find_valid("t-live") is None
    assert Sessions.find_valid("t-expiring") is None
    with pytest.raises(PermissionDeniedError, match="suspended"):
        Sessions.create(admin, token="t-new", expires_at=_later(hours=1))
    with pytest.raises(NotFoundError):
        Sessions.create("no-such-admin", token="t-new", expires_at=_later(hours=1))
    assert AdminSession.select().where(AdminSession.token == "t-new").count() == 0
    assert actions(admin_user=admin, action="ADMIN_SESSION_CREATE") == ["ADMIN_SESSION_CREATE"] * 2


def test_refusals_write_nothing() -> None:
    admin = new_admin()
    Sessions.create(admin, token="t-dup", expires_at=_later(hours=1))
    with pytest.raises(ConflictError) as info:
        Sessions.create(admin, token="t-dup", expires_at=_later(hours=2))
    assert "t-dup" not in str(info.value)  # the secret stays out of the message
    for bad in (
        lambda: Sessions.create(admin, token="", expires_at=_later(hours=1)),
        lambda: Sessions.create(admin, token="t", expires_at=dt.datetime(2030, 1, 1)),  # naive
        lambda: Sessions.create(admin, token="t", expires_at=_later(hours=1), ip_address="x" * 65),
        lambda: Sessions.find_valid(None),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValidationError):
            bad()
    assert AdminSession.select().where(AdminSession.admin_user == admin).count() == 1
    assert actions(admin_user=admin) == ["ADMIN_SESSION_CREATE"]


def test_revoke_revoke_all_and_delete_expired_are_audited() -> None:
    a, b = new_admin(ROLES_WRITE), new_admin()
    Sessions.create(a, token="a1", expires_at=_later(hours=1))
    Sessions.create(a, token="a2", expires_at=_later(hours=1))
    Sessions.create(a, token="a3", expires_at=_later(seconds=30))
    Sessions.create(b, token="b1", expires_at=_later(seconds=30))
    Sessions.create(b, token="b2", expires_at=_later(hours=1))
    assert Sessions.revoke("a1") is True
    assert Sessions.revoke("a1") is False
    assert actions(admin_user=a, action="ADMIN_LOGOUT") == ["ADMIN_LOGOUT"]
    assert Sessions.delete_expired(now=_later(minutes=1)) == 2  # a3, b1
    expired = {
        r.admin_user_id: r.metadata
        for r in AdminAuditLog.select().where(AdminAuditLog.action == "ADMIN_SESSIONS_EXPIRED")
    }
    assert expired == {a: {"count": 1}, b: {"count": 1}}
    assert Sessions.revoke_all(b, actor_admin_id=a) == 1
    assert Sessions.revoke_all(b) == 0
    revoked = AdminAuditLog.get(AdminAuditLog.action == "ADMIN_SESSIONS_REVOKE")
    assert (revoked.admin_user_id, revoked.target_id, revoked.metadata) == (a, b, {"count": 1})
    assert [s.token for s in AdminSession.select()] == ["a2"]


@pytest.mark.parametrize("ttl", [0, 3601, True, "900", 1.5], ids=repr)
def test_verify_step_up_refuses_a_bad_ttl_and_records_nothing(ttl: Any) -> None:
    admin = new_admin()
    Sessions.create(admin, token="su", expires_at=_later(days=1))
    with pytest.raises(ValidationError) as info:
        Sessions.verify_step_up("su", ttl_seconds=ttl)
    assert "ttl_seconds" in info.value.messages
    assert actions(admin_user=admin, action="ADMIN_STEP_UP") == []


def test_step_up_is_required_recorded_and_expires() -> None:
    admin = new_admin()
    Sessions.create(admin, token="su", expires_at=_later(days=1))
    with pytest.raises(PermissionDeniedError, match="step-up"):
        Sessions.require_step_up("su")
    verified = Sessions.verify_step_up("su", ttl_seconds=900)
    since = dt.datetime.fromisoformat(verified["step_up_verified_at"])
    until = dt.datetime.fromisoformat(verified["step_up_expires_at"])
    assert until - since == dt.timedelta(seconds=900)
    assert abs(since - dt.datetime.now(UTC)) < dt.timedelta(minutes=5)  # the database's clock
    assert Sessions.require_step_up("su")["id"] == verified["id"]
    _move_clock_past("su", "step_up_expires_at")
    with pytest.raises(PermissionDeniedError):
        Sessions.require_step_up("su")
    with pytest.raises(PermissionDeniedError):
        Sessions.require_step_up("unknown")
    assert actions(admin_user=admin, action="ADMIN_STEP_UP") == ["ADMIN_STEP_UP"]
    _move_clock_past("su", "expires_at")
    with pytest.raises(NotFoundError):  # an expired session cannot step up
        Sessions.verify_step_up("su")
    assert actions(admin_user=admin, action="ADMIN_STEP_UP") == ["ADMIN_STEP_UP"]


def test_a_failed_audit_leaves_no_session(monkeypatch: pytest.MonkeyPatch) -> None:
    import datalayer.queries.admin.sessions as module

    admin = new_admin()

    def broken(*args, **kwargs):
        raise ConflictError("audit store refused")

    monkeypatch.setattr(module, "audit", broken)
    with pytest.raises(ConflictError, match="audit store"):
        Sessions.create(admin, token="t-audit", expires_at=_later(hours=1))
    assert AdminSession.select().where(AdminSession.token == "t-audit").count() == 0
    monkeypatch.undo()
    Sessions.create(admin, token="t-audit", expires_at=_later(hours=1))
    monkeypatch.setattr(module, "audit", broken)
    with pytest.raises(ConflictError):
        Sessions.revoke("t-audit")
    assert Sessions.find_valid("t-audit") is not None  # the revoke rolled back too
