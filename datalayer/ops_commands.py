"""``datalayer queue`` and ``datalayer user export|erase`` (loaded lazily by cli.py)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from datalayer.db import db, init_db

URL_HELP = "Database URL. Default: $DATABASE_URL, else sqlite:///datalayer.sqlite3."


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

    init_db(url)
    try:
        stats = DeliveryQueries.stats()
    finally:
        db.close()
    if as_json:
        click.echo(json.dumps(stats, indent=2))
        return
    click.echo(render_stats(stats))


def render_stats(stats: dict[str, Any]) -> str:
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
