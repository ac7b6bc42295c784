"""Least privilege (issue 23): the app role ``datalayer grant-app-role`` makes cannot
touch the audit trail's triggers or rows, nor change the schema; the owner can.

PostgreSQL only (SQLite has no roles). The rest of the suite's query paths run as the
app role in the py311-approle env (DATALAYER_TEST_APP_ROLE)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from admin_console_helpers import erase, give
from click.testing import CliRunner
from helpers import _admin, as_role, postgres_only, scratch_database

from datalayer import DataLayerError, UserQueries, db, init_db
from datalayer import models as m
from datalayer.cli.main import main
from datalayer.evolve.migrate import migrate
from datalayer.models.base import new_id

pytestmark = postgres_only


@pytest.fixture
def app_role(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A migrated database and a new app role on it: (owner URL, app role URL)."""
    role = f"dl_app_{uuid.uuid4().hex[:8]}"
    with scratch_database(tmp_path) as owner_url:
        migrate(owner_url)
        out = CliRunner().invoke(main, ["grant-app-role", role, "--database", owner_url])
        assert out.exit_code == 0, out.output
        assert "GRANT SELECT, INSERT ON \"admin_audit_log\"" in out.output
        try:
            yield owner_url, as_role(owner_url, role)
        finally:
            if db.obj is not None:
                db.close()
    _admin(f'DROP ROLE IF EXISTS "{role}"')


def _run(url: str, statement: str) -> None:
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


def _seed(owner_url: str) -> str:
    init_db(owner_url)
    admin = m.AdminUser.create(id=new_id(), email="owner@example.com", status="active")
    give(admin.id, "users:write")
    m.AdminAuditLog.create(id=new_id(), admin_user=admin.id, action="TEST", target_type="system")
    db.close()
    return str(admin.id)


def test_the_app_role_cannot_drop_the_trigger_nor_change_the_trail(
    app_role: tuple[str, str],
) -> None:
    owner_url, app_url = app_role
    _seed(owner_url)
    for statement in (
        "DROP TRIGGER admin_audit_log_append_only ON admin_audit_log",
        "ALTER TABLE admin_audit_log DISABLE TRIGGER admin_audit_log_append_only",
        "UPDATE admin_audit_log SET reason = 'rewritten'",
        "DELETE FROM admin_audit_log",
        "TRUNCATE admin_audit_log",
        "CREATE TABLE scratch (a integer)",
        "DROP TABLE todos",
    ):
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            _run(app_url, statement)
    _run(app_url, "INSERT INTO admin_audit_log (id, admin_user_id, action, target_type) "
                  "SELECT 'x1', id, 'APP', 'system' FROM admin_users")  # fmt: skip
    conn = psycopg2.connect(owner_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM admin_audit_log")
            assert cur.fetchone()[0] == 2  # nothing went, the app role's row came
    finally:
        conn.close()
    # the owner, by contrast, can drop the trigger: why the application should not connect as it
    _run(owner_url, "DROP TRIGGER admin_audit_log_no_truncate ON admin_audit_log")


def test_the_library_works_as_the_app_role(app_role: tuple[str, str]) -> None:
    owner_url, app_url = app_role
    _seed(owner_url)
    init_db(app_url)
    user = UserQueries.create({"name": "App", "email": "app@example.com"})
    assert UserQueries.find_by_email("app@example.com") == user
    assert UserQueries.delete(user["id"]) is True


def test_erasure_needs_the_owner_and_changes_nothing_through_the_app_role(
    app_role: tuple[str, str],
) -> None:
    owner_url, app_url = app_role
    admin_id = _seed(owner_url)
    init_db(owner_url)
    user = UserQueries.create({"name": "Erin Erased", "email": "erin@example.com"})
    m.AdminAuditLog.create(id=new_id(), admin_user=admin_id, action="USER_VIEW",
                           target_type="user", target_id=user["id"])  # fmt: skip
    db.close()
    init_db(app_url)
    with pytest.raises(DataLayerError):
        erase(user["id"], admin_id, reason="request")
    assert UserQueries.find_by_email("erin@example.com") is not None  # rolled back
    db.close()
    init_db(owner_url)
    assert erase(user["id"], admin_id, reason="request")["counts"]["user"] == 1


def test_grant_app_role_is_refused_on_sqlite(tmp_path: Path) -> None:
    out = CliRunner().invoke(
        main, ["grant-app-role", "app", "--database", f"sqlite:///{tmp_path}/x.sqlite3"]
    )
    assert out.exit_code != 0 and "PostgreSQL" in out.output
