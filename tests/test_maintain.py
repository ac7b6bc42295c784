"""datalayer maintain: every step on both backends; four hosts at once on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import multiprocessing
from collections import Counter
from typing import Any

import pytest
from click.testing import CliRunner
from factories import make_tenant, make_user
from helpers import postgres_only

from datalayer import ValidationError, db, init_db
from datalayer import models as m
from datalayer.cli.main import main
from datalayer.maintain import maintain
from datalayer.models.base import new_id, utcnow

PAST = dt.timedelta(hours=1)
_tokens = itertools.count()
ADMIN_STEPS = {
    "end_impersonations": "AdminImpersonationSession",
    "purge_admin_sessions": "AdminSession",
}


def has_admin_tables() -> bool:
    return all(hasattr(m, name) for name in ADMIN_STEPS.values()) and all(
        db.table_exists(t) for t in ("admin_sessions", "admin_impersonation_sessions")
    )


def chunks(model: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 500):
        model.insert_many(rows[start : start + 500]).execute()


def seed_work(n: int, now: dt.datetime) -> dict[str, int]:
    """Seed ``n`` due pieces of work for each step (and rows that must be left); return counts."""
    user, other = make_user(), make_user()
    tenant = make_tenant(user)
    due, keep = now - PAST, now + PAST

    def invite(status: str, expires: dt.datetime) -> dict[str, Any]:
        return {
            "tenant": tenant.id,
            "invited_by": user.id,
            "email": f"i{next(_tokens)}@x.io",
            "token_hash": f"h{next(_tokens)}-{new_id()}",
            "status": status,
            "expires_at": expires,
        }

    chunks(
        m.TenantInvite,
        [invite("pending", due) for _ in range(n)]
        + [invite("pending", keep), invite("accepted", due), invite("revoked", due)],
    )

    def token_row(expires: dt.datetime, **extra: Any) -> dict[str, Any]:
        return {"id": new_id(), "expires_at": expires, **extra}

    chunks(
        m.Session,
        [
            token_row(t, user=user.id, token=f"s{next(_tokens)}-{new_id()}")
            for t in [due] * n + [keep]
        ],
    )
    chunks(
        m.Verification,
        [token_row(t, identifier="e@x.io", value=f"v{next(_tokens)}") for t in [due] * n + [keep]],
    )
    notes = [
        {
            "id": new_id(),
            "recipient_user": user.id,
            "type": "mention",
            "title": "t",
            "body": "b",
            "created_at": now - dt.timedelta(days=200),
            "archived_at": archived,
        }
        for archived in [now - dt.timedelta(days=91)] * n + [now - dt.timedelta(days=10), None]
    ]
    chunks(m.Notification, notes)
    deliveries = [
        {
            "id": new_id(),
            "notification": note["id"],
            "channel": channel,
            "status": "sent",
            "next_attempt_at": now,
        }
        for note in notes
        for channel in ("email", "push")
    ]
    # Stale leases live on the kept notifications (the purge must not take them).
    holder = notes[-1]["id"]
    lease_notes = [{**notes[-1], "id": new_id(), "archived_at": None} for _ in range(n + 2)]
    chunks(m.Notification, lease_notes)
    chunks(m.NotificationDelivery, deliveries)  # insert_many: one set of keys per call
    leases = [
        {
            "id": new_id(),
            "notification": note["id"],
            "channel": "in_app",
            "status": "processing",
            "attempts": 5 if i % 4 == 0 else 1,
            "max_attempts": 5,
            "locked_by": "gone",
            "locked_at": due - PAST,
            "next_attempt_at": due if i < n else keep,
        }
        for i, note in enumerate(lease_notes)
    ]
    chunks(m.NotificationDelivery, leases)
    assert holder
    counts = {
        "expire_invites": n,
        "purge_sessions": n,
        "purge_verifications": n,
        "release_leases": n,
        "purge_archived_notifications": n,
    }
    if has_admin_tables():
        admin = m.AdminUser.create(email=f"a{next(_tokens)}@admin.io", status="active")
        chunks(
            m.AdminSession,
            [
                token_row(t, admin_user=admin.id, token=f"a{next(_tokens)}-{new_id()}")
                for t in [due] * n + [keep]
            ],
        )
        # An admin has at most one open impersonation (a partial unique index): one each.
        impersonators = [
            {"id": new_id(), "email": f"i{next(_tokens)}@admin.io", "status": "active"}
            for _ in range(n + 1)
        ]
        chunks(m.AdminUser, impersonators)
        chunks(
            m.AdminImpersonationSession,
            [
                {
                    "id": new_id(),
                    "admin_user": impersonator["id"],
                    "target_user": other.id,
                    "reason": "support",
                    "started_at": due - PAST,
                    "expires_at": t,
                }
                for impersonator, t in zip(impersonators, [due] * n + [keep], strict=True)
            ],
        )
        counts |= {"end_impersonations": n, "purge_admin_sessions": n}
    return counts  # fmt: skip


def left_due(now: dt.datetime) -> dict[str, int]:
    """What is still due after maintenance (all zero when every step was done)."""
    outcomes = maintain(now, dry_run=True)
    return {o.name: o.due for o in outcomes if o.skipped is None}


def check_kept(now: dt.datetime) -> None:
    """The rows that were not due are all still there, unchanged."""
    i, d = m.TenantInvite, m.NotificationDelivery
    statuses = Counter(s for (s,) in i.select(i.status).tuples())
    assert (statuses["pending"], statuses["accepted"], statuses["revoked"]) == (1, 1, 1)
    assert m.Session.select().count() == 1 and m.Verification.select().count() == 1
    assert m.Notification.select().where(m.Notification.archived_at.is_null(False)).count() == 1
    assert d.select().where((d.status == "processing") & (d.next_attempt_at > now)).count() == 2


def test_each_step_does_its_work_once_and_leaves_the_rest(fresh_db: str) -> None:
    now = utcnow()
    counts = seed_work(25, now)
    outcomes = {o.name: o for o in maintain(now, batch_size=10)}
    assert {name: o.done for name, o in outcomes.items() if o.skipped is None} == counts
    for name in set(ADMIN_STEPS) - set(counts):  # migration 002 not applied: said so
        assert "does not exist" in (outcomes[name].skipped or "")
    d = m.NotificationDelivery
    assert outcomes["purge_archived_notifications"].rows["notification_deliveries"] == 50
    released = Counter(s for (s,) in d.select(d.status).where(d.error == "lease expired").tuples())
    assert released == {"pending": 18, "failed": 7}  # every fourth was out of attempts
    assert d.select().where((d.status == "pending") & d.locked_by.is_null(False)).count() == 0
    check_kept(now)
    assert all(n == 0 for n in left_due(now).values())
    assert all(o.done == 0 for o in maintain(now))  # a second run finds nothing
    if "end_impersonations" in counts:
        audit = m.AdminAuditLog.select().where(m.AdminAuditLog.action == "IMPERSONATION_END")
        assert audit.count() == 25


def test_batches_never_exceed_the_batch_size(fresh_db: str) -> None:
    now = utcnow()
    seed_work(7, now)
    steps: list[int] = []
    maintain(now, batch_size=3, progress=steps.append)
    assert steps and max(steps) <= 3 and sum(steps) >= 7 * 5


def test_dry_run_counts_and_changes_nothing(fresh_db: str) -> None:
    now = utcnow()
    counts = seed_work(4, now)
    before = {t: t.select().count() for t in (m.Session, m.Verification, m.Notification)}
    outcomes = maintain(now, dry_run=True)
    assert {o.name: o.due for o in outcomes if o.skipped is None} == counts
    assert all(o.done == 0 for o in outcomes)
    assert {t: t.select().count() for t in before} == before


def test_cli_json_and_dry_run(fresh_db: str) -> None:
    counts = seed_work(3, utcnow())
    db.close()
    runner = CliRunner()
    dry = runner.invoke(main, ["maintain", "--database", fresh_db, "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    report = json.loads(dry.stdout)
    assert report["dry_run"] and {s["name"]: s["due"] for s in report["steps"]
                                  if not s["skipped"]} == counts  # fmt: skip
    done = runner.invoke(main, ["maintain", "--database", fresh_db])
    assert done.exit_code == 0, done.output
    assert "expire_invites" in done.output and "3 expired" in done.output
    assert done.stdout.rstrip().endswith("Done.")
    init_db(fresh_db)
    assert m.Session.select().count() == 1


# --- four hosts at once --------------------------------------------------------------------


def host(url: str, barrier: Any, lock: Any, batched: Any, shared: Any) -> dict[str, int]:
    """One host's cron run: wait for the others, maintain, report what it did per step.

    After its first batch a host waits until a second host has done one too (``shared``),
    so the hosts really work side by side, however the four processes are scheduled (one
    could otherwise do everything before the others start). A host that never gets a
    batch never waits; the waiting host's batch is committed, so the others go on.
    """
    init_db(url)
    done_one = False

    def first_batch(_: int) -> None:
        nonlocal done_one
        if not done_one:
            done_one = True
            with lock:
                batched.value += 1
                if batched.value >= 2:
                    shared.set()
            assert shared.wait(60), "no second host ever did a batch"

    try:
        db.execute_sql("SELECT 1")
        barrier.wait(60)
        return {o.name: o.done for o in maintain(progress=first_batch) if o.skipped is None}
    finally:
        db.close()


@postgres_only
@pytest.mark.slow
def test_four_hosts_at_once_do_each_piece_of_work_once(fresh_db: str) -> None:
    counts = seed_work(3000, utcnow())
    db.close()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(4)
        shared = (manager.Lock(), manager.Value("i", 0), manager.Event())
        with ctx.Pool(4) as pool:
            results = pool.starmap(host, [(fresh_db, barrier, *shared)] * 4)
    total = Counter[str]()
    for r in results:
        total.update(r)
    assert dict(total) == counts  # each piece done (and counted) exactly once
    assert sum(1 for r in results if sum(r.values()) > 0) > 1  # the hosts really shared it
    init_db(fresh_db)
    assert all(n == 0 for n in left_due(utcnow()).values())
    if "end_impersonations" in counts:
        audit = m.AdminAuditLog.select().where(m.AdminAuditLog.action == "IMPERSONATION_END")
        assert audit.count() == 3000  # one audit row per ended session, none twice


@pytest.mark.parametrize(
    ("option", "value"),
    [("batch_size", 0), ("batch_size", 1001), ("batch_size", "10"), ("retention_days", -1),
     ("retention_days", 1.5)],
)
def test_a_bad_option_is_a_validation_error_naming_it(txn, option: str, value: Any) -> None:
    with pytest.raises(ValidationError) as info:
        maintain(**{option: value})
    assert list(info.value.messages) == [option]
