"""Run ``datalayer`` commands in one process, with snapshots of the rows between them.

tests/test_change_kinds.py starts this in a copy of the checkout whose models it edited
(``PYTHONPATH`` puts the copy first), so each change kind costs one interpreter start,
not one per command. argv[1] is the database URL, argv[2] a JSON list of steps: a
command's arguments (``["migrate"]``), or ``["snapshot"]``. It prints a JSON list of
results: ``{"step", "exit", "output"}`` per command, ``{"counts", "checksums"}`` per
snapshot. A ``migrate`` or ``rollback`` result also has ``"ddl"``: every CREATE, ALTER
and DROP it sent (but the migration history's), for the squawk lint.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import peewee as pw
from click.testing import CliRunner

from datalayer.cli.main import main
from datalayer.connection.database import build_database


def snapshot(url: str) -> dict[str, Any]:
    """Count every table's rows and checksum its content (order-free)."""
    database = build_database(url)
    database.connect()
    try:
        counts, checksums = {}, {}
        for table in database.get_tables():
            if table == "migratehistory":
                continue
            rows = database.execute_sql(f'SELECT * FROM "{table}"').fetchall()
            counts[table] = len(rows)
            digest = hashlib.sha256("\n".join(sorted(repr(tuple(r)) for r in rows)).encode())
            checksums[table] = digest.hexdigest()
        return {"counts": counts, "checksums": checksums}
    finally:
        database.close()


@contextmanager
def recording_ddl() -> Iterator[list[str]]:
    """Collect the schema changes sent through peewee while the block runs."""
    statements: list[str] = []
    original: Any = pw.Database.execute_sql  # peewee's stubs leave it untyped

    def recording(self: Any, sql: str, params: Any = None) -> Any:
        words = sql.split(None, 1)
        if words and words[0].upper() in {"CREATE", "ALTER", "DROP"} \
                and "migratehistory" not in sql:
            statements.append(self.cursor().mogrify(sql, params).decode()  # as sent
                              if params and isinstance(self, pw.PostgresqlDatabase) else sql)
        return original(self, sql, params)

    pw.Database.execute_sql = recording  # type: ignore[method-assign]
    try:
        yield statements
    finally:
        pw.Database.execute_sql = original  # type: ignore[method-assign]


def run(url: str, steps: list[list[str]]) -> list[dict[str, Any]]:
    """Run each step; return its result."""
    runner = CliRunner()
    results: list[dict[str, Any]] = []
    made = 1  # the files the last makemigrations wrote: "{made}" in a step stands for it
    for step in steps:
        if step == ["snapshot"]:
            results.append(snapshot(url))
            continue
        step = [str(made) if arg == "{made}" else arg for arg in step]
        with recording_ddl() as ddl:
            outcome = runner.invoke(main, [*step, "--database", url]
                                    if step[0] != "makemigrations" else step,
                                    catch_exceptions=True)
        output = outcome.output + (f"\n{outcome.exception!r}" if outcome.exception and
                                   not isinstance(outcome.exception, SystemExit) else "")
        result = {"step": step, "exit": outcome.exit_code, "output": output}
        wrote = sum(line.startswith("Wrote ") for line in output.splitlines())
        if step[0] == "makemigrations" and wrote:  # ("again" writes none)
            made = wrote
        if step[0] in {"migrate", "rollback"}:
            result["ddl"] = ddl
        results.append(result)
    return results


if __name__ == "__main__":
    json.dump(run(sys.argv[1], json.loads(sys.argv[2])), sys.stdout)
