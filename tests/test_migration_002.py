"""Migration 002 (the admin console, the spec fixes): down to 001 and up again keeping
every row, 001's schema exactly back, and the values the new CHECKs refuse rewritten.

Each test makes a database of its own and runs the migrations as users do.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import peewee as pw
import pytest
from helpers import IS_PG, scratch_database
from peewee_migrate import Router
from test_migrations import connected, pg_catalog, sqlite_schema
from test_migrations_stairway import snapshot

from datalayer.evolve import migrate as migrations

NAME = "002_admin_console"


def down_to_001(url: str) -> list[str]:
    """Roll back 002 and every migration after it; return their names, newest first."""
    applied, _ = migrations.status(url)
    undone = migrations.rollback(url, count=len(applied) - applied.index(NAME),
                                 allow_data_loss=True)  # 002's tables go with it
    assert undone[-1] == NAME
    return undone


def up_from_001(url: str) -> list[str]:
    """Migrate from 001 to the newest; 002 comes first."""
    done = migrations.migrate(url)
    assert done[0] == NAME
    return done
NEW_TABLES = {"admin_sessions", "admin_impersonation_sessions", "admin_flags",
              "admin_user_notes", "admin_tenant_notes"}


def _seed(url: str) -> None:
    subprocess.run([sys.executable, "-m", "datalayer.cli", "seed", "--database", url,
                    "--tenants", "2", "--users-per-tenant", "3", "--todos-per-user", "2",
                    "--notifications-per-user", "2", "--waitlist", "3"],
                   check=True, capture_output=True, timeout=300)


def _rows_002_adds_meaning_to(database: pw.Database) -> None:
    """Rows 001 could not hold (a catalogue type), rows written the original's way
    (ids and outcome left to the server), arrays, and rows in the new tables."""
    run = database.execute_sql
    user = run('SELECT id FROM "user" ORDER BY id LIMIT 1').fetchone()[0]
    run("INSERT INTO notifications (id, recipient_user_id, type, title, body) "
        f"VALUES ('n-dm', '{user}', 'direct_message', 'Hi', 'Body')")
    run("INSERT INTO waitlist (email) VALUES ('server-id@example.com')")
    run(f"INSERT INTO user_activity_daily (user_id, date, features_used) "
        f"VALUES ('{user}', '2030-01-02', '[\"todos\"]')")
    run("INSERT INTO subscription_events (id, provider, event_id, event_type) "
        "VALUES ('e1', 'polar', 'evt_1', 'subscription.created')")
    run("INSERT INTO admin_users (id, email) VALUES ('adm', 'adm@example.com')")
    run("INSERT INTO admin_roles (key, name, permissions) VALUES ('r', 'R', '[\"users:read\"]')")
    run("INSERT INTO admin_flags (id, target_type, target_id, flag_type, reason, created_by) "
        f"VALUES ('f1', 'user', '{user}', 'vip', 'big', 'adm')")
    run("INSERT INTO admin_user_notes (id, user_id, admin_user_id, note) "
        f"VALUES ('un1', '{user}', 'adm', 'note')")


def test_002_goes_down_to_001_and_up_again_keeping_every_row(tmp_path: Path) -> None:
    with scratch_database(tmp_path) as url:
        migrations.migrate(url)
        _seed(url)
        with connected(url) as database, database.atomic():
            _rows_002_adds_meaning_to(database)
        before = snapshot(url)
        assert all(before[t][0] for t in ("notifications", "waitlist", "user_activity_daily",
                                          "subscription_events", "admin_flags"))
        down_to_001(url)
        down = snapshot(url)
        assert set(down) == set(before) - NEW_TABLES
        assert down == {t: before[t] for t in down}  # every row of 001's tables, as it was
        with connected(url) as database:
            with pytest.raises(pw.IntegrityError), database.atomic():  # 001's list is back
                database.execute_sql(
                    "INSERT INTO notifications (id, recipient_user_id, type, title, body) "
                    "SELECT 'n-new', id, 'kudos_sent', 't', 'b' FROM \"user\" LIMIT 1")
            with pytest.raises(pw.IntegrityError), database.atomic():  # no server id
                database.execute_sql("INSERT INTO waitlist (email) VALUES ('x@example.com')")
        up_from_001(url)
        up = snapshot(url)
        assert {t: up[t] for t in down} == down
        assert all(up[t][0] == 0 for t in NEW_TABLES)  # their rows went with the rollback
        assert migrations.schema_drift(url) == []


def _001_only(url: str, tmp_path: Path) -> None:
    """Apply 001 alone, from a copy of the folder holding only it (a pristine 001)."""
    folder = tmp_path / "only_001"
    folder.mkdir()
    for name in ("__init__.py", "conf.py", "001_initial.py"):
        shutil.copy(migrations.migrations_dir() / name, folder / name)
    with connected(url) as database:
        Router(database, migrate_dir=folder).run()


def test_rollback_restores_001s_schema_exactly(tmp_path: Path) -> None:
    with scratch_database(tmp_path) as url, scratch_database(tmp_path) as reference:
        _001_only(reference, tmp_path)
        migrations.migrate(url)
        down_to_001(url)
        if IS_PG:
            assert pg_catalog(url) == pg_catalog(reference)
        else:
            assert sqlite_schema(url) == sqlite_schema(reference)


def test_values_the_new_checks_refuse_are_rewritten_first(tmp_path: Path) -> None:
    """An original writer's '{}' (its text[] default) stored as a JSON object: the next
    merge made ["todos", "{}"]. 002 rewrites such values, then refuses them."""
    with scratch_database(tmp_path) as url:
        migrations.migrate(url)
        down_to_001(url)
        with connected(url) as database, database.atomic():
            run = database.execute_sql
            run("INSERT INTO \"user\" (id, name, email) VALUES ('u', 'U', 'u@example.com')")
            for day, value in (("2030-01-01", "{}"), ("2030-01-02", '"todos"'),
                               ("2030-01-03", '["a", "b"]'), ("2030-01-04", "7")):
                run("INSERT INTO user_activity_daily (id, user_id, date, features_used) "
                    f"VALUES ('{day}', 'u', '{day}', '{value}')")
            run("INSERT INTO admin_roles (key, name, permissions) VALUES ('r', 'R', '{}')")
        up_from_001(url)
        with connected(url) as database:
            rows = database.execute_sql(
                "SELECT id, features_used FROM user_activity_daily ORDER BY id").fetchall()
            stored = {day: value if isinstance(value, list) else json.loads(value)
                      for day, value in rows}
            assert stored == {"2030-01-01": [], "2030-01-02": ["todos"],
                              "2030-01-03": ["a", "b"], "2030-01-04": []}
            (permissions,) = database.execute_sql("SELECT permissions FROM admin_roles").fetchone()
            assert (permissions if isinstance(permissions, list) else json.loads(permissions)) == []
            for statement in (
                "UPDATE user_activity_daily SET features_used = '{}'",
                "UPDATE admin_roles SET permissions = '\"users:read\"'",
            ):
                with pytest.raises(pw.IntegrityError), database.atomic():
                    database.execute_sql(statement)
