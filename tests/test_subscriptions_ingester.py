"""examples/webhook_ingester.py, run as users run it: a separate process on a real database."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from factories import make_tenant

from datalayer import SubscriptionQueries

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "webhook_ingester.py"
T0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)


def line(event_id: str, hours: int, status: str, tenant_id: str | None = None) -> str:
    event: dict[str, Any] = {
        "provider": "polar",
        "event_id": event_id,
        "event_type": "subscription.updated",
        "occurred_at": (T0 + dt.timedelta(hours=hours)).isoformat(),
        "payload": {"id": event_id},
        "subscription": {"polar_subscription_id": "sub_x", "status": status, "plan_id": "pro"},
    }
    if tenant_id:
        event["tenant_id"] = tenant_id
    return json.dumps(event)


def run(url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--database", url],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_ingester_reads_a_file_and_stdin(fresh_db: str, tmp_path: Path) -> None:
    tenant = make_tenant()
    good = [
        line("e2", 2, "past_due", tenant.id),
        line("e1", 1, "active"),  # older: stale
        line("e2", 2, "past_due"),  # delivered twice
        line("e3", 3, "canceled"),
    ]
    events = tmp_path / "events.jsonl"
    events.write_text(
        "\n".join(
            [good[0], good[1], "{not json", "", good[2], json.dumps({"provider": "polar"}), good[3]]
        )
        + "\n"
    )

    first = run(fresh_db, str(events))
    assert first.returncode == 1, first.stderr  # two bad lines
    assert first.stdout.splitlines() == [
        "1\te2\tapplied",
        "2\te1\tstale_ignored",
        "5\te2\tduplicate_ignored",
        "7\te3\tapplied",
    ]
    errors = first.stderr.splitlines()
    assert [e.split("\t")[0] for e in errors] == ["3", "6"]
    assert all("\terror: " in e for e in errors)
    current = SubscriptionQueries.current_for_tenant(tenant.id)
    assert current is not None and current["status"] == "canceled"

    again = run(fresh_db, "-", stdin="\n".join(good) + "\n")
    assert again.returncode == 0, again.stderr
    assert [o.split("\t")[2] for o in again.stdout.splitlines()] == ["duplicate_ignored"] * 4
