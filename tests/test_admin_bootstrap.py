"""`datalayer admin bootstrap EMAIL` (issue 23): the first admin, made only while no
active admin holds admin_roles:write; on both backends."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from datalayer import AdminRoleQueries, AdminUserQueries, PermissionDeniedError, db, init_db
from datalayer import models as m
from datalayer.cli.main import main


def test_bootstrap_makes_the_first_admin_once(fresh_db: str) -> None:
    db.close()
    runner = CliRunner()
    out = runner.invoke(main, ["admin", "bootstrap", "First@Example.com", "--database", fresh_db])
    assert out.exit_code == 0, out.output
    again = runner.invoke(
        main, ["admin", "bootstrap", "second@example.com", "--database", fresh_db]
    )
    assert again.exit_code != 0 and "already holds admin_roles:write" in again.output
    init_db(fresh_db)
    first = AdminUserQueries.find_by_email("first@example.com")
    assert first is not None and first["status"] == "active"
    assert "admin_roles:write" in AdminRoleQueries.permissions_for(first["id"])
    assert AdminUserQueries.find_by_email("second@example.com") is None
    audit = m.AdminAuditLog.select().where(m.AdminAuditLog.action == "ADMIN_BOOTSTRAP")
    assert [(a.admin_user_id, a.target_id) for a in audit] == [(first["id"], first["id"])]


def test_bootstrap_works_again_once_no_active_admin_holds_the_right(fresh_db: str) -> None:
    first = AdminUserQueries.bootstrap("one@example.com")
    m.AdminUser.update(status="suspended").where(m.AdminUser.id == first["id"]).execute()
    second = AdminUserQueries.bootstrap("two@example.com", name="Two")
    assert second["status"] == "active" and second["name"] == "Two"
    with pytest.raises(PermissionDeniedError):
        AdminUserQueries.bootstrap("three@example.com")
    assert m.AdminUser.select().count() == 2
