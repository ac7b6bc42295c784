"""``datalayer maintain`` (loaded lazily by cli.main): the command around ``maintain()``.

The clean-up itself is a library function, ``datalayer.maintain.maintain``, callable from
a script or a scheduler; this module only parses options, shows progress and prints.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

import click

from datalayer.cli.main import APP_URL_HELP, announce
from datalayer.connection.database import db, init_db
from datalayer.maintain import BATCH_SIZE, Outcome, maintain
from datalayer.models.base import utcnow

__all__ = ["maintain_command", "report"]


def report(outcomes: list[Outcome], dry_run: bool, now: dt.datetime) -> dict[str, Any]:
    """Return the outcome as the JSON document ``--json`` prints."""
    return {
        "now": now.isoformat(),
        "dry_run": dry_run,
        "steps": [
            {
                "name": o.name,
                "table": o.table,
                "due": o.due,
                "done": o.done,
                "rows": o.rows,
                "skipped": o.skipped,
            }
            for o in outcomes
        ],
    }


@click.command("maintain")
@click.option("--database", "url", metavar="URL", help=APP_URL_HELP)
@click.option("--dry-run", is_flag=True, help="Count what is due; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.option(
    "--notification-retention-days",
    default=90,
    show_default=True,
    type=click.IntRange(0),
    help="Delete notifications archived longer ago.",
)
@click.option(
    "--batch-size",
    default=BATCH_SIZE,
    show_default=True,
    type=click.IntRange(1, BATCH_SIZE),
    help="Rows per transaction.",
)
def maintain_command(
    url: str | None, dry_run: bool, as_json: bool, notification_retention_days: int, batch_size: int
) -> None:
    """Expire invites and impersonations, purge expired sessions and verifications,
    release stale delivery leases, delete old archived notifications.

    Safe from cron on several hosts at once (each piece of work is done once), in
    batches of at most 1,000 rows a transaction.
    """
    announce(url)
    init_db(url)
    now = utcnow()
    bar: Any = None
    show_bar = not as_json and not dry_run and sys.stdout.isatty()

    def start(total: int) -> None:
        nonlocal bar
        if show_bar and total:
            bar = click.progressbar(length=total, label="Maintaining", show_pos=True)
            bar.__enter__()

    try:
        outcomes = maintain(
            now,
            dry_run=dry_run,
            retention_days=notification_retention_days,
            batch_size=batch_size,
            on_start=start,
            progress=lambda n: bar.update(n) if bar is not None else None,
        )
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
        db.close()
    if as_json:
        click.echo(json.dumps(report(outcomes, dry_run, now), indent=2))
        return
    for o in outcomes:
        if o.skipped:
            click.echo(f"  {o.name:<30} skipped: {o.skipped}")
        elif dry_run:
            click.echo(f"  {o.name:<30} {o.due:>9,} due")
        else:
            extra = ", ".join(f"{n:,} {t}" for t, n in o.rows.items() if t != o.table and n)
            click.echo(f"  {o.name:<30} {o.done:>9,} {o.verb}" + (f" ({extra})" if extra else ""))
    click.echo("Dry run: nothing changed." if dry_run else "Done.")
