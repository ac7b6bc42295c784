"""DeliveryQueries.stats and `datalayer queue`, on both backends."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner
from factories import make_user

from datalayer import DeliveryQueries, ValidationError, db, init_db
from datalayer.cli.main import main
from datalayer.models import Notification, NotificationDelivery
from datalayer.models.base import new_id, utcnow

D = NotificationDelivery


def seed_queue(now: dt.datetime) -> None:
    """A queue with every status, some due, an expired lease, and last hour's outcomes."""
    user = make_user()
    ago = lambda seconds: now - dt.timedelta(seconds=seconds)  # noqa: E731
    rows = [
        # (channel, status, next_attempt_at, sent_at, updated_at)
        ("email", "pending", ago(90), None, ago(90)),  # due for 90 s: the oldest
        ("push", "pending", ago(30), None, ago(30)),
        ("email", "pending", now + dt.timedelta(minutes=5), None, now),  # not due yet
        ("in_app", "processing", ago(10), None, ago(400)),  # lease ran out 10 s ago
        ("email", "processing", now + dt.timedelta(minutes=4), None, now),  # lease held
        ("email", "sent", ago(3600 * 3), ago(120), ago(120)),
        ("in_app", "sent", ago(3600 * 3), ago(60), ago(60)),
        ("push", "sent", ago(3600 * 3), ago(7200), ago(7200)),  # sent two hours ago
        ("email", "failed", ago(600), None, ago(600)),
        ("push", "failed", ago(9000), None, ago(9000)),  # failed long ago
        ("in_app", "skipped", ago(600), None, ago(600)),
    ]
    for channel, status, next_at, sent_at, updated_at in rows:
        note = Notification.create(
            id=new_id(), recipient_user=user.id, type="mention", title="t", body="b"
        )
        D.insert(
            id=new_id(), notification=note.id, channel=channel, status=status,
            next_attempt_at=next_at, sent_at=sent_at, updated_at=updated_at,
            locked_at=ago(500) if status == "processing" else None,
        ).execute()  # fmt: skip


@pytest.mark.usefixtures("txn")
def test_stats_counts_by_status_and_channel_and_reports_health() -> None:
    now = utcnow()
    seed_queue(now)
    stats = DeliveryQueries.stats(now=now)
    assert stats["by_status"] == {
        "pending": 3, "processing": 2, "sent": 3, "failed": 2, "skipped": 1
    }  # fmt: skip
    assert stats["by_channel"]["email"] == {
        "pending": 2, "processing": 1, "sent": 1, "failed": 1, "skipped": 0
    }  # fmt: skip
    assert stats["by_channel"]["push"]["sent"] == 1 and stats["by_channel"]["in_app"]["sent"] == 1
    assert stats["oldest_due_age_seconds"] == pytest.approx(90, abs=0.01)
    assert stats["expired_leases"] == 1
    assert stats["sent_last_hour"] == 2 and stats["failed_last_hour"] == 1
    assert stats["failure_rate_last_hour"] == pytest.approx(1 / 3, abs=1e-4)
    json.dumps(stats)  # JSON-ready


@pytest.mark.usefixtures("txn")
def test_stats_of_an_empty_queue_and_bad_now() -> None:
    stats = DeliveryQueries.stats()
    assert set(stats["by_status"].values()) == {0}
    assert stats["oldest_due_age_seconds"] is None and stats["failure_rate_last_hour"] is None
    with pytest.raises(ValidationError):
        DeliveryQueries.stats(now=dt.datetime(2024, 1, 1))  # naive


def test_queue_command_prints_the_stats(fresh_db: str) -> None:
    seed_queue(utcnow())
    db.close()
    runner = CliRunner()
    result = runner.invoke(main, ["queue", "--database", fresh_db, "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["by_status"]["pending"] == 3 and stats["expired_leases"] == 1
    result = runner.invoke(main, ["queue", "--database", fresh_db])
    assert result.exit_code == 0, result.output
    assert "expired leases:" in result.output and "oldest due delivery waiting:" in result.output
    [email] = [line.split() for line in result.stdout.splitlines() if line.startswith("email")]
    assert email == ["email", "2", "1", "1", "1", "0"]
    init_db(fresh_db)
