"""The main job (`datalayer demo`) and the signup example, run for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from helpers import IS_PG

from datalayer import db
from datalayer.cli.demo import run_demo
from datalayer.models import ALL_MODELS, Tenant, TenantInvite

ROOT = Path(__file__).resolve().parent.parent


def test_demo_walks_the_lifecycle_and_is_rerunnable(fresh_db) -> None:
    lines: list[str] = []
    first = run_demo(fresh_db, echo=lines.append)
    text = "\n".join(lines)
    for expected in ("Grace Hopper accepted and joined as member",
                     "email send failed, retry scheduled",
                     "email sent (attempt 2)",
                     "-> duplicate_ignored", "-> stale_ignored",
                     "subscription is active; access: True",
                     "ADMIN_ROLE_GRANT", "asks the admin to re-authenticate",
                     "read_only impersonation is refused",
                     "IMPERSONATION_START, TENANT_FLAG_SET, USER_NOTE_ADD",
                     "IMPERSONATION_END, ADMIN_LOGOUT", "Rows per table"):
        assert expected in text, expected
    assert first["user"] == 2 and first["tenant_members"] == 2
    assert first["subscription_events"] == 3 and first["notification_deliveries"] == 4
    assert first["admin_sessions"] == 0  # logged out
    assert first["admin_impersonation_sessions"] == 1 and first["admin_flags"] == 1
    assert first["admin_user_notes"] == 1
    second = run_demo(fresh_db, echo=lambda _: None)
    assert second["user"] == 2  # the same people come back
    assert second["tenants"] == 2 and second["subscription_events"] == 6
    assert second["admin_impersonation_sessions"] == 2 and second["admin_flags"] == 2
    assert set(second) == {m for m in first}  # every table is counted


def test_demo_command_runs_on_its_own_database(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    result = subprocess.run([sys.executable, "-m", "datalayer.cli", "demo"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Database: SqliteDB datalayer-demo.sqlite3" in result.stdout
    rows = result.stdout.split("Rows per table", 1)[1].split()
    assert [name for name in rows if not name.isdigit()] == [
        m._meta.table_name for m in ALL_MODELS]  # every table, the last one last
    assert (tmp_path / "datalayer-demo.sqlite3").exists()
    assert not (tmp_path / "datalayer.sqlite3").exists()  # the application's default: untouched


def test_signup_example_runs(fresh_db) -> None:
    db.close()
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "signup_and_tenant.py"), "--database", fresh_db],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["tenant"]["name"] == "Founders Inc"
    assert "duplicate_signup" in out
    assert out["tenants_of_user"][0]["role"] == "owner"
    assert Tenant.select().count() == 1  # the failed signup left nothing behind
    assert TenantInvite.select().count() == 1
    assert fresh_db.startswith("postgresql") == IS_PG
