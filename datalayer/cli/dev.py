"""The ``datalayer seed`` and ``datalayer diagram`` subcommands (loaded lazily by cli.py)."""

from __future__ import annotations

import time

import click

from datalayer.cli.main import APP_URL_HELP as URL_HELP
from datalayer.cli.main import announce
from datalayer.connection.database import init_db


@click.command("diagram")
def diagram_command() -> None:
    """Print a Mermaid erDiagram of every table, column and relation (from the models)."""
    from datalayer.cli.diagram import mermaid

    click.echo(mermaid(), nl=False)


@click.command("seed")
@click.option("--database", "url", metavar="URL", help=URL_HELP)
@click.option("--tenants", default=10, show_default=True, type=click.IntRange(1),
              help="Tenants to create.")
@click.option("--users-per-tenant", default=5, show_default=True, type=click.IntRange(1),
              help="Users in each tenant (the first is its owner).")
@click.option("--todos-per-user", default=20, show_default=True, type=click.IntRange(0),
              help="Todos per user (about 70% in the tenant, the rest personal).")
@click.option("--notifications-per-user", default=5, show_default=True,
              type=click.IntRange(0), help="Notifications per user.")
@click.option("--waitlist", default=0, show_default=True, type=click.IntRange(0),
              help="Waitlist addresses.")
@click.option("--admins", default=2, show_default=True, type=click.IntRange(0),
              help="Back-office users, each with a session, impersonations and notes.")
@click.option("--seed", "seed_value", default=1, show_default=True, type=int,
              help="Random seed: the same seed always makes the same rows.")
def seed_command(url: str | None, tenants: int, users_per_tenant: int, todos_per_user: int,
                 notifications_per_user: int, waitlist: int, admins: int,
                 seed_value: int) -> None:
    """Fill a migrated database with realistic, deterministic data, in bulk.

    PostgreSQL loads with COPY: a million todos take well under a few minutes.
    Run `datalayer migrate` first.
    """
    from datalayer.evolve.migrate import status
    from datalayer.seed import SeedPlan, seed

    announce(url)
    _, pending = status(url)
    if pending:
        raise click.ClickException(
            f"{len(pending)} migration(s) pending: run `datalayer migrate` first")
    plan = SeedPlan(tenants=tenants, users_per_tenant=users_per_tenant,
                    todos_per_user=todos_per_user,
                    notifications_per_user=notifications_per_user,
                    waitlist=waitlist, admins=admins, seed=seed_value)
    init_db(url)
    started = time.perf_counter()
    with click.progressbar(length=sum(plan.counts().values()), label="Seeding",
                           show_pos=True, show_percent=True) as bar:
        written = seed(plan, progress=bar.update)
    elapsed = time.perf_counter() - started
    width = max(len(name) for name in written)
    for name, count in written.items():
        click.echo(f"  {name:<{width}}  {count:>10,}")
    click.echo(f"Seeded {sum(written.values()):,} rows in {elapsed:.1f} s (seed {seed_value}).")
