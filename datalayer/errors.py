"""The errors callers see, and the one place that translates database errors into them."""

from __future__ import annotations

import contextlib
import functools
import re
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar

import peewee
import psycopg2
from playhouse.pool import MaxConnectionsExceeded

from datalayer.redact import scrub, scrub_exception

__all__ = [
    "AdoptError",
    "AdoptRefused",
    "ConfigurationError",
    "ConflictError",
    "ConnectionLostError",
    "DataLayerError",
    "DataLossError",
    "MakeMigrationsError",
    "MigrationError",
    "NotFoundError",
    "NotInitializedError",
    "PendingMigrationsError",
    "PermissionDeniedError",
    "PoolExhaustedError",
    "PoolerSafetyError",
    "QueryTimeoutError",
    "SerializationError",
    "ValidationError",
    "error_boundary",
    "guarded",
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
    """The row does not exist, or is outside the caller's scope.

    ``entity`` names what was looked for (``"todo"``, ``"user"``; None when the database
    reported a missing referenced row it did not name) and ``id`` its id (None for a
    lookup by something else, a token or an email).
    """

    def __init__(
        self, message: str | None = None, *, entity: str | None = None, id: str | None = None
    ) -> None:
        self.entity = entity
        self.id = id
        if message is None:
            what = (entity or "row").replace("_", " ")
            message = f"{what} {id} not found" if id is not None else f"{what} not found"
        super().__init__(message)


class ConflictError(DataLayerError):
    """A unique constraint or a state conflict (duplicate, already used, last owner).

    For a unique constraint, ``constraint`` is its name (``"user_email"``), ``table`` its
    table and ``columns`` its columns, and the message says the same on every backend:
    ``user.email already exists (constraint user_email)``. For a state conflict the three
    are None / empty. The driver's exception is ``__cause__``.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        constraint: str | None = None,
        table: str | None = None,
        columns: Sequence[str] = (),
    ) -> None:
        self.constraint = constraint
        self.table = table
        self.columns: tuple[str, ...] = tuple(columns)
        if message is None:
            listed = ", ".join(f"{table}.{c}" for c in self.columns) or str(table)
            message = f"{listed} already exists (constraint {constraint})"
        super().__init__(message)


class SerializationError(ConflictError):
    """The transaction lost to a concurrent one: a serialization failure (SQLSTATE 40001)
    or a deadlock (40P01). Nothing it did was kept; run it again (``retrying`` does)."""


class PermissionDeniedError(DataLayerError):
    """The actor lacks the role or membership the operation needs."""


class ConnectionLostError(DataLayerError):
    """The database connection failed or dropped; the unit of work may be retried."""


class ConfigurationError(DataLayerError):
    """The library is set up wrongly: a wrong URL, credentials or database name, no
    ``init_db()``, a schema ``datalayer migrate`` has not brought up to date. Retrying
    cannot help; the message says what to do."""


class NotInitializedError(ConfigurationError, AttributeError):
    """``db`` used before ``init_db()``: a ``ConfigurationError`` that is also the
    ``AttributeError`` a proxy's missing attribute has always been (``hasattr`` works)."""


class PoolExhaustedError(DataLayerError):
    """No pooled connection became free within the pool's ``timeout``."""


class QueryTimeoutError(DataLayerError):
    """A statement ran past ``statement_timeout`` or waited past ``lock_timeout``."""


class PoolerSafetyError(DataLayerError):
    """A session-level feature was used on a connection behind a transaction-mode pooler."""


# read_only_sql_transaction: a write reached a standby, e.g. a session still open on a
# primary that a failover demoted. Retryable on a fresh connection (``retrying``).
READ_ONLY_NODE = "25006"

# SQLSTATE classes that mean "the connection is gone or unusable".
_CONNECTION_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def sqlstate(exc: BaseException) -> str | None:
    """Return the SQLSTATE of a psycopg2 error wrapped by peewee, if any."""
    orig = getattr(exc, "orig", None) or getattr(exc, "__cause__", None) or exc
    return getattr(orig, "pgcode", None)


# Connection failures no retry can fix: the URL, the credentials or the database name is
# wrong (psycopg2 reports them with no SQLSTATE; PgBouncer and SQLite in their own words).
_CONFIGURATION_TEXT = re.compile(
    r"password authentication failed|no password supplied|authentication failed"
    r"|no pg_hba\.conf entry|\b(role|database) \"[^\"]*\" does not exist"
    r"|no such (database|user)\b|does not have connect privilege"
    r"|could not translate host name .*(not known|no address associated)|nodename nor servname"
    r"|invalid dsn|invalid connection option|invalid sslmode|invalid port|invalid integer value"
    r"|server does not support ssl|unable to open database file",
    re.I,
)
# The schema is not what this version of the library expects: missing table, column, type.
_SCHEMA_SQLSTATES = ("42P01", "42703", "42704", "3F000")
_SCHEMA_TEXT = re.compile(r"no such table|no such column|has no column named", re.I)

NOT_INITIALIZED = (
    "the database is not initialized: call datalayer.init_db() (it reads DATABASE_URL) "
    "before using the library"
)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def configuration_error(exc: BaseException) -> ConfigurationError | None:
    """Return the ``ConfigurationError`` that ``exc`` means, or None when it is something else."""
    if isinstance(exc, ConfigurationError):
        return exc
    if isinstance(exc, AttributeError) and "uninitialized Proxy" in str(exc):
        return NotInitializedError(NOT_INITIALIZED)
    if not isinstance(exc, peewee.PeeweeException):
        return None
    code = sqlstate(exc)
    if code in _SCHEMA_SQLSTATES or (code is None and _SCHEMA_TEXT.search(str(exc))):
        return ConfigurationError(
            f"the database schema is missing or out of date ({scrub(_first_line(exc))}): "
            "run `datalayer migrate` against this database"
        )
    if code is None and _CONFIGURATION_TEXT.search(str(exc)):
        detail = " ".join(str(exc).split())[:300]
        return ConfigurationError(
            f"cannot use the configured database: {detail} - check the database URL "
            "(DATABASE_URL, or the url given to init_db()): scheme, host, port, user, "
            "password and database name"
        )
    return None


def is_connection_error(exc: BaseException) -> bool:
    """Tell whether ``exc`` means the connection was lost (retryable)."""
    if isinstance(exc, ConnectionLostError):
        return True
    if configuration_error(exc) is not None:
        return False
    if isinstance(exc, peewee.InterfaceError):
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


# The unique constraints of the models, by name and by (table, columns): the models register
# them (datalayer.models), so a duplicate reads the same on PostgreSQL, which names the
# constraint, and on SQLite, which names the table and columns.
_UNIQUE_BY_NAME: dict[str, tuple[str, tuple[str, ...]]] = {}
_UNIQUE_BY_COLUMNS: dict[tuple[str, tuple[str, ...]], str] = {}
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)$")


def register_unique(name: str, table: str, columns: Sequence[str]) -> None:
    """Record a unique constraint (or unique index) so duplicates on it are named."""
    _UNIQUE_BY_NAME[name] = (table, tuple(columns))
    _UNIQUE_BY_COLUMNS.setdefault((table, tuple(columns)), name)


def _driver(exc: BaseException) -> BaseException:
    return getattr(exc, "orig", None) or getattr(exc, "__cause__", None) or exc


def unique_conflict(exc: BaseException) -> ConflictError:
    """Return the ``ConflictError`` of a unique violation, named the same on both backends."""
    diag = getattr(_driver(exc), "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name is not None:  # PostgreSQL names the constraint
        table, columns = _UNIQUE_BY_NAME.get(name, (getattr(diag, "table_name", None), ()))
        return ConflictError(constraint=name, table=table, columns=columns)
    match = _SQLITE_UNIQUE.search(_first_line(exc))
    if match is not None:  # SQLite names the columns: "user.email" or "t.a, t.b"
        pairs = [part.strip().split(".", 1) for part in match.group(1).split(",")]
        table, columns = pairs[0][0], tuple(p[-1] for p in pairs)
        return ConflictError(
            constraint=_UNIQUE_BY_COLUMNS.get((table, columns)), table=table, columns=columns
        )
    return ConflictError(f"conflict: {scrub(_first_line(exc))}")


def translate(exc: BaseException) -> DataLayerError:
    """Map a peewee/driver exception to the matching ``DataLayerError``."""
    if isinstance(exc, DataLayerError):
        return exc
    scrub_exception(exc)  # the chained cause is printed with tracebacks: no secret in it
    if isinstance(exc, MaxConnectionsExceeded):
        return PoolExhaustedError(
            f"no pooled connection became free in time ({exc}): raise max_connections, "
            "the pool's timeout, or hold connections for less time (connection_context())"
        )
    config = configuration_error(exc)
    if config is not None:
        return config
    code = sqlstate(exc)
    if code == "42501" or "is append-only" in str(exc):  # SQLite's triggers have no SQLSTATE
        return PermissionDeniedError(_first_line(exc))
    if isinstance(exc, peewee.IntegrityError):
        if code == "23503" or "FOREIGN KEY" in str(exc).upper():
            return NotFoundError(f"referenced row does not exist: {_first_line(exc)}")
        if code in ("23502", "23514") or "NOT NULL" in str(exc).upper() or "CHECK" in str(exc).upper():
            return ValidationError(_first_line(exc))
        return unique_conflict(exc)
    if code in ("55P03", "57014"):  # lock_not_available, query_canceled (by a timeout)
        return QueryTimeoutError(f"query timed out ({code}): {_first_line(exc)}")
    if code in ("40001", "40P01"):
        return SerializationError(f"transaction conflict ({code}): {_first_line(exc)}")
    if code == READ_ONLY_NODE:
        return ConnectionLostError(
            f"the server refused a write as read-only ({_first_line(exc)}): a standby, or "
            "a primary a failover demoted; the session is dropped, the next one connects "
            "afresh (use a multi-host URL with target_session_attrs=read-write)"
        )
    if is_connection_error(exc):
        return ConnectionLostError(f"database connection lost: {str(exc).strip()[:200]}")
    if isinstance(exc, peewee.DataError):
        return ValidationError(_first_line(exc))
    return DataLayerError(f"database error: {_first_line(exc)[:300]}")


# What the boundary translates: peewee's errors, the drivers' own (raised outside peewee's
# wrapper, e.g. by COPY or a server-side cursor) and the pool's. Anything else -- the
# library's own bugs, the caller's exceptions -- propagates as it is.
DATABASE_ERRORS = (peewee.PeeweeException, MaxConnectionsExceeded, psycopg2.Error, sqlite3.Error)


def _as_peewee(exc: BaseException) -> BaseException:
    """Return a driver's exception as peewee's matching one (peewee's own mapping)."""
    try:
        with peewee.__exception_wrapper__:  # type: ignore[attr-defined]  # untyped in peewee's stubs
            raise exc
    except peewee.PeeweeException as wrapped:
        return wrapped
    except BaseException:  # noqa: BLE001 - a driver error peewee does not map
        return exc
    raise AssertionError("unreachable")


def translated(exc: BaseException) -> DataLayerError | None:
    """Return the ``DataLayerError`` a database failure means; None for anything else."""
    if isinstance(exc, DataLayerError):
        return exc
    if isinstance(exc, psycopg2.Error | sqlite3.Error):
        exc = _as_peewee(exc)
    if isinstance(exc, DATABASE_ERRORS):
        return translate(exc)
    if isinstance(exc, AttributeError):  # ``db`` used before init_db()
        return configuration_error(exc)
    return None


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Re-raise database errors raised inside the block as ``DataLayerError`` subclasses."""
    try:
        yield
    except Exception as exc:
        error = translated(exc)
        if error is None or error is exc:
            raise
        raise error from exc


P = ParamSpec("P")
R = TypeVar("R")
N = TypeVar("N", bound=type)


def guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap a public function so database failures leave it as ``DataLayerError``s.

    Only peewee's, the drivers' and the pool's errors are translated: a ``TypeError`` or
    ``ValueError`` from the library's own code (a bug) or a wrong call propagates as it is.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            error = translated(exc)
            if error is None or error is exc:
                raise
            raise error from exc

    wrapper.__datalayer_guarded__ = True  # type: ignore[attr-defined]  # a marker the tests read
    return wrapper


def error_boundary(namespace: N) -> N:
    """Class decorator of an ``XxxQueries`` namespace: every public static method is
    ``guarded``, so a database failure leaves it as a ``DataLayerError``."""
    for attr, value in list(vars(namespace).items()):
        if attr.startswith("_") or not isinstance(value, staticmethod):
            continue
        if not getattr(value.__func__, "__datalayer_guarded__", False):
            setattr(namespace, attr, staticmethod(guarded(value.__func__)))
    return namespace


class MigrationError(DataLayerError):
    """Migrations could not run: no database, a bad URL, a failed or missing migration."""


class PendingMigrationsError(MigrationError):
    """The database has migrations left to apply."""


class DataLossError(MigrationError):
    """A pending migration drops data; ``migrate(allow_data_loss=True)`` lets it."""

    def __init__(self, losses: Sequence[object]) -> None:  # evolve.steps.DataLoss items
        self.losses = list(losses)
        listed = "; ".join(str(loss) for loss in losses)
        super().__init__(f"refusing to drop data: {listed}. Nothing was applied. Back the "
                         "data up or move it first, then run again with --allow-data-loss")


class AdoptError(DataLayerError):
    """Adoption cannot go on; nothing was written."""


class AdoptRefused(AdoptError):
    """The database is not one the original package made (or not PostgreSQL)."""


class MakeMigrationsError(DataLayerError):
    """A migration could not be generated (unanswered rename, unsafe column, wrong install)."""
