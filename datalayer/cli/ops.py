"""``datalayer queue`` and ``datalayer user export|erase`` (loaded lazily by cli.py)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

import click

from datalayer.cli.main import APP_URL_HELP as URL_HELP
from datalayer.cli.main import announce
from datalayer.connection.database import db, init_db, resolve_target
from datalayer.redact import redact_url
from datalayer.types import UserId


@click.command("queue")
@click.option("--database", "url", metavar="URL", help=URL_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the stats as JSON.")
def queue_command(url: str | None, as_json: bool) -> None:
    """Show the delivery queue's health (DeliveryQueries.stats).

    Counts by status and channel, the age of the oldest due delivery, leases past their
    end (workers that died: `datalayer maintain` releases them), sent and failed in the
    last hour.
    """
    from datalayer.queries import DeliveryQueries

    announce(url)
    init_db(url)
    try:
        stats = DeliveryQueries.stats()
    finally:
        db.close()
    if as_json:
        click.echo(json.dumps(stats, indent=2))
        return
    click.echo(render_stats(stats))


def render_stats(stats: Mapping[str, Any]) -> str:
    """The stats as a small table and a few lines."""
    statuses = list(stats["by_status"])
    lines = [f"{'channel':<10}" + "".join(f"{s:>12}" for s in statuses)]
    for channel, counts in stats["by_channel"].items():
        lines.append(f"{channel:<10}" + "".join(f"{counts[s]:>12,}" for s in statuses))
    lines.append(f"{'all':<10}" + "".join(f"{stats['by_status'][s]:>12,}" for s in statuses))
    age = stats["oldest_due_age_seconds"]
    rate = stats["failure_rate_last_hour"]
    lines += [
        "",
        f"oldest due delivery waiting: {'none due' if age is None else f'{age:,.1f} s'}",
        f"expired leases:              {stats['expired_leases']:,}",
        f"sent in the last hour:       {stats['sent_last_hour']:,}",
        f"failed in the last hour:     {stats['failed_last_hour']:,}"
        + ("" if rate is None else f" ({rate:.1%} of finished)"),
    ]
    return "\n".join(lines)


def _is_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


@click.group("user")
def user_group() -> None:
    """A user's data rights: export everything about them, or erase them."""


def _user_id(email: str) -> UserId:
    from datalayer.queries import UserQueries

    user = UserQueries.find_by_email(email)
    if user is None:
        raise click.ClickException(f"no user with email {email}")
    return user["id"]


@user_group.command("export")
@click.argument("email")
@click.option("--database", "url", metavar="URL", help=URL_HELP)
def user_export_command(email: str, url: str | None) -> None:
    """Print every row about the user with EMAIL as JSON (their right of access)."""
    from datalayer.queries import UserQueries

    announce(url)
    init_db(url)
    try:
        exported = UserQueries.export(_user_id(email))
    finally:
        db.close()
    click.echo(json.dumps(exported, indent=2, sort_keys=True))


@user_group.command("erase")
@click.argument("email")
@click.option(
    "--actor",
    "actor_email",
    required=True,
    metavar="ADMIN_EMAIL",
    help="The admin user doing the erasure (audited).",
)
@click.option("--reason", required=True, help="Why (kept in the USER_ERASE audit row).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--database", "url", metavar="URL", help=URL_HELP)
def user_erase_command(
    email: str, actor_email: str, reason: str, yes: bool, url: str | None
) -> None:
    """Erase the user with EMAIL and everything of theirs, in one transaction.

    Refused while they are a tenant's last owner. Asks for confirmation on a terminal
    (--yes to skip); without a terminal, --yes is required.
    """
    from datalayer.queries import AdminUserQueries
    from datalayer.queries.auth._rights import erase_user  # the step-up-free path, for the CLI
    from datalayer.queries.base import write

    announce(url)
    init_db(url)
    try:
        user_id = _user_id(email)
        admin = AdminUserQueries.find_by_email(actor_email)
        if admin is None:
            raise click.ClickException(f"no admin user with email {actor_email}")
        if not yes:
            if not _is_terminal():
                raise click.ClickException("refusing to erase without --yes (no terminal)")
            target = redact_url(resolve_target(url)[0])
            click.confirm(f"Erase {email} and everything of theirs from {target}? "
                          "This cannot be undone", abort=True, err=True)
        with write():  # the database's own credentials: the actor's right, no step-up
            result = erase_user(user_id, admin["id"], reason, session_token=None)
    finally:
        db.close()
    for table, count in result["counts"].items():
        if count:
            click.echo(f"  {table:<40} {count:>8,}")
    click.echo(f"Erased {email}.")
    if result["review"]:
        click.echo(
            f"{len(result['review'])} free-text value(s) written by others still mention them; "
            "review them (table, row id, column):"
        )
        for item in result["review"]:
            click.echo(f"  {item['table']}  {item['row_id']}  {item['column']}")
