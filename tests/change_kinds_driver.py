"""Run ``datalayer`` commands in one process, with snapshots of the rows between them.

tests/test_change_kinds.py starts this in a copy of the checkout whose models it edited
(``PYTHONPATH`` puts the copy first), so each change kind costs one interpreter start,
not one per command. argv[1] is the database URL, argv[2] a JSON list of steps: a
command's arguments (``["migrate"]``), or ``["snapshot"]``. It prints a JSON list of
results: ``{"exit", "output"}`` per command, ``{"counts", "checksums"}`` per snapshot.
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

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


def run(url: str, steps: list[list[str]]) -> list[dict[str, Any]]:
    """Run each step; return its result."""
    runner = CliRunner()
    results: list[dict[str, Any]] = []
    for step in steps:
        if step == ["snapshot"]:
            results.append(snapshot(url))
            continue
        outcome = runner.invoke(main, [*step, "--database", url] if step[0] != "makemigrations"
                                else step, catch_exceptions=True)
        output = outcome.output + (f"\n{outcome.exception!r}" if outcome.exception and
                                   not isinstance(outcome.exception, SystemExit) else "")
        results.append({"step": step, "exit": outcome.exit_code, "output": output})
    return results


if __name__ == "__main__":
    json.dump(run(sys.argv[1], json.loads(sys.argv[2])), sys.stdout)
