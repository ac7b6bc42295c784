"""``retrying``: run a unit of work in a transaction, again after a lost connection,
a serialization failure or a deadlock."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from datalayer.connection.database import db
from datalayer.connection.pooling import forget_connection
from datalayer.errors import (
    ConnectionLostError,
    DataLayerError,
    SerializationError,
    translated,
)
from datalayer.redact import scrub

__all__ = ["retrying"]

T = TypeVar("T")

retry_logger = logging.getLogger("datalayer.connection.retrying")


def _backoff(attempt: int, base: float, cap: float) -> float:
    return random.uniform(0, min(cap, base * (2**attempt)))


def retrying(
    fn: Callable[[], T],
    *,
    attempts: int = 5,
    base_delay: float = 0.05,
    max_delay: float = 2.0,
) -> T:
    """Run ``fn`` in a transaction, retrying on lost connections, serialization failures,
    deadlocks and writes refused by a read-only node (SQLSTATE 25006: the session is on a
    primary that a failover demoted) with jittered exponential backoff, at most
    ``attempts`` times. A lost connection or one on a read-only node is discarded first,
    so the retry connects afresh (to the new primary, given a multi-host URL with
    ``target_session_attrs=read-write``).

    What is retried is decided by class, after translation: ``SerializationError`` and
    ``ConnectionLostError``. A wrong URL, password or database name, or an unmigrated
    schema (``ConfigurationError``), is raised at once; so is the caller's own exception.

    A retried unit of work may have committed before the failure was seen (the
    connection dropped after COMMIT): make it idempotent — an idempotency key with
    ``INSERT ... ON CONFLICT DO NOTHING``, or a fencing check such as the delivery
    queue's ``locked_by``/``attempts`` — so running it twice changes nothing.
    Must be called outside any transaction. Any caller.

    Returns:
        What ``fn`` returned, from the attempt that committed.

    Raises:
        DataLayerError: called inside a transaction.
        ConnectionLostError: the connection kept failing for ``attempts`` tries.
        SerializationError: serialization failures or deadlocks kept coming.
        Exception: anything else ``fn`` raised, at once and unchanged.
    """
    if db.in_transaction():
        raise DataLayerError("retrying() must be called outside a transaction")
    for attempt in range(attempts):
        try:
            with db.atomic():
                return fn()
        except Exception as exc:
            error = translated(exc)  # None: the caller's own exception
            retryable = isinstance(error, SerializationError | ConnectionLostError)
            if not retryable or attempt == attempts - 1:
                if error is None or error is exc:
                    raise
                raise error from exc
            retry_logger.warning(
                "retrying (attempt %d of %d) after %s: %s",
                attempt + 2,
                attempts,
                type(exc).__name__,
                scrub(str(exc).strip())[:200],
            )
            if isinstance(error, ConnectionLostError):
                _discard_connection()  # a serialization failure leaves a usable connection
            time.sleep(_backoff(attempt, base_delay, max_delay))
    raise AssertionError("unreachable")


def _discard_connection() -> None:
    """Drop this thread's connection so the next use opens a fresh one."""
    forget_connection(db.obj)
