"""The ``datalayer`` command: migrate, rollback, status, check, and its error reporting.

Every test makes a database of its own (the backend comes from DATALAYER_TEST_BACKEND);
none relies on conftest fixtures (only on the scratch_database helper).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import peewee as pw
import pytest
from click.testing import CliRunner, Result
from helpers import scratch_database

from datalayer.cli.main import main, register
from datalayer.evolve.migrate import migrations_dir
from datalayer.models import User

ALL = sorted(p.stem for p in migrations_dir().glob("[0-9][0-9][0-9]_*.py"))


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    """The URL of a new, empty database of this test's own (on SQLite, an empty file: the
    commands other than migrate refuse a file that does not exist)."""
    with scratch_database(tmp_path) as scratch:
        if scratch.startswith("sqlite:///"):
            sqlite3.connect(scratch.removeprefix("sqlite:///")).close()
        yield scratch


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def assert_one_line_error(result: Result, *fragments: str) -> None:
    """The error is one line, after the line that names the database."""
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    if lines and lines[0].startswith("database: "):
        lines = lines[1:]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.output


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("migrate", "rollback", "status", "check", "seed", "diagram"):
        assert command in result.output


def test_register_adds_a_subcommand() -> None:
    @click.command("hello")
    def hello() -> None:
        """Say hello."""
        click.echo("hello")

    register(hello)
    try:
        assert "hello" in run("--help").output
        assert (run("hello").exit_code, run("hello").output) == (0, "hello\n")
    finally:
        main.commands.pop("hello")


def test_status_migrate_rollback_cycle(url: str) -> None:
    result = run("status", "--database", url)
    assert result.exit_code == 1  # pending migrations: a deploy script stops here
    assert result.stdout.splitlines() == [f"[ ] {n}" for n in ALL] + [
        f"0 applied, {len(ALL)} pending: run `datalayer migrate`"]

    result = run("migrate", "--database", url)
    assert (result.exit_code, result.stdout) == (0, "".join(f"Applied {n}\n" for n in ALL))
    result = run("migrate", "--database", url)
    assert (result.exit_code, result.stdout) == (
        0, "Nothing to migrate: the database is up to date.\n")

    result = run("status", "--database", url)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [f"[x] {n}" for n in ALL] + [
        f"{len(ALL)} applied, 0 pending"]

    assert_one_line_error(run("rollback", "--count", str(len(ALL) + 1), "--database", url),
                          f"cannot roll back {len(ALL) + 1} migration(s): only {len(ALL)} applied")
    result = run("rollback", "--count", str(len(ALL)), "--database", url)
    assert (result.exit_code, result.stdout) == (
        0, "".join(f"Rolled back {n}\n" for n in ALL[::-1]))
    result = run("status", "--database", url)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [f"[ ] {n}" for n in ALL] + [
        f"0 applied, {len(ALL)} pending: run `datalayer migrate`"]


def test_status_json_and_exit_code(url: str) -> None:
    result = run("status", "--json", "--database", url)
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"database": url, "applied": [], "pending": ALL,
                                         "up_to_date": False}
    run("migrate", "--to", ALL[0], "--database", url)
    result = run("status", "--json", "--database", url)
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"database": url, "applied": ALL[:1],
                                         "pending": ALL[1:], "up_to_date": False}
    run("migrate", "--database", url)
    result = run("status", "--json", "--database", url)
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"database": url, "applied": ALL, "pending": [],
                                         "up_to_date": True}


def test_check_passes_after_migrate(url: str) -> None:
    run("migrate", "--database", url)
    result = run("check", "--database", url)
    assert (result.exit_code, result.stdout) == (0, "The schema matches the models.\n")


def test_check_fails_when_migrations_are_pending(url: str) -> None:
    assert_one_line_error(run("check", "--database", url),
                          f"pending migration(s) ({', '.join(ALL)})")


def test_check_exits_1_when_a_model_gains_a_column(url: str) -> None:
    run("migrate", "--database", url)
    User._meta.add_field("nickname", pw.TextField(null=True))
    try:
        result = run("check", "--database", url)
    finally:
        User._meta.remove_field("nickname")
        delattr(User, "nickname")
    assert result.exit_code == 1
    assert result.stdout.startswith("The schema does not match the models")
    assert "add_column(migrator, 'user', 'nickname', pw.TextField(null=True))" \
        in result.stdout
    assert "user.nickname: column is missing from the database" in result.stdout
    assert run("check", "--database", url).exit_code == 0


def test_direct_url_wins_over_database_url(url: str, monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # the migrations are found from any directory
    monkeypatch.setenv("DATABASE_URL", "nosuchscheme://pooler/db")
    monkeypatch.setenv("DATABASE_DIRECT_URL", url)
    result = run("migrate")
    assert (result.exit_code, result.stdout) == (0, "".join(f"Applied {n}\n" for n in ALL))
    monkeypatch.delenv("DATABASE_DIRECT_URL")
    assert_one_line_error(run("status"), "unsupported database URL scheme 'nosuchscheme'")


@pytest.mark.parametrize(
    ("database", "fragment"),
    [
        ("nosuchscheme://host/db", "unsupported database URL scheme"),
        ("postgresql://postgres@127.0.0.1:1/nowhere", "cannot connect to the database"),
        ("sqlite:////nonexistent-dir/sub/x.sqlite3", "no database at /nonexistent-dir/sub/x.sqlite3"),
    ],
)
def test_errors_are_one_line(database: str, fragment: str) -> None:
    assert_one_line_error(run("status", "--database", database), fragment)


def test_real_process_reports_an_unreachable_database_in_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "datalayer.cli", "migrate", "--database",
         "postgresql://postgres:secret@127.0.0.1:1/nowhere"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "database: postgresql://postgres:***@127.0.0.1:1/nowhere (--database)"
    assert len(lines) == 2 and lines[1].startswith("Error: cannot connect"), result.stderr
    assert "secret" not in result.stderr


def test_a_checkout_migration_the_install_does_not_run_is_named(
        url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`pip install .` copies the migrations: one written later in ./migrations is not run."""
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "999_written_later.py").write_text("")
    monkeypatch.chdir(tmp_path)
    result = run("status", "--database", url)
    assert result.exit_code == 1  # nothing migrated yet
    assert "999_written_later" in result.stderr and "pip install -e ." in result.stderr
    assert "999_written_later" not in result.stdout


def test_help_lists_lazy_commands_without_importing_them() -> None:
    from datalayer.cli.main import LAZY_COMMANDS, LAZY_HELP

    assert set(LAZY_HELP) == set(LAZY_COMMANDS)
    script = ("import sys; from click.testing import CliRunner; from datalayer.cli.main import "
              "LAZY_COMMANDS, main; out = CliRunner().invoke(main, ['--help']).output; "
              "print(sorted(m.split(':')[0] for m in LAZY_COMMANDS.values() "
              "if m.split(':')[0] in sys.modules)); print(out)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    imported, _, output = result.stdout.partition("\n")
    assert imported == "[]", imported
    for name in LAZY_COMMANDS:
        assert f"  {name} " in output


def test_lazy_help_is_each_commands_own_line() -> None:
    from datalayer.cli.main import LAZY_HELP

    context = click.Context(main)
    for name, line in LAZY_HELP.items():
        command = main.get_command(context, name)
        assert command is not None
        assert command.get_short_help_str(limit=500) == line, name
