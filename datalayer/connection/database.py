"""The database handle: a ``DatabaseProxy`` bound by ``init_db``, pooling, SQL logging, transactions.

Nothing connects at import time. Scripts and workers call ``init_db()`` once; the
URL comes from the argument, else ``DATABASE_URL``, else the embedded SQLite default
(``datalayer.sqlite3`` in the working directory).

PostgreSQL goes through psycopg2, which never uses server-side prepared statements,
so the library is safe behind transaction-mode poolers (PgBouncer, Supabase's pooler)
as long as nothing relies on session state — which is what ``pooler="transaction"``
enforces (see ``PoolerSafetyError``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import ParseResult, parse_qsl, urlencode, urlparse

import peewee
import psycopg2
from playhouse import db_url
from playhouse.pool import MaxConnectionsExceeded, PooledPostgresqlDatabase, PooledSqliteDatabase
from psycopg2.extensions import parse_dsn

from datalayer.connection import pooling, replicas
from datalayer.connection.context import routed_database
from datalayer.connection.files import PrivateSqliteMixin
from datalayer.connection.pooling import check_pooler_safe, condemn, forget_connection, is_broken
from datalayer.connection.schema_version import check_once
from datalayer.connection.sql_log import statement_hook, timed, use_stderr_unless_configured
from datalayer.errors import (
    NOT_INITIALIZED,
    READ_ONLY_NODE,
    ConfigurationError,
    NotInitializedError,
    PoolerSafetyError,
    sqlstate,
    translate,
)
from datalayer.redact import redact_url

__all__ = [
    "DEFAULT_SQLITE_PATH",
    "atomic",
    "connection_context",
    "db",
    "describe_target",
    "driver_url",
    "init_db",
    "resolve_target",
    "sqlite_file",
    "is_postgres",
    "is_sqlite",
]

T = TypeVar("T")

DEFAULT_SQLITE_PATH = "datalayer.sqlite3"

class RoutingProxy(peewee.DatabaseProxy):
    """``db``: the primary (``db.obj``), or the replica this context's read was routed to
    (``datalayer.connection.context``: a replica for the duration of a replica-safe read)."""

    def __getattr__(self, attr: str) -> Any:
        database = routed_database()
        if database is None:
            database = self.obj
            if database is None:
                raise NotInitializedError(NOT_INITIALIZED)
        return getattr(database, attr)


db = RoutingProxy()

# Options init_db understands that are not psycopg2/sqlite3 connect parameters; they may
# also be given in the URL's query string (``?pooler=transaction&statement_timeout=5000``).
_LIBRARY_OPTIONS = (
    "pooler", "statement_timeout", "lock_timeout", "log_sql", "slow_query_ms", "pool"
)

# Statements that never write (everything else counts as a write for read-your-writes).
_READS = ("SELECT", "SHOW", "SET ", "RESET")


if TYPE_CHECKING:
    # For the type checker the mixin is the peewee.Database it is mixed into (as
    # playhouse.pool.PooledDatabase is); at run time it is a plain class, first in the MRO.
    _Database = peewee.Database
else:
    _Database = object


class DataLayerDatabase(_Database):
    """Behaviour shared by every database class the library builds, and its options."""

    is_pg: ClassVar[bool] = False
    if TYPE_CHECKING:  # peewee's private per-connection state, which its stubs leave out
        _state: peewee._ConnectionState
        _adapter: Any
        _isolation_level: Any

    def __init__(
        self,
        database: str | None,
        *,
        pooler: str | None = None,
        statement_timeout: int | None = None,
        lock_timeout: int | None = None,
        log_sql: bool = False,
        slow_query_ms: float | None = None,
        schema_key: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Take the library's options, then peewee's (``pooler``: "transaction" behind
        PgBouncer's transaction mode; timeouts in ms; ``log_sql`` / ``slow_query_ms``:
        the SQL log; ``schema_key``: check once per process that it is migrated)."""
        self.pooler_mode = pooler
        self.statement_timeout = statement_timeout
        self.lock_timeout = lock_timeout
        self.log_sql = log_sql  # datalayer.connection.sql_log: statements at DEBUG
        self.slow_query_ms = slow_query_ms  # datalayer.connection.sql_log: slower ones at WARNING
        self.schema_key = schema_key
        # Set by datalayer.connection.replicas (read-your-writes) when replicas are configured.
        self.on_write: Callable[[], None] | None = None
        super().__init__(database, **kwargs)
        if log_sql or slow_query_ms is not None:
            use_stderr_unless_configured(debug=log_sql)
            self.query_hooks.append(statement_hook(log_sql, slow_query_ms))

    def _log_query(self, sql: str, params: Any) -> None:
        """peewee's own statement log stays silent: ``datalayer.sql`` logs each statement
        once, with its duration and its secrets masked."""

    def execute_sql(self, sql: str, params: Any = None) -> Any:
        if self.pooler_mode == "transaction":
            check_pooler_safe(sql, self.in_transaction())
        if self.on_write is not None and not sql[:16].lstrip()[:6].upper().startswith(_READS):
            self.on_write()
        try:
            return super().execute_sql(sql, params)  # type: ignore[no-untyped-call]  # unannotated in peewee's stubs
        except peewee.PeeweeException as exc:
            if sqlstate(exc) == READ_ONLY_NODE:
                # A write on a node that is (now) a standby: after a failover this session
                # stays on the demoted primary, so it is never used again.
                condemn(self._state.conn)
            raise

    def connect(self, reuse_if_open: bool = False) -> bool:
        # Keep the connection_context() blocks open across a reconnection after
        # forget_connection(); peewee's connect() would drop them.
        ctx = list(self._state.ctx) if self._state.closed else []
        try:
            opened: bool = super().connect(reuse_if_open)
        except MaxConnectionsExceeded as exc:
            raise translate(exc) from exc  # PoolExhaustedError, wherever it connects
        finally:
            self._state.ctx[:0] = ctx
        if opened and self.schema_key is not None:
            check_once(self, self.schema_key)  # one query per process and database
        return opened

    def cursor(self, named_cursor: Any = None) -> Any:
        conn = self._state.conn
        if conn is not None and is_broken(conn) and not self.in_transaction():
            # The driver already reported this connection lost: start afresh rather
            # than fail every later unit of work of a long-running worker.
            forget_connection(self)
        return super().cursor(named_cursor)  # type: ignore[no-untyped-call]  # unannotated in peewee's stubs

    def begin(self, *args: Any, **kwargs: Any) -> None:
        def run() -> None:
            self._begin(*args, **kwargs)

        timed("BEGIN", run, log=self.log_sql, slow_ms=self.slow_query_ms)

    def commit(self) -> None:
        timed("COMMIT", super().commit, log=self.log_sql, slow_ms=self.slow_query_ms)

    def rollback(self) -> None:
        timed("ROLLBACK", super().rollback, log=self.log_sql, slow_ms=self.slow_query_ms)

    def _begin(self, *args: Any, **kwargs: Any) -> None:
        if not (self.is_pg and (self.statement_timeout or self.lock_timeout)):
            return super().begin(*args, **kwargs)
        level = kwargs.get("isolation_level", args[0] if args else None)
        level = level or self._isolation_level
        sql = "BEGIN"
        if level:
            sql += " ISOLATION LEVEL " + self._adapter.isolation_level_str(level)
        # SET LOCAL: transaction-local, so never leaks through a pooler to another client;
        # sent with the BEGIN, so it costs no extra round trip.
        for name in ("statement_timeout", "lock_timeout"):
            if getattr(self, name):
                sql += f"; SET LOCAL {name} = {int(getattr(self, name))}"
        with peewee.__exception_wrapper__:  # type: ignore[attr-defined]  # not in peewee's stubs
            self.cursor().execute(sql)
        return None

    def named_cursor(self, name: str) -> Any:
        """Open a server-side cursor; refused outside a transaction behind a pooler."""
        if self.pooler_mode == "transaction" and not self.in_transaction():
            raise PoolerSafetyError(
                "refused behind a transaction-mode pooler: named (server-side) cursors "
                "only work inside a transaction"
            )
        return self.connection().cursor(name)  # type: ignore[no-untyped-call]  # unannotated in peewee's stubs


class PostgresDB(DataLayerDatabase, peewee.PostgresqlDatabase):
    is_pg = True


class PooledPostgresDB(DataLayerDatabase, PooledPostgresqlDatabase):  # type: ignore[misc]  # playhouse.pool has no stubs (Any)
    is_pg = True

    def _can_reuse(self, conn: Any) -> bool:
        """A condemned connection (a session on a demoted primary) is closed, not pooled."""
        return not is_broken(conn) and bool(super()._can_reuse(conn))


class SqliteDB(PrivateSqliteMixin, DataLayerDatabase, peewee.SqliteDatabase):
    pass


class PooledSqliteDB(PrivateSqliteMixin, DataLayerDatabase, PooledSqliteDatabase):  # type: ignore[misc]  # playhouse.pool has no stubs (Any)
    pass


_SCHEMES: dict[str, type[DataLayerDatabase]] = {
    "postgres": PostgresDB,
    "postgresql": PostgresDB,
    "postgres+pool": PooledPostgresDB,
    "postgresql+pool": PooledPostgresDB,
    "sqlite": SqliteDB,
    "sqlite+pool": PooledSqliteDB,
}

SQLITE_PRAGMAS = (
    ("foreign_keys", 1),
    ("journal_mode", "wal"),
    ("busy_timeout", 30000),
    ("synchronous", "normal"),
)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _split_url(url: str) -> tuple[str, dict[str, str]]:
    """Separate the library's own options from a URL's query string."""
    base, sep, query = url.partition("?")
    if not sep:
        return url, {}
    kept, ours = [], {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in _LIBRARY_OPTIONS:
            ours[key] = value
        else:
            kept.append((key, value))
    return (base + "?" + urlencode(kept) if kept else base), ours


def driver_url(url: str) -> str:
    """Return ``url`` without the library's own options, for psql or a raw driver."""
    return _split_url(url)[0]


def _connect_kwargs(parsed: ParseResult) -> dict[str, Any]:
    """Return the driver's connect arguments for a parsed URL.

    A multi-host PostgreSQL URL (``postgresql://u@h1:5432,h2:5432/db?target_session_attrs=
    read-write``: libpq connects to the first host that fits) has no single port, which
    urllib tries to cast; libpq's own parser reads the hosts and ports, passed on as its
    comma-separated ``host`` and ``port``.
    """
    userinfo, at, hosts = parsed.netloc.rpartition("@")
    if "," not in hosts:
        single: dict[str, Any] = db_url.parseresult_to_dict(
            parsed, unquote_password=True, unquote_user=True
        )
        return single
    kwargs: dict[str, Any] = db_url.parseresult_to_dict(
        parsed._replace(netloc=userinfo + at), unquote_password=True, unquote_user=True
    )
    try:
        servers = parse_dsn(f"postgresql://{hosts}/")
    except psycopg2.ProgrammingError as exc:
        raise ConfigurationError(
            f"cannot read the hosts {hosts!r} of the database URL: {exc}"
        ) from exc
    kwargs.update({key: servers[key] for key in ("host", "port") if key in servers})
    return kwargs


def resolve_target(url: str | None = None, *, direct: bool = False) -> tuple[str, str]:
    """Return the URL a command or ``init_db`` will use, and where it came from.

    ``direct``: a migration command, which reads ``DATABASE_DIRECT_URL`` first. The
    source is ``"argument"``, the variable's name, or ``"default"`` (the embedded SQLite
    file, used because ``DATABASE_URL`` is not set).
    """
    if url:
        return url, "argument"
    for name in ("DATABASE_DIRECT_URL", "DATABASE_URL") if direct else ("DATABASE_URL",):
        if os.environ.get(name):
            return os.environ[name], name
    return f"sqlite:///{DEFAULT_SQLITE_PATH}", "default"


def describe_target(url: str | None = None, *, direct: bool = False) -> str:
    """Say which database ``url`` (or the environment) names: password masked, its source.

    Every ``datalayer`` command prints this on stderr before it starts.
    """
    target, source = resolve_target(url, direct=direct)
    text = f"database: {redact_url(target)}"
    path = _sqlite_path(target)
    if path is not None and not os.path.isabs(path):  # relative to the working directory
        absolute = os.path.abspath(path)
        text += f" (file {absolute}{'' if os.path.exists(absolute) else ', not created yet'})"
    if source == "default":
        return text + " - the embedded default, because DATABASE_URL is not set"
    return text + (" (--database)" if source == "argument" else f" (from {source})")


def sqlite_file(url: str) -> str | None:
    """Return the file a SQLite URL names (as written: relative to the working directory or
    absolute), or None for an in-memory database or another backend."""
    return _sqlite_path(url)


def _sqlite_path(url: str) -> str | None:
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith("sqlite") or not rest.startswith("/"):
        return None
    path = rest[1:].partition("?")[0]
    return None if path in ("", ":memory:") else path


def build_database(url: str | None = None, **options: Any) -> DataLayerDatabase:
    """Build (without connecting) the peewee database a URL describes."""
    url = url or os.environ.get("DATABASE_URL") or f"sqlite:///{DEFAULT_SQLITE_PATH}"
    if not isinstance(url, str):
        raise ConfigurationError(f"the database URL must be a string, not {type(url).__name__}")
    url, url_options = _split_url(url)
    merged: dict[str, Any] = {**url_options, **options}
    scheme = urlparse(url).scheme
    if merged.pop("pool", None) in (True, "1", "true") and "+pool" not in scheme:
        scheme += "+pool"
        url = scheme + url[url.index(":") :]
    cls = _SCHEMES.get(scheme)
    if cls is None:
        raise ConfigurationError(
            f"unsupported database URL scheme {scheme!r}: use postgresql://, "
            "postgresql+pool://, sqlite:/// or sqlite+pool:///"
        )
    pooler = merged.pop("pooler", None) or None
    statement_timeout = merged.pop("statement_timeout", None)
    lock_timeout = merged.pop("lock_timeout", None)
    log_sql = merged.pop("log_sql", None)
    slow_query_ms = merged.pop("slow_query_ms", None)
    parsed = urlparse(url)
    if not cls.is_pg and parsed.netloc:
        raise ConfigurationError(
            f"the SQLite URL {url!r} names a host ({parsed.netloc!r}): write "
            f"{scheme}:///{parsed.netloc}{parsed.path} for a file relative to the working "
            f"directory, or {scheme}:////absolute/path"
        )
    kwargs = _connect_kwargs(parsed)
    kwargs.update(merged)
    if not kwargs.get("database"):
        raise ConfigurationError(
            f"the database URL {redact_url(url)!r} names no database: "
            "postgresql://user:password@host:5432/dbname or sqlite:///path"
        )
    if cls.is_pg:
        kwargs.setdefault("connect_timeout", 10)
        # peewee registers psycopg2's UNICODE caster, which on Python 3 decodes every text
        # value in Python (a third of a small query's time); the default decodes in C.
        kwargs.setdefault("register_unicode", False)
        kwargs.setdefault("application_name", "datalayer")
    else:
        kwargs.setdefault("pragmas", SQLITE_PRAGMAS)
        # IMMEDIATE: a write transaction takes the write lock up front, so two writers
        # queue on busy_timeout instead of failing on a lock upgrade.
        kwargs.setdefault("lock_type", "IMMEDIATE")
        # SQLite 3.35+ has RETURNING: writes return their row in one statement, as on PG.
        kwargs.setdefault("returning_clause", True)
    if "+pool" in scheme:
        kwargs.setdefault("max_connections", 20)
        kwargs.setdefault("stale_timeout", 300)
        kwargs.setdefault("timeout", 30)
    elif {"max_connections", "stale_timeout"} & kwargs.keys():
        raise ConfigurationError(
            "max_connections and stale_timeout need pool=True or a +pool URL"
        )
    if log_sql is None:
        log_sql = _env_flag("DATALAYER_LOG_SQL") or os.environ.get("DATALAYER_ENV") == "development"
    database = cls(
        pooler=pooler,
        statement_timeout=_milliseconds("statement_timeout", statement_timeout),
        lock_timeout=_milliseconds("lock_timeout", lock_timeout),
        log_sql=log_sql in (True, "1", "true"),
        slow_query_ms=_slow_query_ms(slow_query_ms),
        **kwargs,
    )
    pooling.track(database)
    return database


def _milliseconds(name: str, value: Any) -> int | None:
    """Read a timeout option (milliseconds; None, 0 or "" for none)."""
    if value is None or value == "" or value == 0:
        return None
    try:
        ms = int(value)
    except (TypeError, ValueError, OverflowError):
        ms = -1
    if isinstance(value, bool) or not 0 <= ms <= 2**31 - 1:
        raise ConfigurationError(f"{name} must be a number of milliseconds, not {value!r}")
    return ms or None


def _slow_query_ms(value: Any) -> float | None:
    """Read the ``slow_query_ms`` option, else ``DATALAYER_SLOW_QUERY_MS`` (None: off)."""
    if value is None:
        value = os.environ.get("DATALAYER_SLOW_QUERY_MS") or None
    if value is None or value == "":
        return None
    try:
        ms = float(value)
    except (TypeError, ValueError):
        ms = -1.0
    if not ms >= 0 or isinstance(value, bool):
        raise ConfigurationError(
            f"slow_query_ms must be a number of milliseconds (0 or more), not {value!r}"
        )
    return ms


def init_db(url: str | None = None, **options: Any) -> DataLayerDatabase:
    """Bind ``db`` to the database at ``url`` (else ``DATABASE_URL``, else the SQLite default).

    Options: ``pool`` (bool), ``max_connections``, ``stale_timeout``, ``timeout`` (pool),
    ``pooler`` ("transaction" when behind PgBouncer/Supabase transaction mode),
    ``statement_timeout`` / ``lock_timeout`` (ms, set per transaction with SET LOCAL),
    ``connect_timeout`` (s), ``log_sql`` (bool); anything else goes to the driver.
    Read replicas: ``replica_urls`` (else ``DATABASE_REPLICA_URLS``, comma separated),
    ``replica_wait_ms``, ``replica_max_lag_ms``, ``replica_retry_seconds`` — see
    ``datalayer.connection.replicas``.

    Nothing connects here. The first connection then checks, once per process and
    database (one query), that every migration this datalayer ships is applied; if not,
    it warns (``SchemaBehindWarning`` and a WARNING on the ``datalayer.connection``
    logger) naming ``datalayer migrate``. Any caller: each process (and each worker
    after a fork) calls it once before its first query.

    Returns:
        The peewee database ``db`` is now bound to.

    Raises:
        ConfigurationError: a URL or an option it cannot use (an unknown scheme, a URL
            that names no database, ``sqlite://relative.db``, a timeout that is not a
            number of milliseconds, pool options without a pool).
    """
    replica_options = replicas.take_options(options)
    if db.obj is not None and not db.obj.is_closed():
        db.obj.close()
    database = build_database(url, **options)
    target, _ = resolve_target(url)
    database.schema_key = _schema_key(target)
    db.initialize(database)
    replicas.configure(database, options, build=build_database, **replica_options)
    return database


def _schema_key(url: str) -> str:
    """The database a URL names, for the once-per-process migration check (no password)."""
    path = _sqlite_path(driver_url(url))
    if path is not None:
        return "sqlite:///" + os.path.abspath(path)
    return redact_url(driver_url(url))


def is_postgres() -> bool:
    """Tell whether ``db`` is bound to PostgreSQL."""
    return bool(getattr(db.obj, "is_pg", False))


def is_sqlite() -> bool:
    """Tell whether ``db`` is bound to SQLite."""
    return isinstance(db.obj, peewee.SqliteDatabase)


def atomic() -> Any:
    """Open a transaction, or a savepoint when one is already open.

    Any caller, after ``init_db()``: ``with atomic(): ...`` commits when the block ends
    and rolls back when it raises; every query function inside nests as a savepoint.

    Returns:
        The context manager (peewee's transaction or savepoint).

    Raises:
        ConfigurationError: ``init_db()`` was not called (``NotInitializedError``).
    """
    return db.atomic()


@contextmanager
def connection_context() -> Iterator[None]:
    """Hold a connection for one unit of work and give it back (to the pool) afterwards.

    Any caller, after ``init_db()``; with a pool, wrap each unit of work of a thread in
    it so the connection goes back to the pool.

    Raises:
        ConfigurationError: ``init_db()`` was not called.
        PoolExhaustedError: no pooled connection became free within the pool's timeout.
        ConnectionLostError: the server cannot be reached.
    """
    with db.connection_context():
        yield
