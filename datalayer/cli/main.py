"""The ``datalayer`` command: migrate, rollback, status, check (and seed, diagram).

Subcommands living in other modules join the group in one of two ways: list them in
``LAZY_COMMANDS`` (imported only when used, so ``datalayer --help`` stays fast), or
call ``register(command)`` from code that is already imported.
"""

from __future__ import annotations

import importlib
import json
import os
import warnings
from typing import Any

import click

from datalayer.connection.database import describe_target, resolve_target, sqlite_file
from datalayer.connection.schema_version import SchemaBehindWarning
from datalayer.errors import DataLayerError
from datalayer.evolve import migrate as migrations
from datalayer.redact import redact_url

__all__ = ["LAZY_COMMANDS", "announce", "database_option", "main", "register"]

# Subcommands defined elsewhere: name -> "module:attribute" of a click.Command.
LAZY_COMMANDS: dict[str, str] = {
    "admin": "datalayer.cli.security:admin_group",
    "adopt": "datalayer.cli.adopt:adopt_command",
    "demo": "datalayer.cli.demo:demo_command",
    "diagram": "datalayer.cli.dev:diagram_command",
    "grant-app-role": "datalayer.cli.security:grant_app_role_command",
    "maintain": "datalayer.cli.maintain:maintain_command",
    "makemigrations": "datalayer.evolve.makemigrations:makemigrations_command",
    "queue": "datalayer.cli.ops:queue_command",
    "seed": "datalayer.cli.dev:seed_command",
    "user": "datalayer.cli.ops:user_group",
}

# Their one-line help, so `datalayer --help` lists them without importing their modules
# (tests/test_cli.py keeps each line equal to the command's own).
LAZY_HELP: dict[str, str] = {
    "admin": "The admin console's users: make the first admin.",
    "adopt": "Convert a database made by the original TypeScript package into this "
             "library's schema, keeping every row.",
    "demo": "Walk one real lifecycle through the public API (migrating first) and print it.",
    "diagram": "Print a Mermaid erDiagram of every table, column and relation (from the "
               "models).",
    "grant-app-role": "Create or update the app role NAME: DML on the tables, INSERT and "
                      "SELECT only on the audit log, no DDL.",
    "maintain": "Expire invites and impersonations, purge expired sessions and "
                "verifications, release stale delivery leases, delete old archived "
                "notifications.",
    "makemigrations": "Write migrations/NNN_NAME.py from the difference between the models "
                      "and the migrations, with its rollback.",
    "queue": "Show the delivery queue's health (DeliveryQueries.stats).",
    "seed": "Fill a migrated database with realistic, deterministic data, in bulk.",
    "user": "A user's data rights: export everything about them, or erase them.",
}

URL_HELP = (
    "Database URL, e.g. postgresql://user@host:5432/db or sqlite:///path.db. "
    "Default: $DATABASE_DIRECT_URL, else $DATABASE_URL, else sqlite:///datalayer.sqlite3."
)
# The commands that are not migrations (DATABASE_DIRECT_URL is for migrations only).
APP_URL_HELP = "Database URL. Default: $DATABASE_URL, else sqlite:///datalayer.sqlite3."


class DataLayerGroup(click.Group):
    """A click group that loads lazy subcommands and reports errors in one line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the commands, the lazy ones from LAZY_HELP (nothing imported)."""
        limit = formatter.width - 6 - max(len(name) for name in self.list_commands(ctx))
        rows = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name)
            if command is None:
                rows.append((name, _short(LAZY_HELP.get(name, ""), limit)))
            elif not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            module_name, _, attribute = LAZY_COMMANDS[cmd_name].partition(":")
            command = getattr(importlib.import_module(module_name), attribute)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        # A command that finds the database behind says so in its own words (the log
        # record of datalayer.connection.schema_version); no Python warning on top.
        warnings.filterwarnings("ignore", category=SchemaBehindWarning)
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except DataLayerError as exc:
            if ctx.params.get("debug"):
                raise
            raise click.ClickException(_one_line(str(exc))) from exc
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            raise click.ClickException(
                f"unexpected {type(exc).__name__}: {_one_line(str(exc))} "
                "(run with --debug for the traceback)"
            ) from exc


@click.group(cls=DataLayerGroup, context_settings={"help_option_names": ["-h", "--help"]})
# The version is read from the installed metadata only when --version is given, so
# `datalayer --help` and every other command pay nothing for it.
@click.version_option(package_name="tenantlayer", message="%(prog)s %(version)s")
@click.option("--debug", is_flag=True, help="Show the full traceback when a command fails.")
def main(debug: bool) -> None:
    """Manage the datalayer database: apply and roll back migrations, show their
    status, check that the schema matches the models, seed it, draw it.

    Migrations ship inside the package (datalayer.migrations), so these commands work
    from any directory. Set DATABASE_DIRECT_URL to run migrations on a direct
    connection while the application goes through a pooler (DATABASE_URL).
    """


def register(command: click.Command, name: str | None = None) -> click.Command:
    """Add a subcommand defined in another module to the ``datalayer`` group."""
    main.add_command(command, name)
    return command


def database_option(function: Any) -> Any:
    """Add the --database option shared by the migration commands."""
    return click.option("--database", "url", metavar="URL", default=None,
                        help=URL_HELP)(function)


def announce(url: str | None, *, direct: bool = False, creates: bool = False) -> None:
    """Say on stderr which database the command works on (password masked).

    ``direct``: a migration command (``DATABASE_DIRECT_URL`` first). A command that
    does not create the database (``creates`` False) stops when it names a SQLite file
    that does not exist, rather than leave an empty one behind in the working directory.
    """
    click.echo(describe_target(url, direct=direct), err=True)
    target, source = resolve_target(url, direct=direct)
    path = sqlite_file(target)
    if not creates and path is not None and not os.path.exists(path):
        unset = " (DATABASE_URL is not set)" if source == "default" else ""
        raise click.ClickException(
            f"no database at {os.path.abspath(path)}{unset}: run `datalayer migrate` to "
            "create it, or point DATABASE_URL (or --database) at your database")


@main.command()
@click.option("--allow-data-loss", is_flag=True,
              help="Apply migrations that drop tables or columns holding data.")
@click.option("--lock-timeout", default=migrations.LOCK_TIMEOUT, show_default=True,
              type=click.FloatRange(min=0.1), metavar="SECONDS",
              help="PostgreSQL: how long a DDL statement waits for a table lock before "
                   "the run (or, in an online migration, the statement) is retried with "
                   "backoff; writers queued behind it wait at most this long.")
@click.option("--to", "to", metavar="NAME", default=None,
              help="Stop after this migration (e.g. 002_admin_console).")
@database_option
def migrate(allow_data_loss: bool, lock_timeout: float, to: str | None,
            url: str | None) -> None:
    """Apply every pending migration.

    Safe to run from several processes at once (replicas starting together): on
    PostgreSQL the run holds a transaction-level advisory lock, so each migration is
    applied exactly once; the whole run commits or rolls back as one transaction (a
    migration of CONCURRENTLY index steps runs on its own, outside it). A pending step
    that drops a table or column holding data is refused, with its row counts, unless
    --allow-data-loss.
    """
    announce(url, direct=True, creates=True)
    _warn_unshipped()
    applied = migrations.migrate(url, to=to, allow_data_loss=allow_data_loss,
                                 lock_timeout=lock_timeout,
                                 notify=lambda message: click.echo(message, err=True))
    if not applied:
        click.echo("Nothing to migrate: the database is up to date.")
    for name in applied:
        click.echo(f"Applied {name}")


@main.command()
@click.option("--count", "-n", default=1, show_default=True, type=click.IntRange(min=1),
              help="How many of the most recent migrations to roll back.")
@click.option("--allow-data-loss", is_flag=True,
              help="Roll back migrations whose rollback drops tables or columns holding data.")
@database_option
def rollback(count: int, allow_data_loss: bool, url: str | None) -> None:
    """Roll back the most recent migration(s), newest first, in one transaction.

    A rollback that drops a table or column holding data (the undoing of a migration
    that created it) is refused, with its row counts, unless --allow-data-loss.
    """
    announce(url, direct=True)
    for name in migrations.rollback(url, count=count, allow_data_loss=allow_data_loss):
        click.echo(f"Rolled back {name}")


@main.command()
@click.option("--json", "as_json", is_flag=True,
              help='Print {"database", "applied", "pending", "up_to_date"} as JSON.')
@database_option
def status(as_json: bool, url: str | None) -> None:
    """List the applied and the pending migrations (changes nothing).

    Exits 0 when the database is up to date, 1 while migrations are pending (as
    `prisma migrate status` does), so a deploy script can stop on it.
    """
    announce(url, direct=True)
    _warn_unshipped()
    applied, pending = migrations.status(url)
    if as_json:
        target, _ = resolve_target(url, direct=True)
        click.echo(json.dumps({"database": redact_url(target), "applied": applied,
                               "pending": pending, "up_to_date": not pending}, indent=2))
    else:
        for name in applied:
            click.echo(f"[x] {name}")
        for name in pending:
            click.echo(f"[ ] {name}")
        click.echo(f"{len(applied)} applied, {len(pending)} pending"
                   + (": run `datalayer migrate`" if pending else ""))
    if pending:
        raise click.exceptions.Exit(1)


@main.command("check")
@database_option
def check_command(url: str | None) -> None:
    """Check that the migrated schema matches the models.

    Compares the models with the state the applied migrations describe, and the
    database's catalog with the catalog of the models' schema built in a scratch place
    on the same server: columns (type, NULL, default), CHECKs, foreign keys and their
    actions, indexes (columns, uniqueness, WHERE) and triggers, both ways. Exits 0 when
    they agree, 1 naming every difference, and fails when migrations are pending.
    """
    announce(url, direct=True)
    problems = migrations.schema_drift(url)
    if not problems:
        click.echo("The schema matches the models.")
        return
    click.echo(f"The schema does not match the models ({len(problems)} difference(s)):")
    for problem in problems:
        click.echo(f"  - {problem}")
    raise click.exceptions.Exit(1)


def _warn_unshipped() -> None:
    unshipped = migrations.unshipped_migrations()
    if unshipped:
        click.echo(f"warning: ./migrations holds {', '.join(unshipped)}, which this installed "
                   f"datalayer ({migrations.migrations_dir()}) does not run: install the "
                   "checkout with `pip install -e .`", err=True)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:max(limit - 3, 0)].rsplit(" ", 1)[0] + "..."


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " ".join(lines) if lines else "failed"


if __name__ == "__main__":
    main()
