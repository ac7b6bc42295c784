"""AdminUserQueries on both backends (and a concurrent status-change race)."""

from __future__ import annotations

import itertools
import random
import threading
from collections import Counter
from typing import Any

import pytest
from admin_console_helpers import ROLES_WRITE
from admin_console_helpers import new_admin as helpers_new_admin

from datalayer import (
    AdminUserQueries,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
    db,
)
from datalayer.models import AdminAuditLog, AdminUser
from datalayer.models.admin import ADMIN_STATUSES

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
_seq = itertools.count(1)


def new_admin(**data: Any) -> dict[str, Any]:
    """An admin (pending unless ``status`` is given), made by an admin of the test's own."""
    data.setdefault("email", f"admin{next(_seq)}-{random.getrandbits(32)}@example.com")
    return dict(AdminUserQueries.create(root(), data))


def root() -> str:
    """An active admin holding admin_roles:write (written through the models)."""
    return helpers_new_admin(ROLES_WRITE)


def audit_rows(**where: Any) -> list[AdminAuditLog]:
    query = AdminAuditLog.select().order_by(AdminAuditLog.created_at, AdminAuditLog.id)
    for name, value in where.items():
        query = query.where(getattr(AdminAuditLog, name) == value)
    return list(query)


@pytest.mark.usefixtures("txn")
class TestAdminUsers:
    def test_create_and_find(self) -> None:
        inviter = {"id": root()}
        admin = AdminUserQueries.create(
            inviter["id"],
            {
                "email": "  Ada@Example.COM ",
                "name": "Ada",
                "password_hash": HASH,
                "avatar_url": "https://cdn.example.com/ada.png",
                "status": "active",
            },
        )
        assert admin["email"] == "ada@example.com" and admin["status"] == "active"
        assert admin["invited_by"] == inviter["id"] and admin["company"] == ""
        assert admin["last_login_at"] is None and "password_hash" not in admin
        assert AdminUser.get_by_id(admin["id"]).password_hash == HASH
        assert AdminUserQueries.find_by_id(admin["id"]) == admin
        assert AdminUserQueries.find_by_email("ADA@example.com ") == admin
        assert AdminUserQueries.find_by_email("nobody@example.com") is None
        assert AdminUserQueries.find_by_id("missing") is None
        assert new_admin()["status"] == "pending"

    def test_duplicate_email_is_a_conflict(self) -> None:
        new_admin(email="dup@example.com")
        with pytest.raises(ConflictError):
            AdminUserQueries.create(root(), {"email": "DUP@example.com"})
        assert AdminUser.select().where(AdminUser.email == "dup@example.com").count() == 1

    @pytest.mark.parametrize(
        ("data", "field"),
        [
            ({}, "email"),
            ({"email": "not-an-email"}, "email"),
            ({"email": "x@example.com", "password_hash": "hunter2hunter2"}, "password_hash"),
            (
                {"email": "x@example.com", "password_hash": "correct horse battery staple"},
                "password_hash",
            ),
            ({"email": "x@example.com", "avatar_url": "javascript:alert(1)"}, "avatar_url"),
            ({"email": "x@example.com", "status": "deleted"}, "status"),
            ({"email": "x@example.com", "name": ""}, "name"),
            ({"email": "x@example.com", "id": "forged"}, "id"),
            (
                {"email": "x@example.com", "last_login_at": "2024-01-01T00:00:00+00:00"},
                "last_login_at",
            ),
            ({"email": "x@example.com", "invited_by": "someone"}, "invited_by"),
        ],
    )
    def test_create_refuses_bad_input(self, data: dict[str, Any], field: str) -> None:
        actor = root()
        before = AdminUser.select().count()
        with pytest.raises(ValidationError) as info:
            AdminUserQueries.create(actor, data)
        assert field in info.value.messages
        assert AdminUser.select().count() == before

    def test_find_refuses_bad_arguments(self) -> None:
        for call in (
            lambda: AdminUserQueries.find_by_email(""),
            lambda: AdminUserQueries.find_by_email(None),  # type: ignore[arg-type]
            lambda: AdminUserQueries.find_by_id(""),
            lambda: AdminUserQueries.create("", {"email": "y@example.com"}),
        ):
            with pytest.raises(ValidationError):
                call()

    def test_set_status_is_audited_in_the_same_transaction(self) -> None:
        actor, target = {"id": root()}, new_admin()
        changed = AdminUserQueries.set_status(
            target["id"], actor["id"], status="active", reason="ok"
        )
        assert changed["status"] == "active" and changed["updated_at"] >= target["updated_at"]
        [row] = audit_rows(target_id=target["id"], action="ADMIN_STATUS_CHANGE")
        assert (row.admin_user_id, row.action, row.target_type, row.reason) == (
            actor["id"],
            "ADMIN_STATUS_CHANGE",
            "admin_user",
            "ok",
        )
        assert row.metadata == {"from": "pending", "to": "active"}
        # Setting the status it already has changes and records nothing.
        assert AdminUserQueries.set_status(target["id"], actor["id"], status="active") == changed
        assert len(audit_rows(target_id=target["id"], action="ADMIN_STATUS_CHANGE")) == 1

    def test_set_status_refusals_write_nothing(self) -> None:
        actor, target = {"id": root()}, new_admin()
        with pytest.raises(NotFoundError):
            AdminUserQueries.set_status("missing", actor["id"], status="active")
        with pytest.raises(ValidationError) as info:
            AdminUserQueries.set_status(target["id"], actor["id"], status="deleted")
        assert "status" in info.value.messages
        with pytest.raises(ValidationError) as info:
            AdminUserQueries.set_status(
                target["id"], actor["id"], status="active", reason="x" * 2001
            )
        assert "reason" in info.value.messages
        with pytest.raises(PermissionDeniedError):  # the actor must exist
            AdminUserQueries.set_status(target["id"], "no-such-admin", status="suspended")
        assert AdminUserQueries.find_by_id(target["id"])["status"] == "pending"  # type: ignore[index]
        assert audit_rows(target_id=target["id"], action="ADMIN_STATUS_CHANGE") == []

    def test_record_login(self) -> None:
        admin = new_admin(status="active")
        logged = AdminUserQueries.record_login(admin["id"], ip="203.0.113.9", user_agent="curl")
        assert logged["last_login_at"] is not None
        [row] = audit_rows(admin_user_id=admin["id"])
        assert (row.action, row.target_id, row.ip, row.user_agent) == (
            "ADMIN_LOGIN",
            admin["id"],
            "203.0.113.9",
            "curl",
        )
        AdminUserQueries.record_login(admin["id"])
        assert len(audit_rows(admin_user_id=admin["id"], action="ADMIN_LOGIN")) == 2

    def test_record_login_refusals_write_nothing(self) -> None:
        actor, admin = {"id": root()}, new_admin()
        AdminUserQueries.set_status(admin["id"], actor["id"], status="suspended")
        with pytest.raises(PermissionDeniedError):
            AdminUserQueries.record_login(admin["id"])
        with pytest.raises(NotFoundError):
            AdminUserQueries.record_login("missing")
        other = new_admin()
        with pytest.raises(ValidationError) as info:
            AdminUserQueries.record_login(other["id"], ip="1" * 65)
        assert "ip" in info.value.messages
        for a in (admin, other):
            assert AdminUserQueries.find_by_id(a["id"])["last_login_at"] is None  # type: ignore[index]
        assert audit_rows(action="ADMIN_LOGIN", admin_user_id=admin["id"]) == []
        assert audit_rows(admin_user_id=other["id"]) == []

    def test_writes_join_the_callers_transaction(self) -> None:
        actor, target = {"id": root()}, new_admin()
        with db.atomic() as outer:
            AdminUserQueries.set_status(target["id"], actor["id"], status="active")
            outer.rollback()
        assert AdminUserQueries.find_by_id(target["id"])["status"] == "pending"  # type: ignore[index]
        assert audit_rows(target_id=target["id"], action="ADMIN_STATUS_CHANGE") == []


def test_concurrent_status_changes_audit_a_consistent_history(fresh_db: str) -> None:
    """Each audited change starts from the status the previous one left (the row lock).

    Without it two actors read the same old status and both record it as ``from``.
    """
    actors = [{"id": root()} for _ in range(4)]
    target = new_admin(status="active")
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(actors))

    def worker(actor: dict[str, Any], seed: int) -> None:
        rng = random.Random(seed)
        try:
            barrier.wait()
            for _ in range(15):
                AdminUserQueries.set_status(
                    target["id"], actor["id"], status=rng.choice(ADMIN_STATUSES)
                )
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=worker, args=(a, i)) for i, a in enumerate(actors)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    final = AdminUser.get_by_id(target["id"]).status
    transitions = [
        (r.metadata["from"], r.metadata["to"])
        for r in audit_rows(target_id=target["id"], action="ADMIN_STATUS_CHANGE")
    ]
    assert transitions and all(a != b for a, b in transitions)
    # The transitions form one path from "active" to the final status: every status is
    # left as often as it is entered, except the start (one more) and the end (one less).
    balance = Counter(a for a, _ in transitions)
    balance.subtract(b for _, b in transitions)
    expected = Counter({"active": 1})
    expected.subtract({final: 1})
    assert {k: v for k, v in balance.items() if v} == {k: v for k, v in expected.items() if v}
