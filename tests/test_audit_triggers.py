"""The audit trail is append-only at the database, on both backends (triggers)."""

from __future__ import annotations

import pytest
from admin_console_helpers import new_admin
from helpers import IS_PG, postgres_only

from datalayer import PermissionDeniedError, db
from datalayer.errors import translate_errors
from datalayer.queries import AuditLogQueries

pytestmark = pytest.mark.usefixtures("txn")

P = "%s" if IS_PG else "?"


def _entry() -> dict:
    admin = {"id": new_admin(email="trail@example.com")}
    return AuditLogQueries.append(admin["id"], action="USER_UPDATE", target_type="user", reason="original")


@pytest.mark.parametrize("sql", [
    f"UPDATE admin_audit_log SET reason = 'rewritten' WHERE id = {P}",
    f"DELETE FROM admin_audit_log WHERE id = {P}",
])
def test_raw_update_and_delete_are_refused(sql: str) -> None:
    entry = _entry()
    with pytest.raises(PermissionDeniedError, match="append-only"), translate_errors(), \
            db.atomic():
        db.execute_sql(sql, (entry["id"],))
    assert AuditLogQueries.list(admin_user_id=entry["admin_user_id"])["items"] == [entry]


@postgres_only
def test_truncate_is_refused() -> None:
    entry = _entry()
    with pytest.raises(PermissionDeniedError, match="TRUNCATE"), translate_errors(), \
            db.atomic():
        db.execute_sql("TRUNCATE admin_audit_log")
    assert AuditLogQueries.list(admin_user_id=entry["admin_user_id"])["items"] == [entry]
