"""examples/delivery_worker.py: run_worker in-process and the command line in a subprocess."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from factories import make_user

from datalayer import NotificationQueries, PreferenceQueries, TargetQueries, db
from datalayer.models import NotificationDelivery

D = NotificationDelivery
ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "delivery_worker.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("delivery_worker", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


worker = load_example()


def statuses(notification_ids: list[str]) -> dict[tuple[str, str], str]:
    rows = (
        D.select(D.notification, D.channel, D.status)
        .where(D.notification.in_(notification_ids))
        .tuples()
    )
    return {(note, channel): status for note, channel, status in rows}


@pytest.mark.usefixtures("txn")
def test_run_worker_sends_skips_and_retries_through_the_sender() -> None:
    with_token, without_token = make_user(), make_user()
    for user in (with_token, without_token):
        PreferenceQueries.upsert(user.id, {"push_enabled": True})
    TargetQueries.upsert(with_token.id, {"expo_push_token": "ExponentPushToken[a]"})
    a = NotificationQueries.notify(with_token.id, "direct_message", "A", "body")["id"]
    b = NotificationQueries.notify(without_token.id, "direct_message", "B", "body")["id"]
    seen: list[tuple[str, int]] = []

    def sender(delivery: Any) -> str | None:
        seen.append((delivery["channel"], delivery["attempts"]))
        if delivery["channel"] == "email" and delivery["notification"]["title"] == "A":
            raise ConnectionError("smtp down")
        return worker.log_sender(delivery)

    stats = worker.run_worker("w1", sender, once=True, retry_base_seconds=60, batch_size=2)
    assert (stats.claimed, stats.sent, stats.skipped, stats.failed) == (6, 4, 1, 1)
    assert stats.lost_leases == 0
    assert statuses([a, b]) == {
        (a, "in_app"): "sent",
        (a, "push"): "sent",
        (a, "email"): "pending",  # retried later
        (b, "in_app"): "sent",
        (b, "push"): "skipped",
        (b, "email"): "sent",
    }
    retry = D.get((D.notification == a) & (D.channel == "email"))
    assert retry.attempts == 1 and retry.error == "ConnectionError: smtp down"
    assert len(seen) == 6


@pytest.mark.usefixtures("txn")
def test_run_worker_stops_when_told_and_counts_lost_leases() -> None:
    user = make_user()
    note = NotificationQueries.notify(user.id, "direct_message", "A", "body")["id"]

    def stolen(delivery: Any) -> str:
        # Another worker takes the delivery over while this one is sending.
        D.update(locked_by="thief").where(D.id == delivery["id"]).execute()
        return "id"

    calls = []
    stats = worker.run_worker(
        "w1", stolen, batch_size=1, poll_seconds=0, stop=lambda: calls.append(1) or len(calls) > 1
    )
    assert (stats.claimed, stats.sent, stats.lost_leases) == (1, 0, 1)
    assert sorted(statuses([note]).values()) == ["pending", "processing"]


def test_the_command_line_drains_the_queue(fresh_db: str, tmp_path: Path) -> None:
    user = make_user()
    notes = [
        NotificationQueries.notify(user.id, "direct_message", f"n{i}", "body")["id"] for i in range(3)
    ]
    db.close()
    (tmp_path / "flaky_sender.py").write_text(
        textwrap.dedent("""
        def send(delivery):
            if delivery["notification"]["title"] == "n0" and delivery["channel"] == "email":
                raise TimeoutError("provider timed out")
            return "provider-" + delivery["id"]
    """)
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "DATABASE_URL": "sqlite:///nowhere.db"}
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--database",
            fresh_db,
            "--once",
            "--sender",
            "flaky_sender:send",
            "--worker-id",
            "cli-1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "claimed=6 sent=5 failed=1 skipped=0 lost_leases=0" in result.stdout
    done = statuses(notes)
    assert done.pop((notes[0], "email")) == "pending" and set(done.values()) == {"sent"}
    sent = D.get((D.notification == notes[1]) & (D.channel == "in_app"))
    assert sent.provider_message_id == f"provider-{sent.id}" and sent.locked_by == "cli-1"
    assert not (tmp_path / "nowhere.db").exists()  # --database won over DATABASE_URL
