"""``datalayer grant-app-role NAME`` and ``datalayer admin bootstrap EMAIL`` (loaded lazily).

Both act with the database's own credentials (the owner's, as migrations do): the
first creates or updates the least-privilege role the application connects as, the
second makes the first admin while no active admin holds ``admin_roles:write``.
"""

from __future__ import annotations

import os

import click

from datalayer.connection.database import db, init_db

URL_HELP = "Database URL (the owner's). Default: $DATABASE_DIRECT_URL, else $DATABASE_URL."


@click.command("grant-app-role")
@click.argument("name")
@click.option(
    "--password-env",
    metavar="VAR",
    help="Give the role LOGIN with the password in environment variable VAR.",
)
@click.option("--database", "url", metavar="URL", help=URL_HELP)
def grant_app_role_command(name: str, password_env: str | None, url: str | None) -> None:
    """Create or update the app role NAME: DML on the tables, INSERT and SELECT only on
    the audit log, no DDL. Run it after each migration (PostgreSQL)."""
    from datalayer.evolve.migrate import resolve_url
    from datalayer.evolve.roles import grant_app_role

    password = None
    if password_env is not None:
        password = os.environ.get(password_env)
        if not password:
            raise click.ClickException(f"${password_env} is not set")
    for statement in grant_app_role(resolve_url(url), name, password=password):
        click.echo(statement + ";")
    click.echo(f"App role {name} is up to date.")


@click.group("admin")
def admin_group() -> None:
    """The admin console's users: make the first admin."""


@admin_group.command("bootstrap")
@click.argument("email")
@click.option("--name", help="The admin's display name.")
@click.option("--database", "url", metavar="URL", help=URL_HELP)
def bootstrap_command(email: str, name: str | None, url: str | None) -> None:
    """Make EMAIL an active admin holding admin_roles:write (role super_admin); refused
    once an active admin holds admin_roles:write."""
    from datalayer.evolve.migrate import resolve_url
    from datalayer.queries import AdminUserQueries

    init_db(resolve_url(url))
    try:
        admin = AdminUserQueries.bootstrap(email, name=name)
    finally:
        db.close()
    click.echo(f"{admin['email']} is an active admin with the role super_admin ({admin['id']}).")
