"""examples/delivery_worker.py: run_worker in-process and the command line in a subprocess."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg2
import pytest
from factories import make_user
from helpers import IS_PG, direct_url

from datalayer import (
    DeliveryQueries,
    NotificationQueries,
    PreferenceQueries,
    TargetQueries,
    db,
)
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
    a = NotificationQueries.notify(with_token.id, type="direct_message", title="A", body="body")["id"]
    b = NotificationQueries.notify(without_token.id, type="direct_message", title="B", body="body")["id"]
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
    note = NotificationQueries.notify(user.id, type="direct_message", title="A", body="body")["id"]

    sent: list[str] = []

    def stolen(delivery: Any) -> str:
        # Another worker takes the delivery over while this one is sending.
        D.update(locked_by="thief").where(D.id == delivery["id"]).execute()
        sent.append(delivery["id"])
        return "id"

    stats = worker.run_worker("w1", stolen, batch_size=1, stop=lambda: bool(sent))
    assert (stats.claimed, stats.sent, stats.lost_leases, stats.handed_back) == (1, 0, 1, 0)
    assert sorted(statuses([note]).values()) == ["pending", "processing"]


def test_the_command_line_drains_the_queue(fresh_db: str, tmp_path: Path) -> None:
    user = make_user()
    notes = [
        NotificationQueries.notify(user.id, type="direct_message", title=f"n{i}", body="body")["id"] for i in range(3)
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


SLOW_SENDER = """
import os, time

def send(delivery):
    time.sleep(0.2)  # a slow provider
    with open(os.environ["SENT_LOG"], "a") as log:
        log.write(delivery["id"] + "\\n")
    return "provider-" + delivery["id"]
"""


def _start_worker(url: str, tmp_path: Path, worker_id: str, *extra: str) -> subprocess.Popen:
    (tmp_path / "slow_sender.py").write_text(SLOW_SENDER)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "SENT_LOG": str(tmp_path / "sent.log")}
    command = [sys.executable, str(SCRIPT), "--database", url, "--worker-id", worker_id,
               "--sender", "slow_sender:send", *extra]
    return subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _sent_log(tmp_path: Path) -> list[str]:
    path = tmp_path / "sent.log"
    return path.read_text().split() if path.exists() else []


def _until(condition: Any, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def test_sigterm_mid_batch_hands_the_rest_to_another_worker_at_once(
    fresh_db: str, tmp_path: Path
) -> None:
    user = make_user()
    PreferenceQueries.upsert(user.id, {"email_enabled": False, "push_enabled": False})
    for i in range(40):
        NotificationQueries.notify(user.id, type="direct_message", title=f"n{i}", body="body")
    every = {d.id for d in D.select(D.id)}
    db.close()
    process = _start_worker(fresh_db, tmp_path, "term-1", "--batch-size", "40")
    try:
        _until(lambda: len(_sent_log(tmp_path)) >= 3, "the worker sent three")
        process.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert time.monotonic() - stopped < 30  # not the 40 x 0.2 s batch, nor the lease
    first = _sent_log(tmp_path)
    assert 3 <= len(first) < 40 and len(set(first)) == len(first)
    assert f"sent={len(first)} " in out and f"handed_back={40 - len(first)}" in out
    rows = {d.id: d for d in D.select()}
    assert {i for i, d in rows.items() if d.status == "sent"} == set(first)  # in flight: finished
    assert all(d.locked_by is None for i, d in rows.items() if i not in first)

    again: list[str] = []

    def record(delivery: Any) -> str:
        again.append(delivery["id"])
        return "second"

    stats = worker.run_worker("term-2", record, once=True)  # the 300 s leases are not waited for
    assert stats.sent == 40 - len(first)
    assert sorted(first + again) == sorted(every)  # each sent exactly once


@pytest.mark.skipif(not IS_PG, reason="LISTEN: PostgreSQL")
def test_sigterm_ends_an_idle_wait_at_once(fresh_db: str, tmp_path: Path) -> None:
    db.close()
    process = _start_worker(direct_url(fresh_db), tmp_path, "idle-1", "--idle-seconds", "600")
    try:
        _until(lambda: _listening(direct_url(fresh_db)), "the worker waited")
        process.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert time.monotonic() - stopped < 30  # the wait was 600 s
    assert "claimed=0 " in out


def _listening(url: str) -> bool:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND state = 'idle' AND query ILIKE 'SELECT MIN%%'")
            return bool(cur.fetchone()[0])
    finally:
        conn.close()


def test_an_idle_worker_releases_a_dead_worker_s_expired_lease_and_sends_it(
    fresh_db: str,
) -> None:
    user = make_user()
    PreferenceQueries.upsert(user.id, {"email_enabled": False, "push_enabled": False})
    NotificationQueries.notify(user.id, type="direct_message", title="orphan", body="body")
    (orphan,) = DeliveryQueries.claim("dead-worker", lease_seconds=1)  # then it died
    sent: list[str] = []

    def record(delivery: Any) -> str:
        sent.append(delivery["id"])
        return "again"

    stats = worker.run_worker(  # idle from the start: nothing is due for a second
        "w2", record, idle_seconds=0.2, release_every_seconds=0.5, stop=lambda: bool(sent),
        max_seconds=60,
    )
    assert sent == [orphan["id"]] and stats.released == 1
