"""``datalayer adopt``: the command line around ``datalayer.adopt.run.adopt``."""

from __future__ import annotations

import sys

import click

from datalayer.adopt.run import LOCK_TIMEOUT, AdoptReport, StepResult, adopt
from datalayer.cli.main import announce, database_option


class _StepLines:
    """Progress on a terminal: one line per step, on stderr."""

    def start(self, label: str) -> None:
        click.echo(f"  {label} ...", err=True, nl=False)

    def done(self, result: StepResult) -> None:
        rows = f" {result.rows:,} rows," if result.rows is not None else ""
        click.echo(f"{rows} {result.seconds:.2f} s", err=True)


@click.command("adopt")
@click.option("--dry-run", is_flag=True,
              help="Work everything out and fill the new tables, then roll back: print the "
                   "plan and the rows each step would change, write nothing.")
@click.option("--lock-timeout", type=click.FloatRange(min=0.001), default=LOCK_TIMEOUT,
              show_default=True, metavar="SECONDS",
              help="How long to wait for the old application's open transactions to end.")
@database_option
def adopt_command(dry_run: bool, lock_timeout: float, url: str | None) -> None:
    """Convert a database made by the original TypeScript package into this library's
    schema, keeping every row.

    Stop the old application's writers first. One transaction under the migration lock:
    it fails as a whole or not at all. Refuses a database it does not recognise (with
    what it found); says "already adopted" (exit 0) when there is nothing to do.
    """
    announce(url, direct=True, creates=True)  # adopt's own refusal names SQLite
    progress = _StepLines() if sys.stderr.isatty() else None
    if progress:
        click.echo("dry run (rolled back at the end):" if dry_run else "adopting:", err=True)
    report = adopt(url, dry_run=dry_run, progress=progress, lock_timeout=lock_timeout)
    for line in describe(report):
        click.echo(line)


def describe(report: AdoptReport) -> list[str]:
    """The report as lines of text."""
    if report.already_adopted:
        lines = [f"Already adopted: nothing to do ({report.found})."]
        if report.pending:
            lines.append(f"{len(report.pending)} migration(s) pending "
                         f"({', '.join(report.pending)}): run `datalayer migrate`.")
        return lines
    lines = [f"Found {report.found}."]
    if report.dry_run:
        lines.append("Dry run: nothing was written. The plan, one transaction:")
    else:
        lines.append("Adopted, in one transaction:")
    for step in report.steps:
        rows = f"{step.rows:>10,} rows" if step.rows is not None else " " * 15
        lines.append(f"  {step.label:<56} {rows} {step.seconds:8.2f} s")
        table = step.label.removeprefix("copy ")
        lines += [f"      {note}" for note in report.notes.get(table, [])]
        if step.label.startswith("build") and report.migrations:
            lines.append(f"      migrations recorded as applied: {', '.join(report.migrations)}")
    if report.dry_run:
        lines += ["  then: drop the original tables, move the new ones into public, analyze"]
    lines.append("Data changed to fit the library's constraints:")
    lines += [f"  {table}: {rule}: {rows:,} row(s)" for table, rule, rows in report.fixes]
    if report.defaulted:
        lines.append("New columns, filled with their default: " + ", ".join(
            f"{t}.{c}" for t, cols in report.defaulted.items() for c in cols))
    if report.created_empty:
        lines.append(f"New tables, empty: {', '.join(report.created_empty)}")
    if report.dropped_empty:
        lines.append(f"Original tables without a counterpart (empty, dropped): "
                     f"{', '.join(report.dropped_empty)}")
    before, after = sum(report.rows_before.values()), sum(report.rows_after.values())
    lines.append(f"Rows: {before:,} in the original tables, {after:,} in the new ones "
                 f"({report.folded:,} delivery log row(s) folded into the queue).")
    kept = "drizzle.__drizzle_migrations (kept as it was)"
    lines.append("Left as they are: " + ", ".join([kept, *report.other_tables]))
    lines += [f"Warning: {warning}" for warning in report.warnings]
    if not report.dry_run:
        lines.append("Next: `datalayer check` (expect no differences), then deploy the "
                     "application on datalayer.")
    return lines
