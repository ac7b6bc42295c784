"""The periodic clean-up (``datalayer maintain``), safe from cron on several hosts at once.

Each step works in batches of at most ``batch_size`` (1,000) rows, one short
transaction a batch, until a batch finds nothing left:

- ``expire_invites``: pending invites past ``expires_at`` become ``expired``;
- ``end_impersonations``: impersonation sessions past ``expires_at`` end (``expired``),
  each with its IMPERSONATION_END audit row in the same transaction;
- ``purge_sessions``, ``purge_admin_sessions``, ``purge_verifications``: expired rows
  are deleted;
- ``release_leases``: deliveries whose lease ran out go back to ``pending`` (``failed``
  when out of attempts), as ``DeliveryQueries.release_stale`` does;
- ``purge_archived_notifications``: notifications archived more than
  ``retention_days`` ago are deleted with their deliveries.

Several hosts at once: on PostgreSQL each batch picks its rows with ``FOR UPDATE SKIP
LOCKED``, so hosts take disjoint rows and never wait on each other; a row done by one
no longer matches for the others, so each piece of work is done (and counted) once.
SQLite has a single writer: each batch is one atomic statement.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import peewee

from datalayer import arguments
from datalayer import models as m
from datalayer.connection.database import db, is_postgres
from datalayer.errors import translate_errors
from datalayer.models.base import new_id, utcnow
from datalayer.models.notifications import CHANNELS

__all__ = ["BATCH_SIZE", "STEPS", "Outcome", "Step", "maintain"]

BATCH_SIZE = 1000
MAX_ATTEMPTS_NOTE = "lease expired"


def _pick(model: Any, condition: Any, limit: int) -> Any:
    """The condition matching up to ``limit`` rows of ``condition`` that no other host holds."""
    ids = model.select(model.id).where(condition).limit(limit)
    if is_postgres():
        # ANY(ARRAY(...)) runs the locking subquery once (see DeliveryQueries.claim).
        return model.id == peewee.fn.ANY(peewee.fn.ARRAY(ids.for_update(skip_locked=True)))
    return model.id.in_(ids)


def _batch_update(model: Any, condition: Any, values: dict[Any, Any], limit: int) -> int:
    with db.atomic():
        return int(model.update(values).where(_pick(model, condition, limit) & condition).execute())


def _batch_delete(model: Any, condition: Any, limit: int) -> int:
    with db.atomic():
        return int(model.delete().where(_pick(model, condition, limit) & condition).execute())


# --- the steps ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    now: dt.datetime
    retention_days: int
    batch_size: int


@dataclass(frozen=True)
class Step:
    """One kind of clean-up: what is due, and how to do one batch of it."""

    name: str
    table: str
    verb: str  # what the report says was done to the rows
    model: Callable[[], Any]
    due: Callable[[Any, Options], Any]  # (model, options) -> condition
    batch: Callable[[Any, Any, Options], dict[str, int]]  # (model, condition, options)


def _invites(model: Any, condition: Any, o: Options) -> dict[str, int]:
    values = {model.status: "expired", model.updated_at: o.now}
    return {"tenant_invites": _batch_update(model, condition, values, o.batch_size)}


def _deleted(table: str) -> Callable[[Any, Any, Options], dict[str, int]]:
    def batch(model: Any, condition: Any, o: Options) -> dict[str, int]:
        return {table: _batch_delete(model, condition, o.batch_size)}

    return batch


def _impersonations(model: Any, condition: Any, o: Options) -> dict[str, int]:
    with db.atomic():
        query = (
            model.update({model.ended_at: o.now, model.end_reason: "expired"})
            .where(_pick(model, condition, o.batch_size) & condition)
            .returning(model.id, model.admin_user_id, model.target_user_id)
        )
        ended = list(query.tuples().execute())
        rows = [
            {
                "id": new_id(),
                "admin_user": admin_id,
                "action": "IMPERSONATION_END",
                "target_type": "user",
                "target_id": target_id,
                "reason": "expired",
                "metadata": {"end_reason": "expired", "by": "datalayer maintain"},
                "impersonation_session_id": session_id,
                "created_at": o.now,
            }
            for session_id, admin_id, target_id in ended
        ]
        if rows:
            m.AdminAuditLog.insert_many(rows).execute()
    return {"admin_impersonation_sessions": len(ended), "admin_audit_log": len(rows)}


def _leases(model: Any, condition: Any, o: Options) -> dict[str, int]:
    retry = model.attempts < model.max_attempts
    values = {
        model.status: peewee.Case(None, [(retry, "pending")], "failed"),
        model.locked_by: peewee.Case(None, [(retry, None)], model.locked_by),
        model.locked_at: peewee.Case(None, [(retry, None)], model.locked_at),
        model.next_attempt_at: o.now,
        model.error: MAX_ATTEMPTS_NOTE,
        model.updated_at: o.now,
    }
    return {"notification_deliveries": _batch_update(model, condition, values, o.batch_size)}


def _archived(model: Any, condition: Any, o: Options) -> dict[str, int]:
    d = m.NotificationDelivery
    # A notification has at most one delivery per channel: keep the batch's rows in bound.
    limit = max(1, o.batch_size // (1 + len(CHANNELS)))
    with db.atomic():
        picked: Any = model.select(model.id).where(condition).limit(limit)
        if is_postgres():
            picked = picked.for_update(skip_locked=True)
        ids = [row_id for (row_id,) in picked.tuples()]
        if not ids:
            return {"notifications": 0, "notification_deliveries": 0}
        deliveries = d.delete().where(d.notification.in_(ids)).execute()
        notes = model.delete().where(model.id.in_(ids)).execute()
    return {"notifications": int(notes), "notification_deliveries": int(deliveries)}


def _admin_model(name: str) -> Callable[[], Any]:
    return lambda: getattr(m, name, None)


STEPS: tuple[Step, ...] = (
    Step(
        "expire_invites", "tenant_invites", "expired",
        lambda: m.TenantInvite,
        lambda t, o: (t.status == "pending") & (t.expires_at <= o.now),
        _invites,
    ),
    Step(
        "end_impersonations", "admin_impersonation_sessions", "ended",
        _admin_model("AdminImpersonationSession"),
        lambda t, o: t.ended_at.is_null() & (t.expires_at <= o.now),
        _impersonations,
    ),
    Step(
        "purge_sessions", "session", "deleted",
        lambda: m.Session,
        lambda t, o: t.expires_at <= o.now,
        _deleted("session"),
    ),
    Step(
        "purge_admin_sessions", "admin_sessions", "deleted",
        _admin_model("AdminSession"),
        lambda t, o: t.expires_at <= o.now,
        _deleted("admin_sessions"),
    ),
    Step(
        "purge_verifications", "verification", "deleted",
        lambda: m.Verification,
        lambda t, o: t.expires_at <= o.now,
        _deleted("verification"),
    ),
    Step(
        "release_leases", "notification_deliveries", "released",
        lambda: m.NotificationDelivery,
        # locked_at <= now is always true of a lease; it lets the lease index find the rows.
        lambda t, o: (t.status == "processing") & (t.locked_at <= o.now)
        & (t.next_attempt_at <= o.now),
        _leases,
    ),
    Step(
        "purge_archived_notifications", "notifications", "deleted",
        lambda: m.Notification,
        lambda t, o: t.archived_at
        <= o.now - dt.timedelta(days=o.retention_days),
        _archived,
    ),
)  # fmt: skip


# --- running them -------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one step did (or, on a dry run, found due)."""

    name: str
    table: str
    verb: str
    due: int = 0
    done: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    skipped: str | None = None


def _skip_reason(step: Step, model: Any) -> str | None:
    if model is None or not db.table_exists(step.table):
        return f"table {step.table} does not exist yet (run `datalayer migrate`)"
    return None


def maintain(
    now: dt.datetime | None = None,
    *,
    dry_run: bool = False,
    retention_days: int = 90,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> list[Outcome]:
    """Run every clean-up step in small batches (``dry_run``: only count what is due)."""
    batch_size = arguments.integer("batch_size", batch_size, minimum=1, maximum=BATCH_SIZE)
    retention_days = arguments.integer("retention_days", retention_days, minimum=0)
    options = Options(now or utcnow(), retention_days, batch_size)
    plan: list[tuple[Step, Any, Outcome]] = []
    with translate_errors():
        for step in STEPS:
            model = step.model()
            outcome = Outcome(step.name, step.table, step.verb, skipped=_skip_reason(step, model))
            if outcome.skipped is None:
                outcome.due = model.select().where(step.due(model, options)).count()
            plan.append((step, model, outcome))
        if on_start is not None:
            on_start(sum(o.due for _, _, o in plan))
        for step, model, outcome in plan:
            if outcome.skipped is None and not dry_run:
                _run_step(step, model, options, outcome, progress)
    return [outcome for _, _, outcome in plan]


def _run_step(step: Step, model: Any, options: Options, outcome: Outcome, progress: Any) -> None:
    condition = step.due(model, options)
    while True:
        rows = step.batch(model, condition, options)
        primary = rows[step.table]
        for table, count in rows.items():
            outcome.rows[table] = outcome.rows.get(table, 0) + count
        if primary == 0:
            return
        outcome.done += primary
        if progress is not None:
            progress(primary)
