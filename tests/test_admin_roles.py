"""AdminRoleQueries on both backends, and concurrent grants and revokes."""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Callable
from typing import Any

import pytest
from admin_console_helpers import ROLES_WRITE, session_of
from admin_console_helpers import new_admin as helpers_new_admin

from datalayer import (
    AdminRoleQueries,
    AdminUserQueries,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
    db,
)
from datalayer.models import AdminAuditLog, AdminRole, AdminUserRole

_seq = itertools.count(1)


def new_admin(**data: Any) -> str:
    data.setdefault("email", f"role-admin{next(_seq)}-{id(data)}@example.com")
    return helpers_new_admin(**data)


def root() -> tuple[str, str]:
    """An admin holding admin_roles:write, and a stepped-up session of theirs."""
    actor = helpers_new_admin(ROLES_WRITE)
    return actor, session_of(actor)


def grants(admin_id: str) -> list[str]:
    query = AdminUserRole.select(AdminUserRole.role_key).where(AdminUserRole.admin_user == admin_id)
    return sorted(r.role_key_id for r in query)


def audit_actions(target_id: str) -> list[tuple[str, str, Any, str | None]]:
    query = (
        AdminAuditLog.select()
        .where(AdminAuditLog.target_id == target_id)
        .order_by(AdminAuditLog.created_at, AdminAuditLog.id)
    )
    return [(r.action, r.admin_user_id, r.metadata, r.reason) for r in query]


@pytest.mark.usefixtures("txn")
class TestAdminRoles:
    def test_upsert_role_creates_then_replaces(self) -> None:
        actor, _ = root()
        role = AdminRoleQueries.upsert_role(
            "support_rw",
            actor,
            name="Support",
            permissions=["users:write", "users:read", "users:read"],
        )
        assert role["key"] == "support_rw" and role["name"] == "Support"
        assert role["permissions"] == ["users:read", "users:write"]  # sorted, deduplicated
        assert role["description"] is None and role["created_at"]
        again = AdminRoleQueries.upsert_role(
            "support_rw",
            actor,
            name="Support (rw)",
            permissions=["tenants:read"],
            description="Helps customers",
        )
        assert again["created_at"] == role["created_at"]
        assert (again["name"], again["permissions"], again["description"]) == (
            "Support (rw)",
            ["tenants:read"],
            "Helps customers",
        )
        assert AdminRoleQueries.find_role("support_rw") == again
        assert AdminRoleQueries.find_role("nope") is None
        assert AdminRole.select().where(AdminRole.key == "support_rw").count() == 1

    @pytest.mark.parametrize(
        ("args", "field"),
        [
            (("Bad Key", "n", []), "key"),
            (("", "n", []), "key"),
            (("ok_key", "", []), "name"),
            (("ok_key", "n", "users:read"), "permissions"),
            (("ok_key", "n", [""]), "permissions"),
            (("ok_key", "n", [1]), "permissions"),
            (("ok_key", "n", None), "permissions"),
        ],
    )
    def test_upsert_role_refuses_bad_input(self, args: tuple, field: str) -> None:
        actor, _ = root()
        with pytest.raises(ValidationError) as info:
            key, name, permissions = args
            AdminRoleQueries.upsert_role(key, actor, name=name, permissions=permissions)
        assert field in info.value.messages
        assert AdminRole.select().where(AdminRole.key == "ok_key").count() == 0

    def test_grant_and_revoke_are_idempotent_and_audit_changes_only(self) -> None:
        (actor, token), admin = root(), new_admin()
        AdminRoleQueries.upsert_role(
            "read_only", actor, name="Read only", permissions=["users:read"]
        )
        assert (
            AdminRoleQueries.grant(
                admin, actor, role_key="read_only", session_token=token, reason="onboarding"
            )
            is True
        )
        assert (
            AdminRoleQueries.grant(admin, actor, role_key="read_only", session_token=token) is False
        )
        assert grants(admin) == ["read_only"]
        granted = AdminUserRole.get(AdminUserRole.admin_user == admin)
        assert granted.granted_by_id == actor and granted.granted_at is not None
        assert (
            AdminRoleQueries.revoke(
                admin, actor, role_key="read_only", session_token=token, reason="offboarding"
            )
            is True
        )
        assert (
            AdminRoleQueries.revoke(admin, actor, role_key="read_only", session_token=token)
            is False
        )
        assert grants(admin) == []
        assert audit_actions(admin) == [
            ("ADMIN_ROLE_GRANT", actor, {"role_key": "read_only"}, "onboarding"),
            ("ADMIN_ROLE_REVOKE", actor, {"role_key": "read_only"}, "offboarding"),
        ]

    def test_grant_refusals_write_nothing(self) -> None:
        (actor, token), admin = root(), new_admin()
        AdminRoleQueries.upsert_role(
            "read_only", actor, name="Read only", permissions=["users:read"]
        )
        for call in (
            lambda: AdminRoleQueries.grant(
                admin, actor, role_key="no_such_role", session_token=token
            ),
            lambda: AdminRoleQueries.grant(
                "no-such-admin", actor, role_key="read_only", session_token=token
            ),
        ):
            with pytest.raises(NotFoundError):
                call()
        with pytest.raises(PermissionDeniedError):  # the actor must exist
            AdminRoleQueries.grant(
                admin, "no-such-actor", role_key="read_only", session_token=token
            )
        with pytest.raises(ValidationError):
            AdminRoleQueries.grant(
                admin, actor, role_key="read_only", session_token=token, reason="x" * 2001
            )
        with pytest.raises(ValidationError):
            AdminRoleQueries.grant(admin, actor, role_key="", session_token=token)
        assert grants(admin) == [] and audit_actions(admin) == []
        AdminRoleQueries.grant(admin, actor, role_key="read_only", session_token=token)
        with pytest.raises(PermissionDeniedError):  # no such actor: nothing revoked
            AdminRoleQueries.revoke(
                admin, "no-such-actor", role_key="read_only", session_token=token
            )
        assert grants(admin) == ["read_only"]

    def test_permissions_are_the_sorted_union_of_roles(self) -> None:
        (actor, token), admin = root(), new_admin()
        AdminRoleQueries.upsert_role(
            "a_role", actor, name="A", permissions=["users:read", "tenants:read"]
        )
        AdminRoleQueries.upsert_role(
            "b_role", actor, name="B", permissions=["users:read", "admin_roles:write"]
        )
        AdminRoleQueries.upsert_role("c_role", actor, name="C", permissions=["never:granted"])
        assert AdminRoleQueries.permissions_for(admin) == []
        AdminRoleQueries.grant(admin, actor, role_key="a_role", session_token=token)
        AdminRoleQueries.grant(admin, actor, role_key="b_role", session_token=token)
        assert AdminRoleQueries.permissions_for(admin) == [
            "admin_roles:write",
            "tenants:read",
            "users:read",
        ]
        assert AdminRoleQueries.has_permission(admin, permission="tenants:read") is True
        assert AdminRoleQueries.has_permission(admin, permission="never:granted") is False
        assert AdminRoleQueries.has_permission(admin, permission="tenants") is False  # exact match
        assert AdminRoleQueries.permissions_for(actor) == ["admin_roles:write"]
        # A role's new permissions apply at once to everyone holding it.
        AdminRoleQueries.upsert_role("a_role", actor, name="A", permissions=["billing:read"])
        assert AdminRoleQueries.permissions_for(admin) == [
            "admin_roles:write",
            "billing:read",
            "users:read",
        ]
        with pytest.raises(ValidationError):
            AdminRoleQueries.has_permission(admin, permission="")

    def test_a_suspended_admin_has_no_permissions(self) -> None:
        (actor, token), admin = root(), new_admin(status="active")
        AdminRoleQueries.upsert_role(
            "super_admin", actor, name="Super", permissions=["everything:write"]
        )
        AdminRoleQueries.grant(admin, actor, role_key="super_admin", session_token=token)
        assert AdminRoleQueries.has_permission(admin, permission="everything:write") is True
        AdminUserQueries.set_status(admin, actor, status="suspended")
        assert AdminRoleQueries.permissions_for(admin) == []
        assert AdminRoleQueries.has_permission(admin, permission="everything:write") is False
        AdminUserQueries.set_status(admin, actor, status="active")
        assert AdminRoleQueries.has_permission(admin, permission="everything:write") is True

    def test_permissions_cost_one_query(self, query_counter) -> None:
        (actor, token), admin = root(), new_admin()
        AdminRoleQueries.upsert_role("r0", actor, name="R0", permissions=["p:0"])
        AdminRoleQueries.grant(admin, actor, role_key="r0", session_token=token)
        query_counter.statements.clear()
        AdminRoleQueries.permissions_for(admin)
        one_role = query_counter.count
        for i in range(1, 20):
            AdminRoleQueries.upsert_role(
                f"r{i}", actor, name=f"R{i}", permissions=[f"p:{i}", "p:shared"]
            )
            AdminRoleQueries.grant(admin, actor, role_key=f"r{i}", session_token=token)
        query_counter.statements.clear()
        assert len(AdminRoleQueries.permissions_for(admin)) == 21
        assert query_counter.count == one_role == 1


def run_threads(count: int, call: Callable[[], bool]) -> tuple[list[bool], list[BaseException]]:
    results: list[bool] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def worker() -> None:
        try:
            barrier.wait()
            results.append(call())
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results, errors


def test_concurrent_grants_and_revokes_change_and_audit_once(fresh_db: str) -> None:
    actor, token = root()
    AdminRoleQueries.upsert_role("support_rw", actor, name="Support", permissions=["users:write"])
    for _ in range(5):
        admin = new_admin()
        grant = functools.partial(
            AdminRoleQueries.grant, admin, actor, role_key="support_rw", session_token=token
        )
        results, errors = run_threads(4, grant)
        assert errors == [] and sorted(results) == [False, False, False, True]
        assert grants(admin) == ["support_rw"]
        revoke = functools.partial(
            AdminRoleQueries.revoke, admin, actor, role_key="support_rw", session_token=token
        )
        results, errors = run_threads(4, revoke)
        assert errors == [] and sorted(results) == [False, False, False, True]
        assert grants(admin) == []
        assert [a for a, *_ in audit_actions(admin)] == ["ADMIN_ROLE_GRANT", "ADMIN_ROLE_REVOKE"]
