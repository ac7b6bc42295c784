"""The errors callers see, and the one place that translates database errors into them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import peewee

__all__ = [
    "ConflictError",
    "ConnectionLostError",
    "DataLayerError",
    "NotFoundError",
    "PermissionDeniedError",
    "PoolerSafetyError",
    "QueryTimeoutError",
    "ValidationError",
    "translate_errors",
]


class DataLayerError(Exception):
    """Base class of every error this library raises."""


class ValidationError(DataLayerError):
    """Bad input; ``messages`` maps each field to its list of messages. Nothing was written."""

    def __init__(self, messages: Mapping[str, Any] | str, field: str | None = None) -> None:
        if isinstance(messages, str):
            messages = {field or "_schema": [messages]}
        self.messages: dict[str, Any] = dict(messages)
        super().__init__(self._summary())

    def _summary(self) -> str:
        parts = []
        for name, msgs in self.messages.items():
            text = "; ".join(str(m) for m in msgs) if isinstance(msgs, list) else str(msgs)
            parts.append(f"{name}: {text}")
        return "invalid input: " + ", ".join(parts)


class NotFoundError(DataLayerError):
    """The row does not exist, or is outside the caller's scope."""


class ConflictError(DataLayerError):
    """A unique constraint or a state conflict (duplicate, already used, last owner)."""


class PermissionDeniedError(DataLayerError):
    """The actor lacks the role or membership the operation needs."""


class ConnectionLostError(DataLayerError):
    """The database connection failed or dropped; the unit of work may be retried."""


class QueryTimeoutError(DataLayerError):
    """A statement ran past ``statement_timeout`` or waited past ``lock_timeout``."""


class PoolerSafetyError(DataLayerError):
    """A session-level feature was used on a connection behind a transaction-mode pooler."""


# SQLSTATE classes that mean "the connection is gone or unusable".
_CONNECTION_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def sqlstate(exc: BaseException) -> str | None:
    """Return the SQLSTATE of a psycopg2 error wrapped by peewee, if any."""
    orig = getattr(exc, "orig", None) or getattr(exc, "__cause__", None) or exc
    return getattr(orig, "pgcode", None)


def is_connection_error(exc: BaseException) -> bool:
    """Tell whether ``exc`` means the connection was lost (retryable)."""
    if isinstance(exc, ConnectionLostError | peewee.InterfaceError):
        return True
    code = sqlstate(exc)
    if code and code.startswith(_CONNECTION_SQLSTATES):
        return True
    if isinstance(exc, peewee.OperationalError) and code is None:
        text = str(exc).lower()
        return any(
            s in text
            for s in ("server closed", "connection", "terminating", "could not connect", "ssl")
        )
    return False


def _conflict_message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"conflict: {text}"


def translate(exc: BaseException) -> DataLayerError:
    """Map a peewee/driver exception to the matching ``DataLayerError``."""
    if isinstance(exc, DataLayerError):
        return exc
    code = sqlstate(exc)
    if code == "42501" or "is append-only" in str(exc):  # SQLite's triggers have no SQLSTATE
        return PermissionDeniedError(str(exc).splitlines()[0])
    if isinstance(exc, peewee.IntegrityError):
        if code == "23503" or "FOREIGN KEY" in str(exc).upper():
            return NotFoundError(f"referenced row does not exist: {str(exc).splitlines()[0]}")
        if code in ("23502", "23514") or "NOT NULL" in str(exc).upper() or "CHECK" in str(exc).upper():
            return ValidationError(str(exc).splitlines()[0])
        return ConflictError(_conflict_message(exc))
    if code in ("55P03", "57014"):  # lock_not_available, query_canceled (by a timeout)
        return QueryTimeoutError(f"query timed out ({code}): {str(exc).strip().splitlines()[0]}")
    if code in ("40001", "40P01"):
        return ConflictError(f"transaction conflict ({code}): {str(exc).splitlines()[0]}")
    if is_connection_error(exc):
        return ConnectionLostError(f"database connection lost: {str(exc).strip()[:200]}")
    if isinstance(exc, peewee.DataError):
        return ValidationError(str(exc).splitlines()[0] if str(exc) else "invalid data")
    return DataLayerError(f"database error: {str(exc).strip()[:300]}")


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Re-raise database errors raised inside the block as ``DataLayerError`` subclasses."""
    try:
        yield
    except DataLayerError:
        raise
    except peewee.PeeweeException as exc:
        raise translate(exc) from exc
