"""The delivery queue's building blocks: argument checks, the lease fence, the compiled
marks and the retry schedule (used by ``deliveries``)."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterable
from typing import Any, TypeGuard, cast

import peewee

from datalayer import arguments
from datalayer.models import NotificationDelivery
from datalayer.models.base import utcnow
from datalayer.models.notifications import CHANNELS
from datalayer.queries.base import StatementCache, param, stamp
from datalayer.schemas.base import check_id, require
from datalayer.types import Channel

D = NotificationDelivery
ERROR_MAX = 2000
MAX_RETRY_DELAY = 86_400.0


def check_seconds(name: str, value: Any, *, positive: bool) -> float:
    """Validate a number of seconds (> 0 when ``positive``, else >= 0; at most 10**9)."""

    def ok(v: Any) -> TypeGuard[float]:
        number = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        return number and (v > 0 if positive else v >= 0) and v <= 10**9

    checked: float = require(name, value, ok, "Must be a finite number of seconds in range.")
    return checked


def check_channels(channels: Iterable[str] | None) -> list[Channel] | None:
    """Validate the channels a claim is limited to (None: all); one name counts as a list."""
    checked = arguments.choices("channels", channels, CHANNELS, allow_none=True)
    return cast("list[Channel] | None", checked)  # each is one of CHANNELS


def check_attempts(attempts: Any) -> int | None:
    """Validate the ``attempts`` value a claim returned (None: not fenced on the claim)."""
    if attempts is None:
        return None
    def valid(v: Any) -> TypeGuard[int]:
        return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 2**31 - 1

    checked: int | None = require(
        "attempts",
        attempts,
        valid,
        "Must be the positive attempts value the claim returned.",
    )
    return checked


def storable_message(name: str, value: Any) -> str:
    """Return an error text made storable: NUL and lone surrogates replaced (the text of a
    provider's error is recorded, not refused), at most ERROR_MAX characters."""
    if not isinstance(value, str) or value.strip() == "":
        arguments.fail(name, "Must be a non-empty string.")
    text = value[: ERROR_MAX * 2].replace("\x00", "\ufffd")
    if arguments.text_problem(text):
        text = text.encode("utf-8", "replace").decode("utf-8")  # a surrogate becomes "?"
    return text[:ERROR_MAX]


def lease_held(delivery_id: str, worker_id: str, attempts: int | None) -> Any:
    """Return the fence: the row is still processing under this worker (and this claim)."""
    check_id("delivery_id", delivery_id)
    check_id("worker_id", worker_id)
    cond = (D.id == delivery_id) & (D.status == "processing") & (D.locked_by == worker_id)
    if attempts is not None:
        cond &= D.attempts == attempts
    return cond


# The hot marks, compiled once per shape (with or without the attempts fence): a worker
# marks every delivery it sends.
def _fence(with_attempts: bool) -> Any:
    cond = (D.id == param("id")) & (D.status == "processing") & (D.locked_by == param("worker"))
    return cond & (D.attempts == param("attempts")) if with_attempts else cond


def fence_values(delivery_id: str, worker_id: str, attempts: int | None) -> dict[str, Any]:
    """Return the values the compiled fence binds (ids checked, ``now`` stamped)."""
    return {
        "id": check_id("delivery_id", delivery_id),
        "worker": check_id("worker_id", worker_id),
        "attempts": check_attempts(attempts),
        "now": utcnow(),
    }


MARK_SENT = StatementCache(
    lambda fenced: D.update(
        {
            D.status: "sent",
            D.sent_at: param("now", D.sent_at),
            D.provider_message_id: param("provider_message_id"),
            D.updated_at: param("now", D.updated_at),
        }
    ).where(_fence(fenced))
)
MARK_SKIPPED = StatementCache(
    lambda fenced: D.update(
        {
            D.status: "skipped",
            D.error: param("error"),
            D.updated_at: param("now", D.updated_at),
        }
    ).where(_fence(fenced))
)


def retry_or_fail(retry_at: dt.datetime, now: dt.datetime) -> dict[Any, Any]:
    """Back to ``pending`` at ``retry_at`` while attempts remain, else ``failed``."""
    retry = D.attempts < D.max_attempts
    return {
        D.status: peewee.Case(None, [(retry, "pending")], "failed"),
        D.next_attempt_at: peewee.Case(
            None, [(retry, stamp(D.next_attempt_at, retry_at))], stamp(D.next_attempt_at, now)
        ),
        D.locked_by: peewee.Case(None, [(retry, None)], D.locked_by),
        D.locked_at: peewee.Case(None, [(retry, None)], D.locked_at),
        D.updated_at: now,
    }


def backoff_seconds(base: float, attempts: int) -> float:
    """Return the jittered exponential delay before the retry that follows attempt ``attempts``."""
    exponent = min(max(attempts - 1, 0), 32)
    return min(MAX_RETRY_DELAY, base * 2.0**exponent * random.uniform(0.5, 1.5))
