"""Adopt a PostgreSQL database made by the original TypeScript package.

One transaction, under the migration lock (``pg_advisory_xact_lock(LOCK_KEY)``):

1. recognise the database (``adopt.original``); refuse anything else, say "already
   adopted" when datalayer manages it already;
2. lock the original tables against writers (EXCLUSIVE: readers go on);
3. build the library's schema by running its own migrations into a scratch schema
   (``datalayer_adopt``, via ``search_path``), so the target is exactly what
   ``datalayer migrate`` builds, ``migratehistory`` included;
4. fill each target table with one ``INSERT ... SELECT`` from its original
   (``adopt.plan``, ``adopt.rules``), checking the row count of each;
5. drop the original tables, move everything from the scratch schema into ``public``,
   ``ANALYZE``. Drizzle's ``drizzle.__drizzle_migrations`` stays as it was.

Any error rolls the whole transaction back: the database is left exactly as it was.
``dry_run`` runs steps 1, 3 and 4 (in a REPEATABLE READ snapshot, without locking the
original tables) and rolls back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

import peewee
from peewee_migrate import Router
from peewee_migrate.models import MIGRATE_TABLE

from datalayer.adopt import catalog
from datalayer.adopt.original import ORIGINAL_TABLES, recognise
from datalayer.adopt.plan import SCRATCH, Plan, build_plan
from datalayer.adopt.report import AdoptReport, Progress, StepResult
from datalayer.connection.database import build_database
from datalayer.errors import AdoptError, AdoptRefused, DataLayerError, sqlstate
from datalayer.evolve.migrate import LOCK_KEY, migrations_dir, resolve_url, status
from datalayer.evolve.steps import install_index_fix, is_concurrent, queue
from datalayer.migration_ops import CONCURRENTLY

__all__ = ["AdoptError", "AdoptRefused", "AdoptReport", "Progress", "StepResult", "adopt"]

LOCK_TIMEOUT = 60.0  # seconds
MAINTENANCE_WORK_MEM = "256MB"  # for this transaction only

_UTC_NAMES = {"utc", "etc/utc", "gmt", "etc/gmt", "uct", "etc/uct", "zulu", "etc/zulu",
              "universal", "etc/universal", "gmt0", "etc/gmt0", "greenwich"}


class _Quiet:
    def start(self, label: str) -> None:
        pass

    def done(self, result: StepResult) -> None:
        pass


def adopt(url: str | None = None, *, dry_run: bool = False, progress: Progress | None = None,
          lock_timeout: float = LOCK_TIMEOUT) -> AdoptReport:
    """Convert the original package's database at ``url`` to the library's schema.

    ``lock_timeout``: seconds to wait for a table lock (the old application's open
    transactions) before giving up, with nothing changed.
    """
    database = build_database(resolve_url(url))
    if not getattr(database, "is_pg", False):
        raise AdoptRefused(
            "refused: adopt converts a PostgreSQL database made by the TypeScript package "
            f"(which ran on PostgreSQL only); {database.database} is SQLite. Nothing was written.")
    try:
        database.connect()
    except Exception as exc:  # the driver's own error types vary; all mean "no database"
        raise AdoptError(f"cannot connect to the database: {_first_line(exc)}") from exc
    run = _Run(database, progress or _Quiet(), lock_timeout)
    try:
        level = "REPEATABLE READ" if dry_run else "READ COMMITTED"
        with database.atomic(isolation_level=level) as transaction:
            report = run.adopt(dry_run)
            if dry_run:
                transaction.rollback()
    except DataLayerError:
        raise
    except Exception as exc:
        if sqlstate(exc) == "55P03":
            raise AdoptError(
                f"adopt gave up while {run.current}: a lock was not granted within "
                f"{lock_timeout:g} s -- stop the old application (or end its open "
                "transactions) and run adopt again; nothing was changed") from exc
        raise AdoptError(
            f"adopt failed while {run.current or 'starting'}: {_first_line(exc)} -- nothing "
            "was changed (adoption is one transaction, rolled back)") from exc
    finally:
        database.close()
    if report.already_adopted:
        report.pending = status(url)[1]
    return report


class _Run:
    def __init__(self, database: peewee.Database, progress: Progress,
                 lock_timeout: float) -> None:
        self.db: Any = database  # peewee's execute_sql is untyped
        self.lock_timeout = lock_timeout
        self.progress = progress
        self.current = ""
        self.report: AdoptReport | None = None
        self.search_path = ""
        self.rebuild: list[str] = []

    def sql(self, sql: str, params: Any = None) -> Any:
        return self.db.execute_sql(sql, params)

    def run(self, sql: str) -> None:
        self.db.execute_sql(sql)

    def step(self, label: str, action: Callable[[], int | None]) -> int | None:
        self.current = label
        self.progress.start(label)
        began = time.perf_counter()
        rows = action()
        result = StepResult(label, time.perf_counter() - began, rows)
        assert self.report is not None
        self.report.steps.append(result)
        self.progress.done(result)
        self.current = ""
        return rows

    def adopt(self, dry_run: bool) -> AdoptReport:
        self.current = "taking the migration lock"
        self.sql("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        self.sql("SELECT set_config('lock_timeout', %s, true)",
                 (f"{max(1, int(self.lock_timeout * 1000))}ms",))
        # Index builds after the bulk load sort in memory (as pg_restore advises); never lowered.
        self.sql("SELECT set_config('maintenance_work_mem', %s, true) WHERE pg_size_bytes("
                 "current_setting('maintenance_work_mem')) < pg_size_bytes(%s)",
                 (MAINTENANCE_WORK_MEM, MAINTENANCE_WORK_MEM))
        self.current = "recognising the database"
        found = recognise(self.db)
        report = self.report = AdoptReport(found.description, found.variant, dry_run=dry_run,
                                           other_tables=found.other_tables)
        if found.variant == "adopted":
            return report
        report.warnings += self._timezone_warning()
        extras = catalog.dropped_with(self.db, "public", list(ORIGINAL_TABLES))
        if extras:
            report.warnings.append(
                "the original tables carry things the package does not make, which go with "
                f"them and are not re-created: {', '.join(extras)}")
        originals = ", ".join(catalog.qualified("public", t) for t in ORIGINAL_TABLES)
        if not dry_run:
            self.step("lock the original tables (waits for open transactions)",
                      lambda: self.run(f"LOCK TABLE {originals} IN EXCLUSIVE MODE"))
        self.step("build the target schema with the library's migrations", self._build_target)
        plan = self._plan(found.variant)
        tables = [copy.table for copy in plan.copies] + plan.created_empty
        self.step("drop the new tables' keys and indexes for the bulk load",
                  lambda: self._detach(tables))
        for copy in plan.copies:
            expected = report.rows_after[copy.table]
            self.step(f"copy {copy.table}", partial(self._copy, copy.sql, copy.table, expected))
        self.step("rebuild keys and indexes, check foreign keys", self._rebuild)
        if dry_run:
            return report
        # who may use the tables now (besides their owner) may use the new ones too
        privileges = catalog.grants(self.db, "public", [t for t in tables if t in ORIGINAL_TABLES])
        self.step(f"drop the {len(ORIGINAL_TABLES)} original tables",
                  lambda: self.run(f"DROP TABLE {originals}"))
        self.step("move the new tables into public", self._move)
        self.step("grant the original tables' privileges to the new ones",
                  partial(self._each, privileges))
        self.step("analyze the new tables", lambda: self._analyze(plan))
        return report

    def _timezone_warning(self) -> list[str]:
        zone = self.sql("SELECT current_setting('TimeZone')").fetchone()[0]
        if zone.lower() in _UTC_NAMES:
            return []
        return [f"the TimeZone setting is {zone}, not UTC: values the original stored "
                "through now() defaults (rows inserted without that column) hold that zone's "
                "wall-clock time, yet adopt reads every timestamp as UTC (see the README)"]

    def _build_target(self) -> None:
        if self.sql("SELECT to_regnamespace(%s)", (SCRATCH,)).fetchone()[0] is not None:
            raise AdoptError(f"a schema named {SCRATCH} exists already: adopt builds the new "
                             "tables there; drop or rename it first")
        self.search_path = self.sql("SELECT current_setting('search_path')").fetchone()[0]
        self.sql(f"CREATE SCHEMA {catalog.ident(SCRATCH)}")
        self.sql(f"SET LOCAL search_path TO {catalog.ident(SCRATCH)}")
        install_index_fix()
        router = Router(self.db, migrate_dir=migrations_dir(), migrate_table=MIGRATE_TABLE)
        migrator = router.migrator
        assert self.report is not None
        for name in router.diff:  # as datalayer migrate runs them, into empty new tables
            ops = queue(router.read, migrator, self.db, name)
            if is_concurrent(ops, name):  # nothing reads these tables yet: no need to
                for op in ops:  # build the index CONCURRENTLY (nor can it, in a transaction)
                    op.args = (CONCURRENTLY.sub("", op.args[0]), *op.args[1:])
            migrator()
            router.model.create(name=name)
            self.report.migrations.append(name)

    def _plan(self, variant: str) -> Plan:
        self.current = "planning"
        report = self.report
        assert report is not None
        targets = catalog.columns(self.db, SCRATCH)
        targets.pop(MIGRATE_TABLE, None)
        taken = sorted(set(catalog.columns(self.db, "public")) & set(targets)
                       - set(ORIGINAL_TABLES))
        if taken:
            raise AdoptError(f"public already has table(s) named like the library's: "
                             f"{', '.join(taken)}; rename or drop them first")
        order = catalog.dependency_order(self.db, SCRATCH, sorted(targets))
        plan = build_plan(variant, catalog.columns(self.db, "public"), targets, order)
        self.current = "counting the rows"
        counts = " UNION ALL ".join(
            f"SELECT {i}, count(*) FROM {catalog.qualified('public', t)}"
            for i, t in enumerate(ORIGINAL_TABLES))
        for i, n in self.sql(counts).fetchall():
            report.rows_before[ORIGINAL_TABLES[i]] = n
        for copy in plan.copies:
            report.rows_after[copy.table] = self.sql(copy.rows_sql).fetchone()[0]
            if copy.notes:
                report.notes[copy.table] = copy.notes
        full = [t for t in plan.dropped_if_empty if report.rows_before[t]]
        if full:
            raise AdoptError(
                "the library's schema has no table for "
                + ", ".join(f"{t} ({report.rows_before[t]} rows)" for t in full)
                + ": adopting would lose those rows (a newer datalayer may have the table)")
        self.current = "counting the rows each rule changes"
        for fix in plan.fixes:
            report.fixes.append((fix.table, fix.description, self.sql(fix.count_sql).fetchone()[0]))
        report.defaulted = plan.defaulted
        report.created_empty = plan.created_empty
        report.dropped_empty = plan.dropped_if_empty
        return plan

    def _detach(self, tables: list[str]) -> None:
        self.rebuild = catalog.detach_keys(self.db, SCRATCH, tables)

    def _rebuild(self) -> None:
        for statement in self.rebuild:
            self.current = f"rebuilding ({statement})"
            self.db.execute_sql(statement)

    def _each(self, statements: list[str]) -> int:
        for statement in statements:
            self.db.execute_sql(statement)
        return len(statements)

    def _copy(self, sql: str, table: str, expected: int) -> int:
        written = int(self.sql(sql).rowcount)
        if written != expected:
            raise AdoptError(f"{table}: wrote {written} rows, expected {expected}")
        return written

    def _move(self) -> int:
        moved = catalog.move_all(self.db, SCRATCH, "public")
        self.sql("SELECT set_config('search_path', %s, true)", (self.search_path,))
        return moved

    def _analyze(self, plan: Plan) -> None:
        for table in [c.table for c in plan.copies] + plan.created_empty + [MIGRATE_TABLE]:
            self.sql(f"ANALYZE {catalog.qualified('public', table)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
