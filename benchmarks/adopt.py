"""Time ``datalayer adopt`` on a large database made by the original TypeScript package.

    python -m benchmarks.adopt                      # 1,000,000 todos, 100,000 notifications
    python -m benchmarks.adopt --todos 100000 --notifications 10000 --json out.json

Builds the original schema (tests/original_schema.py, written from the fact sheet) in a
database of its own on the server of DATALAYER_BENCH_PG_URL, fills it with set-based
``generate_series`` inserts shaped like the original application's rows (Better Auth
ids, UUIDs, UTC wall-clock timestamps, delivery log rows with failed-then-sent retries,
re-sent invites), then runs ``adopt`` once and prints the time of every step.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import original_schema  # noqa: E402

from datalayer.adopt.run import StepResult, adopt  # noqa: E402

ADMIN_URL = os.environ.get(
    "DATALAYER_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

# Better Auth-like ids: 32 characters of [A-Za-z0-9]; UUIDs elsewhere.
AUTH_ID = "substr(md5('u' || {i}) || md5('v' || {i}), 1, 32)"
UUID = "md5({seed} || ':' || ({i}))::uuid::text"
AT = "(timestamp '2025-01-01' + ({i} % 100000) * interval '37 seconds')"

FILL = [
    # tenants, users (one active tenant each), memberships
    "INSERT INTO tenants (id, name, type, created_at, updated_at) "
    f"SELECT {UUID.format(seed=repr('t'), i='i')}, 'Family ' || i, 'family', {AT.format(i='i')}, "
    f"{AT.format(i='i')} FROM generate_series(1, %(tenants)s) i",
    'INSERT INTO "user" (id, name, email, created_at, updated_at, active_tenant_id) '
    f"SELECT {AUTH_ID.format(i='i')}, 'User ' || i, 'user' || i || '@example.com', "
    f"{AT.format(i='i')}, {AT.format(i='i')}, "
    f"{UUID.format(seed=repr('t'), i='1 + i % %(tenants)s')} "
    "FROM generate_series(1, %(users)s) i",
    "INSERT INTO tenant_members (id, tenant_id, user_id, role, joined_at, updated_at) "
    f"SELECT {UUID.format(seed=repr('m'), i='i')}, "
    f"{UUID.format(seed=repr('t'), i='1 + i % %(tenants)s')}, {AUTH_ID.format(i='i')}, "
    "CASE WHEN i <= %(tenants)s THEN 'owner' ELSE 'member' END, "
    f"{AT.format(i='i')}, {AT.format(i='i')} FROM generate_series(1, %(users)s) i",
    # todos: one user's, in that user's active tenant (every fifth personal)
    "INSERT INTO todos (id, user_id, tenant_id, title, description, completed, due_date, "
    "created_at, updated_at) "
    f"SELECT {UUID.format(seed=repr('todo'), i='i')}, "
    f"{AUTH_ID.format(i='1 + i % %(users)s')}, "
    "CASE WHEN i % 5 = 0 THEN NULL ELSE "
    f"{UUID.format(seed=repr('t'), i='1 + (1 + i % %(users)s) % %(tenants)s')} END, "
    "'Todo ' || i, CASE WHEN i % 3 = 0 THEN 'Details of todo ' || i END, i % 4 = 0, "
    f"CASE WHEN i % 2 = 0 THEN {AT.format(i='i')} + interval '7 days' END, "
    f"{AT.format(i='i')}, {AT.format(i='i')} FROM generate_series(1, %(todos)s) i",
    # notifications to the users of one tenant; one delivery log row each, and every
    # tenth push failed first and was sent on a second attempt
    "INSERT INTO notifications (id, tenant_id, recipient_user_id, actor_user_id, type, "
    "title, body, data, batch_key, created_at, read_at) "
    f"SELECT {UUID.format(seed=repr('n'), i='i')}, "
    f"{UUID.format(seed=repr('t'), i='1 + (1 + i % %(users)s) % %(tenants)s')}, "
    f"{AUTH_ID.format(i='1 + i % %(users)s')}, {AUTH_ID.format(i='1 + (i + 1) % %(users)s')}, "
    "(ARRAY['todo_assigned', 'todo_completed', 'member_joined'])[1 + i % 3], "
    "'Title ' || i, 'Body ' || i, json_build_object('todoId', i), "
    f"'actor_todo_assigned_' || i / 60, {AT.format(i='i')}, "
    f"CASE WHEN i % 2 = 0 THEN {AT.format(i='i')} + interval '1 hour' END "
    "FROM generate_series(1, %(notifications)s) i",
    "INSERT INTO notification_deliveries (id, notification_id, channel, status, "
    "provider_message_id, error, created_at) "
    f"SELECT {UUID.format(seed=repr('d'), i='i')}, {UUID.format(seed=repr('n'), i='i')}, "
    "CASE WHEN i % 2 = 0 THEN 'push' ELSE 'in_app' END, "
    "CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'sent' END, NULL, "
    "CASE WHEN i % 10 = 0 THEN 'Expo push failed: TooManyRequests' END, "
    f"{AT.format(i='i')} FROM generate_series(1, %(notifications)s) i",
    "INSERT INTO notification_deliveries (id, notification_id, channel, status, "
    "provider_message_id, created_at) "
    f"SELECT {UUID.format(seed=repr('d2'), i='i')}, {UUID.format(seed=repr('n'), i='i')}, "
    "'push', 'sent', 'ticket-' || i, "
    f"{AT.format(i='i')} + interval '1 minute' FROM generate_series(10, %(notifications)s, 10) i",
    # invites: every hundredth address was invited twice (both still pending)
    "INSERT INTO tenant_invites (id, tenant_id, invited_by, email, token, status, "
    "expires_at, created_at, updated_at) "
    f"SELECT {UUID.format(seed=repr('inv'), i='i')}, "
    f"{UUID.format(seed=repr('t'), i='1 + i / 2 % %(tenants)s')}, "
    f"{AUTH_ID.format(i='1 + i % %(tenants)s')}, 'invitee' || (i / 2 * 2 + "
    "CASE WHEN i % 100 < 2 THEN 0 ELSE i % 2 END) || '@example.com', "
    f"{UUID.format(seed=repr('tok'), i='i')}, "
    "CASE WHEN i % 3 = 0 THEN 'accepted' ELSE 'pending' END, "
    f"{AT.format(i='i')} + interval '7 days', {AT.format(i='i')}, {AT.format(i='i')} "
    "FROM generate_series(1, %(invites)s) i",
    "INSERT INTO user_activity_daily (user_id, date, event_count) "
    f"SELECT {AUTH_ID.format(i='i')}, date '2025-01-01' + i % 30, i % 50 "
    "FROM generate_series(1, %(users)s) i",
    "INSERT INTO waitlist (email, created_at) "
    f"SELECT 'early' || i || '@example.com', {AT.format(i='i')} "
    "FROM generate_series(1, %(users)s / 10) i",
]


def build(url: str, sizes: dict[str, int]) -> None:
    original_schema.build(url, full=True)
    with original_schema.connect(url) as cur:
        for statement in FILL:
            for key, value in sizes.items():  # sizes are ints: written into the SQL
                statement = statement.replace(f"%({key})s", str(int(value)))
            cur.execute(statement)
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        conn.cursor().execute("VACUUM ANALYZE")  # as a long-lived database would be
    finally:
        conn.close()


class Timer:
    def __init__(self) -> None:
        self.steps: list[StepResult] = []

    def start(self, label: str) -> None:
        print(f"  {label} ...", end="", flush=True)

    def done(self, result: StepResult) -> None:
        self.steps.append(result)
        rows = f" {result.rows:,} rows," if result.rows is not None else ""
        print(f"{rows} {result.seconds:.2f} s", flush=True)


def _admin(sql: str) -> None:
    conn = psycopg2.connect(ADMIN_URL)
    conn.autocommit = True
    try:
        conn.cursor().execute(sql)
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--todos", type=int, default=1_000_000)
    parser.add_argument("--notifications", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    sizes = {"todos": args.todos, "notifications": args.notifications, "users": args.users,
             "tenants": max(1, args.users // 10), "invites": max(2, args.users // 2)}
    name = f"adopt_bench_{uuid.uuid4().hex[:8]}"
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    _admin(f'CREATE DATABASE "{name}"')
    try:
        began = time.perf_counter()
        build(url, sizes)
        print(f"built the original database in {time.perf_counter() - began:.1f} s: {sizes}")
        timer = Timer()
        began = time.perf_counter()
        report = adopt(url, progress=timer)
        total = time.perf_counter() - began
        rows = sum(report.rows_before.values())
        print(f"adopted {rows:,} rows in {total:.1f} s "
              f"({report.folded:,} delivery log rows folded)")
        if args.json:
            Path(args.json).write_text(json.dumps({
                "sizes": sizes, "total_seconds": total, "rows_before": report.rows_before,
                "rows_after": report.rows_after,
                "steps": [{"label": s.label, "seconds": s.seconds, "rows": s.rows}
                          for s in timer.steps],
                "fixes": report.fixes}, indent=2))
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
