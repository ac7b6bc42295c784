"""Run the migrations shipped with the package: migrate, rollback, status, and compare the
schema with the models (``schema_drift``, the `datalayer check` command).

The migrations folder is resolved from the installed package (``datalayer.migrations``),
never from the working directory. The URL comes from the argument, else
``DATABASE_DIRECT_URL`` (migrations only: lets them bypass a transaction-mode pooler),
else ``DATABASE_URL``, else the SQLite default.

Every run that writes holds one transaction from start to end. On PostgreSQL its first
statement takes a transaction-level advisory lock, so concurrent runs (several replicas
starting at once) queue up and each migration is applied exactly once; a transaction
lock also works behind a transaction-mode pooler, where a session lock would not. On
SQLite the transaction starts with ``BEGIN IMMEDIATE``, which takes the write lock.
peewee_migrate's own per-migration transactions nest inside it.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import peewee
from peewee_migrate import Migrator, Router
from peewee_migrate.models import MIGRATE_TABLE

from datalayer.connection.database import build_database, db
from datalayer.connection.schema_version import SchemaBehindWarning
from datalayer.errors import (
    DataLayerError,
    DataLossError,
    MigrationError,
    PendingMigrationsError,
    PoolerSafetyError,
    sqlstate,
)
from datalayer.evolve import online
from datalayer.evolve.drift import schema_differences
from datalayer.evolve.paths import migrations_dir, unshipped_migrations
from datalayer.evolve.steps import column_defaults, data_loss, install_fixes, queue

__all__ = [
    "LOCK_KEY",
    "MigrationError",
    "PendingMigrationsError",
    "DataLossError",
    "migrate",
    "migrations_dir",
    "resolve_url",
    "schema_drift",
    "rollback",
    "status",
    "unshipped_migrations",
]

# How long a DDL statement waits for its table lock before it (or the run) is retried:
# writers queue behind a waiting ALTER, so this bounds how long a migration stalls them.
LOCK_TIMEOUT = 2.0
LOCK_RETRIES = 4

# pg_advisory_xact_lock key: the bytes of "datalayr" read as a (positive) bigint.
LOCK_KEY = int.from_bytes(b"datalayr", "big")

def sqlstate_of(exc: BaseException) -> str | None:
    """Return the SQLSTATE behind a (wrapped) database error, if any."""
    seen: BaseException | None = exc
    while seen is not None:
        code = sqlstate(seen)
        if code:
            return code
        seen = seen.__cause__ or seen.__context__
    return None


def resolve_url(url: str | None = None) -> str | None:
    """Return the URL migrations use; None means ``DATABASE_URL``, else the SQLite default."""
    return url or os.environ.get("DATABASE_DIRECT_URL") or None


def migrate(url: str | None = None, *, to: str | None = None, allow_data_loss: bool = False,
            lock_timeout: float = LOCK_TIMEOUT, retries: int = LOCK_RETRIES,
            notify: Callable[[str], None] | None = None) -> list[str]:
    """Apply every pending migration (up to and including ``to``); return the names applied.

    Refuses (``DataLossError``, nothing applied) when a pending step drops a table or
    column holding data, unless ``allow_data_loss``. On PostgreSQL each DDL lock is
    waited for at most ``lock_timeout`` seconds; a run that timed out is rolled back and
    tried again ``retries`` times with backoff (an online migration retries the one
    statement). ``notify`` hears what is about to hold writers up (a SQLite rebuild).
    """
    if to is not None and to not in {p.stem for p in migrations_dir().glob("[0-9]*.py")}:
        raise MigrationError(f"--to {to}: no such migration")
    applied: list[str] = []
    with online.use_settings(lock_timeout=lock_timeout, retries=retries):
        while to is None or to not in applied:
            batch, concurrent = _retrying_locks(
                lambda: _migrate_batch(url, allow_data_loss, lock_timeout, to, notify),
                retries)
            applied += batch
            if concurrent is None:
                break
            if _run_outside_transaction(url, concurrent, downgrade=False):
                applied.append(concurrent)
    return applied


def rollback(url: str | None = None, count: int = 1, *, allow_data_loss: bool = False,
             lock_timeout: float = LOCK_TIMEOUT, retries: int = LOCK_RETRIES) -> list[str]:
    """Roll back the last ``count`` applied migrations; return their names, newest first.

    Refuses (``DataLossError``, nothing rolled back) when a rollback step drops a table
    or column holding data (the rollback of a migration that created it), unless
    ``allow_data_loss``.
    """
    if count < 1:
        raise MigrationError(f"count must be at least 1, not {count}")
    undone: list[str] = []
    with online.use_settings(lock_timeout=lock_timeout, retries=retries):
        while len(undone) < count:
            left = count - len(undone)

            def one_batch(left: int = left) -> tuple[list[str], str | None]:
                return _rollback_batch(url, left, lock_timeout, allow_data_loss)

            batch, concurrent = _retrying_locks(one_batch, retries)
            undone += batch
            if concurrent is None:
                break
            if _run_outside_transaction(url, concurrent, downgrade=True):
                undone.append(concurrent)
    return undone


def _migrate_batch(url: str | None, allow_data_loss: bool, lock_timeout: float,
                   to: str | None = None, notify: Callable[[str], None] | None = None,
                   ) -> tuple[list[str], str | None]:
    """Apply pending migrations in one transaction, up to a CONCURRENTLY one (or ``to``)."""
    with _locked(url, lock_timeout) as database:
        router = _router(database)
        migrator, done = router.migrator, list[str]()
        for name in router.diff:
            if to is not None and to in done:
                break
            defaults = column_defaults(migrator)
            ops = queue(router.read, migrator, database, name)
            lost = data_loss(database, ops, name, defaults)
            if lost and not allow_data_loss:
                raise DataLossError(lost)
            if _concurrent(ops, name, database):
                if not allow_data_loss:  # refuse now, before the online one runs
                    _check_the_rest(router, migrator, database, name, to)
                return done, name
            _announce_rebuilds(database, ops, name, notify)
            _run(migrator, name)
            router.model.create(name=name)
            done.append(name)
        return done, None


def _check_the_rest(router: Router, migrator: Migrator, database: peewee.Database,
                    after: str, to: str | None) -> None:
    """Refuse (DataLossError) if a migration pending after ``after`` drops data: an
    online migration commits on its own, so the run must not start it and then stop."""
    names = list(router.diff)
    for name in names[names.index(after) + 1:]:
        migrator.__ops__ = []
        defaults = column_defaults(migrator)
        lost = data_loss(database, queue(router.read, migrator, database, name), name,
                         defaults)
        if lost:
            raise DataLossError(lost)
        if name == to:
            break


def _rollback_batch(url: str | None, count: int, lock_timeout: float,
                    allow_data_loss: bool = False) -> tuple[list[str], str | None]:
    with _locked(url, lock_timeout) as database:
        router = _router(database)
        names = router.done[::-1]
        if len(names) < count:
            raise MigrationError(
                f"cannot roll back {count} migration(s): only {len(names)} applied")
        undone: list[str] = []
        for name in names[:count]:
            migrator = _state_before(router, database, name)
            defaults = column_defaults(migrator)
            ops = queue(router.read, migrator, database, name, downgrade=True)
            lost = data_loss(database, ops, f"rolling back {name}", defaults)
            if lost and not allow_data_loss:
                raise DataLossError(lost)
            if _concurrent(ops, name, database):
                if not allow_data_loss:
                    for older in names[names.index(name) + 1:count]:
                        before = _state_before(router, database, older)
                        lost = data_loss(database, queue(
                            router.read, before, database, older, downgrade=True),
                            f"rolling back {older}", column_defaults(before))
                        if lost:
                            raise DataLossError(lost)
                return undone, name
            _run(migrator, name, rolling_back=True)
            router.model.delete().where(router.model.name == name).execute()
            undone.append(name)
        return undone, None


def _run(migrator: Migrator, name: str, *, rolling_back: bool = False) -> None:
    """Run a migration's queued steps; a failure names the file and the database's own
    detail (the duplicate key, the violated CHECK). The run's transaction is rolled
    back: nothing changed, and the migration stays pending (or applied)."""
    try:
        migrator()
    except DataLayerError:
        raise
    except Exception as exc:
        what = "rolling back" if rolling_back else "applying"
        left = "still applied" if rolling_back else "still pending"
        raise MigrationError(
            f"{what} {name}.py failed: {database_detail(exc)} -- rolled back, nothing "
            f"changed; {name} is {left}") from exc


def database_detail(exc: BaseException) -> str:
    """Return the database's message with its DETAIL (PostgreSQL) on one line."""
    seen: BaseException | None = exc
    while seen is not None:
        diag = getattr(seen, "diag", None)
        if diag is not None and getattr(diag, "message_primary", None):
            detail = f" ({diag.message_detail.strip()})" if diag.message_detail else ""
            return f"{diag.message_primary}{detail}"
        seen = seen.__cause__ or seen.__context__
    return _one_line(str(exc)) or type(exc).__name__


def _state_before(router: Router, database: peewee.Database, name: str) -> Migrator:
    """Return a migrator holding the state up to and including ``name`` (fake replay)."""
    migrator = Migrator(database)
    for done in router.done:
        router.run_one(done, migrator, fake=True)
        if done == name:
            break
    return migrator


def _announce_rebuilds(database: peewee.Database, ops: list[Any], name: str,
                       notify: Callable[[str], None] | None) -> None:
    if notify is not None and isinstance(database, peewee.SqliteDatabase):
        tables = online.rebuilds(database, ops)
        if tables:
            notify(online.rebuild_notice(name, tables))


def _concurrent(ops: list[Any], name: str, database: peewee.Database) -> bool:
    if isinstance(database, peewee.SqliteDatabase):
        return False  # SQLite has no concurrent DDL: every step runs in the transaction
    try:
        concurrent = online.is_online(ops, name)
    except ValueError as exc:
        raise MigrationError(str(exc)) from exc
    return concurrent


def _run_outside_transaction(url: str | None, name: str, *, downgrade: bool) -> bool:
    """Run a CONCURRENTLY migration's statements one by one, then record it; return
    False when another run did it first.

    CREATE INDEX CONCURRENTLY cannot run in a transaction, so the transaction-level
    lock cannot cover it: a session-level advisory lock on the same key does, on this
    connection, from the check that the migration is still to do until it is recorded
    (other runs wait, then find it done). That needs a direct connection: behind a
    transaction-mode pooler the lock would be taken on one server connection and the
    statements sent on another.
    """
    with _connected(url) as database:
        raw: Any = database
        delay = 0.05
        try:  # polled, as in _locked: a waiting statement would block the index build
            while not raw.execute_sql("SELECT pg_try_advisory_lock(%s)",
                                      (LOCK_KEY,)).fetchone()[0]:
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
        except PoolerSafetyError as exc:
            raise MigrationError(
                f"{name} builds an index CONCURRENTLY, outside a transaction: run it on a "
                "direct connection (set DATABASE_DIRECT_URL), not through the pooler"
            ) from exc
        try:
            return _run_locked_outside(database, name, downgrade=downgrade)
        finally:
            raw.execute_sql("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def _run_locked_outside(database: peewee.Database, name: str, *, downgrade: bool) -> bool:
    router = _router(database)
    if (name in router.done) != downgrade:
        return False  # another run applied (or rolled back) it while this one waited
    migrator = _state_before(router, database, name) if downgrade else router.migrator
    ops = queue(router.read, migrator, database, name, downgrade=downgrade)
    try:
        online.run_online(database, ops)
    except Exception as exc:
        _clean_up_failed(router, database, name, ops, downgrade=downgrade)
        if sqlstate_of(exc) == "55P03":
            raise MigrationError(
                f"{name}: gave up after {online.settings.retries + 1} lock timeouts: a long "
                "transaction holds a lock the migration needs; end it or retry with a "
                "longer --lock-timeout. The migration is still pending; its finished "
                "steps are kept and are skipped when it runs again") from exc
        what = "rolling back" if downgrade else "applying"
        raise MigrationError(
            f"{what} {name}.py failed: {database_detail(exc)} -- {name} is still "
            f"{'applied' if downgrade else 'pending'}; an index it was building is dropped, "
            "its finished steps are kept and are skipped when it runs again") from exc
    with database.atomic():
        if downgrade:
            router.model.delete().where(router.model.name == name).execute()
        else:
            router.model.create(name=name)
    return True


def _clean_up_failed(router: Router, database: peewee.Database, name: str, ops: list[Any],
                     *, downgrade: bool) -> None:
    """Leave no INVALID index behind; undo an index-only migration altogether.

    An online migration's finished steps stay: each can run again, and undoing a
    half-done one (a column swapped, say) could lose data.
    """
    with contextlib.suppress(Exception):
        online.drop_invalid_indexes(database, ops)
    if downgrade or any(getattr(op, "datalayer_online", False) for op in ops):
        return
    raw: Any = database
    undo = _router(database).migrator
    for back in queue(router.read, undo, database, name, downgrade=True):
        with contextlib.suppress(Exception):
            raw.execute_sql("SET lock_timeout = 0")
            back.run()


def _retrying_locks(run: Callable[[], Any], retries: int) -> Any:
    delay = 0.5
    for attempt in range(retries + 1):
        try:
            return run()
        except MigrationError as exc:
            if sqlstate_of(exc) != "55P03" or attempt == retries:
                if sqlstate_of(exc) == "55P03":
                    raise MigrationError(
                        f"{exc} -- gave up after {retries + 1} lock timeouts: a long "
                        "transaction holds a lock the migration needs; end it or retry "
                        "with a longer --lock-timeout") from exc
                raise
            time.sleep(delay)
            delay = min(delay * 2, 8.0)
    raise AssertionError("unreachable")


def status(url: str | None = None) -> tuple[list[str], list[str]]:
    """Return the applied and the pending migration names (changes nothing)."""
    with _connected(url) as database:
        return _status(database, _router(database, strict=False))


def schema_drift(url: str | None = None) -> list[str]:
    """Return the differences between the models and the migrated schema, one per line.

    Raises ``PendingMigrationsError`` when migrations are left to apply.
    """
    from datalayer.evolve.makemigrations import pending_changes
    from datalayer.models import find_models

    with _connected(url) as database:
        router = _router(database)
        _, pending = _status(database, router)
        if pending:
            raise PendingMigrationsError(
                f"{len(pending)} pending migration(s) ({', '.join(pending)}): "
                "run `datalayer migrate` first")
        problems = [
            "models and migrations differ (run `datalayer makemigrations`): " + change
            for change in pending_changes(migrations_dir(), database)
        ]
        return problems + schema_differences(database, find_models())


def _status(database: peewee.Database, router: Router) -> tuple[list[str], list[str]]:
    done = router.done if database.table_exists(router.migrate_table) else []
    applied = set(done)
    return done, [name for name in router.todo if name not in applied]


def _router(database: peewee.Database, *, strict: bool = True) -> Router:
    install_fixes()
    router = Router(database, migrate_dir=migrations_dir(), migrate_table=MIGRATE_TABLE)
    if strict and database.table_exists(router.migrate_table):
        # peewee_migrate replays every applied migration from its file; name the problem.
        unknown = sorted(set(router.done) - set(router.todo))
        if unknown:
            raise MigrationError(
                f"the database has migration(s) this datalayer does not ship: "
                f"{', '.join(unknown)} (was it migrated by a newer release?)")
    return router


def _in_memory(url: str | None) -> peewee.Database | None:
    """The database ``init_db()`` opened when it is an in-memory SQLite one and ``url`` names
    it (or is None): a second connection would open a second, empty database."""
    handle = db.obj
    if not isinstance(handle, peewee.SqliteDatabase) or handle.database != ":memory:":
        return None
    if url is None or resolve_url(url) in ("sqlite:///:memory:", "sqlite://:memory:"):
        return handle
    return None


@contextmanager
def _connected(url: str | None) -> Iterator[peewee.Database]:
    shared = _in_memory(url)
    if shared is not None:  # migrate on init_db()'s own connection; it stays open
        # Its first statement would warn that the schema is behind: that is why we are here.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=SchemaBehindWarning)
            try:
                yield shared
            except peewee.PeeweeException as exc:
                raise MigrationError(f"database error: {_first_line(exc)}") from exc
        return
    database = build_database(resolve_url(url))
    try:
        database.connect()
    except Exception as exc:  # the driver's own error types vary; all mean "no database"
        raise MigrationError(
            f"cannot connect to the database ({_describe(database)}): {_first_line(exc)}"
        ) from exc
    try:
        yield database
    except DataLayerError:
        raise
    except peewee.PeeweeException as exc:
        raise MigrationError(f"database error: {_first_line(exc)}") from exc
    finally:
        database.close()


@contextmanager
def _locked(url: str | None, lock_timeout: float = LOCK_TIMEOUT) -> Iterator[peewee.Database]:
    """Hold the migration lock for one transaction around the whole run."""
    with _connected(url) as database:
        if isinstance(database, peewee.SqliteDatabase):
            with _sqlite_foreign_keys_off(database), database.atomic():  # BEGIN IMMEDIATE
                yield database
                _foreign_key_check(database)
            return
        # READ COMMITTED whatever the server default: once the lock is ours, the next
        # statement must see the history a previous holder committed.
        raw: Any = database  # peewee's stubs leave execute_sql untyped
        delay = 0.05
        while True:
            with database.atomic(isolation_level="READ COMMITTED"):
                # Polled, not waited for: a run waiting inside a transaction would block
                # another run's CREATE INDEX CONCURRENTLY, which waits for every open
                # transaction (a deadlock).
                if raw.execute_sql("SELECT pg_try_advisory_xact_lock(%s)",
                                   (LOCK_KEY,)).fetchone()[0]:
                    # A DDL lock queued behind a long transaction would block every
                    # query on that table: wait for it at most lock_timeout.
                    raw.execute_sql("SELECT set_config('lock_timeout', %s, true)",
                                    (f"{int(lock_timeout * 1000)}ms",))
                    yield database
                    return
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


@contextmanager
def _sqlite_foreign_keys_off(database: Any) -> Iterator[None]:
    """SQLite's ALTER TABLE procedure: rebuilding a table must not cascade its DROP.

    With foreign keys on, peewee's rebuild (create, copy, DROP, rename) deletes every
    row referencing the table. The pragma is a no-op inside a transaction, so it is set
    before BEGIN; ``_foreign_key_check`` runs before the COMMIT instead. (The legacy
    RENAME a rebuild needs is set around every migrator run by ``steps.install_fixes``.)
    """
    database.execute_sql("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        database.execute_sql("PRAGMA foreign_keys = ON")


def _foreign_key_check(database: Any) -> None:
    rows = database.execute_sql("PRAGMA foreign_key_check").fetchall()
    if rows:
        listed = ", ".join(f"{r[0]} rowid {r[1]} -> {r[2]}" for r in rows[:5])
        raise MigrationError(f"the migration leaves {len(rows)} row(s) whose foreign key "
                             f"points nowhere ({listed}); rolled back, nothing changed")


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).replace("( ", "(").replace(" )", ")").strip()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _describe(database: peewee.Database) -> str:
    """Name the database without its password."""
    if isinstance(database, peewee.SqliteDatabase):
        return f"sqlite file {database.database}"
    params = database.connect_params
    host = params.get("host", "localhost")
    port = f":{params['port']}" if params.get("port") else ""
    return f"postgresql {params.get('user', '')}@{host}{port}/{database.database}"
