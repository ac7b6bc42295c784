"""Ingest billing webhook events: one provider-neutral JSON event per line.

    python examples/webhook_ingester.py events.jsonl --database postgresql://localhost/app
    producer | python examples/webhook_ingester.py --database sqlite:///app.sqlite3

Each line is a mapping as ``SubscriptionEventQueries.ingest`` takes it::

    {"provider": "polar", "event_id": "evt_1", "event_type": "subscription.updated",
     "occurred_at": "2024-05-01T12:00:00+00:00", "tenant_id": "…", "payload": {…},
     "subscription": {"polar_subscription_id": "sub_1", "status": "active",
                      "plan_id": "pro", "current_period_end": "2024-06-01T12:00:00+00:00"}}

For every line it prints ``<line number>\t<event_id>\t<outcome>``; a line that is not
valid JSON or not a valid event prints ``<line number>\t-\terror: …`` on stderr and
the exit status is 1. Feeding the same file twice is safe: events already seen come
back ``duplicate_ignored``, and the order of the lines does not change the final state.
Each event is its own transaction, retried on a deadlock or a dropped connection.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from datalayer import DataLayerError, db, init_db, retrying
from datalayer.queries import SubscriptionEventQueries


def ingest_line(line: str) -> tuple[str, str]:
    """Ingest one JSON line; return (event id, outcome). Raises ValueError or DataLayerError."""
    event: Any = json.loads(line)
    if not isinstance(event, dict):
        raise ValueError("a line must be a JSON object")
    outcome = retrying(lambda: SubscriptionEventQueries.ingest(event))
    return str(event.get("event_id")), outcome


def ingest_lines(lines: Iterable[str], out: TextIO, err: TextIO) -> int:
    """Ingest every non-blank line, printing outcomes; return the number of failed lines."""
    failures = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event_id, outcome = ingest_line(line)
        except (ValueError, DataLayerError) as exc:
            failures += 1
            print(f"{number}\t-\terror: {exc}", file=err, flush=True)
            continue
        print(f"{number}\t{event_id}\t{outcome}", file=out, flush=True)
    return failures


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ingester; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default="-", help="JSON-lines file (- for stdin)")
    parser.add_argument("--database", default=None, help="database URL (else DATABASE_URL)")
    args = parser.parse_args(argv)
    init_db(args.database)
    try:
        if args.path == "-":
            failures = ingest_lines(sys.stdin, sys.stdout, sys.stderr)
        else:
            with open(args.path, encoding="utf-8") as lines:
                failures = ingest_lines(lines, sys.stdout, sys.stderr)
    finally:
        db.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
