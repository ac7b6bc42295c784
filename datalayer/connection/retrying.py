"""``retrying``: run a unit of work in a transaction, again after a lost connection,
a serialization failure or a deadlock."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

import peewee
from playhouse.pool import MaxConnectionsExceeded

from datalayer.connection.database import db
from datalayer.connection.pooling import forget_connection
from datalayer.errors import (
    READ_ONLY_NODE,
    ConfigurationError,
    ConnectionLostError,
    DataLayerError,
    configuration_error,
    is_connection_error,
    sqlstate,
    translate,
)
from datalayer.redact import scrub

__all__ = ["retrying"]

T = TypeVar("T")

retry_logger = logging.getLogger("datalayer.connection.retrying")


def _backoff(attempt: int, base: float, cap: float) -> float:
    return random.uniform(0, min(cap, base * (2**attempt)))


def _is_retryable(exc: BaseException) -> bool:
    return sqlstate(exc) in ("40001", "40P01", READ_ONLY_NODE) or is_connection_error(exc)


def _needs_new_connection(exc: BaseException, cause: BaseException | None) -> bool:
    """A lost connection, or one on a node that no longer takes writes (after a failover)."""
    if isinstance(exc, ConnectionLostError) or is_connection_error(cause or exc):
        return True
    return cause is not None and sqlstate(cause) == READ_ONLY_NODE


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

    A retried unit of work may have committed before the failure was seen (the
    connection dropped after COMMIT): make it idempotent — an idempotency key with
    ``INSERT ... ON CONFLICT DO NOTHING``, or a fencing check such as the delivery
    queue's ``locked_by``/``attempts`` — so running it twice changes nothing.
    Must be called outside any transaction.
    """
    if db.in_transaction():
        raise DataLayerError("retrying() must be called outside a transaction")
    for attempt in range(attempts):
        try:
            with db.atomic():
                return fn()
        except Exception as exc:
            cause = exc.__cause__ if isinstance(exc, DataLayerError) else exc
            # A wrong URL, password or database name, or an unmigrated schema, stays so.
            never = isinstance(exc, ConfigurationError) or (
                cause is not None and configuration_error(cause) is not None
            )
            retryable = not never and (
                isinstance(exc, ConnectionLostError) or (cause is not None and _is_retryable(cause))
            )
            if not retryable or attempt == attempts - 1:
                if isinstance(exc, DataLayerError):
                    raise
                if isinstance(exc, peewee.PeeweeException | MaxConnectionsExceeded):
                    raise translate(exc) from exc
                config = configuration_error(exc)  # ``db`` used before init_db()
                if config is None:
                    raise  # the caller's own exception, as it was
                raise config from exc
            retry_logger.warning(
                "retrying (attempt %d of %d) after %s: %s",
                attempt + 2,
                attempts,
                type(exc).__name__,
                scrub(str(exc).strip())[:200],
            )
            if _needs_new_connection(exc, cause):
                _discard_connection()  # a serialization failure leaves a usable connection
            time.sleep(_backoff(attempt, base_delay, max_delay))
    raise AssertionError("unreachable")


def _discard_connection() -> None:
    """Drop this thread's connection so the next use opens a fresh one."""
    forget_connection(db.obj)
