"""Safe by default: every command names its database, the demo keeps to its own, and
``init_db()`` says once when the database is behind the installed migrations."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from helpers import IS_PG, scratch_database

from datalayer import AdminUserQueries, UserQueries, db, init_db
from datalayer.cli.demo import run_demo
from datalayer.cli.demo_guard import DEMO_URL
from datalayer.cli.main import main
from datalayer.connection import schema_version
from datalayer.connection.schema_version import SchemaBehindWarning
from datalayer.evolve.migrate import migrate, migrations_dir
from datalayer.models import ALL_MODELS, Tenant, User

ALL = sorted(p.stem for p in migrations_dir().glob("[0-9][0-9][0-9]_*.py"))
# An unreachable server: every command fails fast after naming its database.
UNREACHABLE = "postgresql://app:hunter2@127.0.0.1:1/appdb"

COMMANDS = [
    ["migrate"], ["rollback"], ["status"], ["check"], ["seed", "--tenants", "1"],
    ["queue"], ["maintain", "--dry-run"], ["user", "export", "a@example.com"],
    ["user", "erase", "a@example.com", "--actor", "ops@example.com", "--reason", "r"],
    ["adopt", "--dry-run"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_every_command_names_its_database_first_password_masked(
        args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_DIRECT_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE)
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0  # nothing listens on port 1
    first = result.stderr.splitlines()[0]
    assert first == "database: postgresql://app:***@127.0.0.1:1/appdb (from DATABASE_URL)"
    assert "hunter2" not in result.stderr + result.stdout


@pytest.mark.parametrize("args", [["status"], ["queue"], ["maintain", "--dry-run"]],
                         ids=lambda a: a[0])
def test_the_embedded_default_says_database_url_is_not_set(
        args: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("DATABASE_DIRECT_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args)
    path = tmp_path.resolve() / "datalayer.sqlite3"
    assert result.stderr.splitlines()[0] == (
        f"database: sqlite:///datalayer.sqlite3 (file {path}, not created yet)"
        " - the embedded default, because DATABASE_URL is not set")


@pytest.mark.parametrize("args", [["status"], ["check"], ["queue"], ["maintain"], ["rollback"],
                                  ["user", "export", "a@example.com"], ["seed"]],
                         ids=lambda a: a[0])
def test_commands_other_than_migrate_leave_a_missing_sqlite_file_uncreated(
        args: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("DATABASE_DIRECT_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    path = tmp_path.resolve() / "datalayer.sqlite3"
    assert result.stderr.splitlines()[-1] == (
        f"Error: no database at {path} (DATABASE_URL is not set): run `datalayer migrate` "
        "to create it, or point DATABASE_URL (or --database) at your database")
    assert list(tmp_path.iterdir()) == []  # nothing created
    migrated = CliRunner().invoke(main, ["migrate"])  # migrate creates it
    assert migrated.exit_code == 0 and path.is_file()


def test_erase_shows_the_target_before_it_asks(fresh_db: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    UserQueries.create({"name": "Real", "email": "real@corp.example"})
    AdminUserQueries.bootstrap("ops@corp.example", name="Ops")  # the first admin
    db.close()
    monkeypatch.setattr("datalayer.cli.ops._is_terminal", lambda: True)
    result = CliRunner().invoke(main, ["user", "erase", "real@corp.example", "--actor",
                                       "ops@corp.example", "--reason", "r",
                                       "--database", fresh_db], input="n\n")
    assert result.exit_code == 1  # answered no: aborted
    assert result.stderr.splitlines()[0] == f"database: {fresh_db} (--database)"
    assert (f"Erase real@corp.example and everything of theirs from {fresh_db}? "
            "This cannot be undone") in result.stderr
    init_db(fresh_db)
    assert User.select().where(User.email == "real@corp.example").count() == 1


def counts() -> dict[str, int]:
    return {m._meta.table_name: m.select().count() for m in ALL_MODELS}


def test_demo_refuses_a_database_holding_other_users(fresh_db: str) -> None:
    UserQueries.create({"name": "Real", "email": "real@corp.example"})
    before = counts()
    db.close()
    with pytest.raises(click.ClickException) as refused:
        run_demo(fresh_db, echo=lambda _: None)
    assert "1 row(s) in user" in refused.value.message
    assert "--yes" in refused.value.message
    init_db(fresh_db)
    assert counts() == before  # nothing written
    db.close()
    after = run_demo(fresh_db, echo=lambda _: None, yes=True)
    assert after["user"] == 3 and after["tenants"] == 1


def test_demo_refuses_a_database_with_tables_of_someone_else(tmp_path: Path) -> None:
    with scratch_database(tmp_path) as url:
        init_db(url)
        with pytest.warns(SchemaBehindWarning):  # nothing of ours migrated there
            db.execute_sql("CREATE TABLE orders (id integer PRIMARY KEY)")
        db.close()
        with pytest.raises(click.ClickException) as refused:
            run_demo(url, echo=lambda _: None)
        assert "table orders" in refused.value.message
        init_db(url)
        assert "migratehistory" not in db.get_tables()  # not even migrated
        db.close()


def test_demo_runs_again_on_its_own_data(fresh_db: str) -> None:
    first = run_demo(fresh_db, echo=lambda _: None)
    second = run_demo(fresh_db, echo=lambda _: None)  # only the demo's rows: no --yes needed
    assert (first["user"], second["user"]) == (2, 2)
    assert second["tenants"] == 2


def test_demo_command_uses_its_own_database_not_database_url(
        fresh_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    UserQueries.create({"name": "Real", "email": "real@corp.example"})
    before = counts()
    db.close()
    monkeypatch.setenv("DATABASE_URL", fresh_db)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0].startswith(f"database: {DEMO_URL} (file ")
    assert "DATABASE_URL is not used" in result.stderr
    assert (tmp_path / "datalayer-demo.sqlite3").is_file()
    init_db(fresh_db)
    assert counts() == before and Tenant.select().count() == 0  # untouched
    db.close()


@pytest.fixture
def behind(tmp_path: Path) -> object:
    """A database with only the first migration applied (the rest pending)."""
    with scratch_database(tmp_path) as url:
        migrate(url, to=ALL[0])
        yield url
    db.close()


def test_init_db_warns_once_when_the_database_is_behind(
        behind: str, caplog: pytest.LogCaptureFixture) -> None:
    schema_version._checked.clear()  # a process that has not looked at it yet
    caplog.set_level(logging.DEBUG, logger="datalayer")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):  # init_db again and again: still one check, one warning
            init_db(behind, log_sql=True)
            assert UserQueries.find_by_email("nobody@example.com") is None
            db.close()
            assert UserQueries.find_by_email("nobody@example.com") is None  # reconnects
    behind_warnings = [w for w in caught if issubclass(w.category, SchemaBehindWarning)]
    assert len(behind_warnings) == 1
    message = str(behind_warnings[0].message)
    assert f"{len(ALL) - 1} migration(s) behind" in message
    assert ", ".join(ALL[1:]) in message and "run `datalayer migrate`" in message
    assert behind_warnings[0].filename == __file__  # points at the caller's line
    records = [r for r in caplog.records
               if r.name == "datalayer.connection" and r.levelno == logging.WARNING]
    assert [r.getMessage() for r in records] == [message]
    sent = [r.getMessage() for r in caplog.records if r.name == "datalayer.sql"]
    assert sum("migratehistory" in line for line in sent) == 1  # one query per process
    assert sum('FROM "user"' in line for line in sent) == 6


def test_init_db_says_nothing_on_an_up_to_date_database(
        fresh_db: str, caplog: pytest.LogCaptureFixture) -> None:
    schema_version._checked.clear()
    db.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        init_db(fresh_db)
        assert UserQueries.find_by_email("nobody@example.com") is None
    assert not [w for w in caught if issubclass(w.category, SchemaBehindWarning)]
    assert not [r for r in caplog.records if r.name == "datalayer.connection"]
    assert fresh_db.startswith("postgresql") == IS_PG
