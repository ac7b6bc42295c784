"""Every change kind round-trips on a seeded database: generated, applied, checked clean,
generated again to nothing, rolled back and applied again, with every table's rows
counted and every untouched table's content checksummed at each step.

Each case edits a copy of the checkout's models (as test_day_two.py does) and runs the
whole cycle through ``tests/change_kinds_driver.py`` in one subprocess. The seeded
database is built once per module and copied per case (PostgreSQL: CREATE DATABASE ...
TEMPLATE; SQLite: a file copy). py311 envs only (DATALAYER_TEST_WORKFLOWS).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import IS_PG, create_pg_database, db_name, drop_pg_database, pg_direct_url

from datalayer.connection.database import build_database

REPO_ROOT = Path(__file__).resolve().parents[1]
DRIVER = Path(__file__).with_name("change_kinds_driver.py")
pytestmark = pytest.mark.skipif(
    os.environ.get("DATALAYER_TEST_WORKFLOWS", "1") == "0",
    reason="the change-kind matrix runs in the py311 envs (tox.ini: DATALAYER_TEST_WORKFLOWS)")
CYCLE = [["snapshot"], ["migrate"], ["snapshot"], ["check"], ["makemigrations", "again"],
         ["rollback"], ["snapshot"], ["migrate"], ["snapshot"], ["check"]]


def _cli(url: str, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_DIRECT_URL",
                                                             "DATABASE_URL"}}
    env["PYTHONPATH"] = str(REPO_ROOT)
    result = subprocess.run([sys.executable, "-m", "datalayer.cli", *args, "--database", url],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated and seeded database per module, copied by each case."""
    if IS_PG:
        name = create_pg_database()
        url = pg_direct_url(name)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('seeded') / 'seeded.sqlite3'}"
    try:
        _cli(url, "migrate")
        _cli(url, "seed", "--tenants", "2", "--users-per-tenant", "3", "--todos-per-user", "3",
             "--notifications-per-user", "2", "--waitlist", "20", "--admins", "2")
        yield url
    finally:
        if IS_PG:
            drop_pg_database(name)


class Checkout:
    """A copy of the source tree whose models a case edits, with its own database."""

    def __init__(self, root: Path, url: str) -> None:
        self.root, self.url = root, url

    def edit(self, relative: str, old: str, new: str) -> None:
        path = self.root / relative
        text = path.read_text()
        assert text.count(old) == 1, f"{old!r} in {relative}"
        path.write_text(text.replace(old, new))

    def steps(self, *steps: list[str]) -> list[dict[str, Any]]:
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_DIRECT_URL",
                                                                 "DATABASE_URL"}}
        env["PYTHONPATH"] = str(self.root)
        result = subprocess.run([sys.executable, str(DRIVER), self.url, json.dumps(steps)],
                                cwd=self.root, env=env, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr
        return list(json.loads(result.stdout))

    def source(self, name: str) -> str:
        return next((self.root / "migrations").glob(f"[0-9]*_{name}.py")).read_text()

    def migrations(self) -> list[str]:
        return sorted(p.name for p in (self.root / "migrations").glob("[0-9]*.py"))

    def sql(self, statement: str) -> list[tuple[Any, ...]]:
        database = build_database(self.url)
        database.connect()
        try:
            with database.atomic():
                cursor = database.execute_sql(statement)
                return [tuple(r) for r in cursor.fetchall()] if cursor.description else []
        finally:
            database.close()


@pytest.fixture
def checkout(seeded: str, tmp_path: Path) -> Iterator[Checkout]:
    root = tmp_path / "checkout"
    ignore = shutil.ignore_patterns("__pycache__", "*.sqlite3*")
    shutil.copytree(REPO_ROOT / "datalayer", root / "datalayer", ignore=ignore)
    shutil.copytree(REPO_ROOT / "migrations", root / "migrations", ignore=ignore)
    shutil.copy(REPO_ROOT / "setup.cfg", root / "setup.cfg")
    if IS_PG:
        name = create_pg_database(db_name(seeded))
        try:
            yield Checkout(root, pg_direct_url(name))
        finally:
            drop_pg_database(name)
    else:
        target = tmp_path / f"db_{uuid.uuid4().hex[:8]}.sqlite3"
        shutil.copy(seeded.removeprefix("sqlite:///"), target)
        yield Checkout(root, f"sqlite:///{target}")


def ok(result: dict[str, Any]) -> str:
    assert result["exit"] == 0, result
    return str(result["output"])


def cycle(checkout: Checkout, name: str, touched: set[str], *args: str,
          restored: bool = True) -> str:
    """Generate ``name``, then migrate, check, generate again, roll back, migrate again;
    return the generated source. Rows are counted at every step; every table not in
    ``touched`` keeps its content; with ``restored`` the touched ones get theirs back
    on rollback."""
    results = checkout.steps(["makemigrations", name, *args], *CYCLE)
    made, before, applied, after, checked, again, back, rolled, reapplied, after2, checked2 \
        = results
    assert "Wrote" in ok(made), made
    ok(applied), ok(back), ok(reapplied)
    assert "matches the models" in ok(checked) and "matches the models" in ok(checked2)
    assert "No changes" in ok(again), again
    for snap in (after, rolled, after2):
        assert snap["counts"] == before["counts"]
        for table, digest in before["checksums"].items():
            if table not in touched:
                assert snap["checksums"][table] == digest, table
    if restored:
        assert rolled["checksums"] == before["checksums"]
    return checkout.source(name)


def test_int_to_bigint(checkout: Checkout) -> None:
    checkout.edit("datalayer/models/features.py",
                  "    event_count = pw.IntegerField(default=0, constraints=[ZERO])",
                  "    event_count = pw.BigIntegerField(default=0, constraints=[ZERO])")
    source = cycle(checkout, "event_count_bigint", {"user_activity_daily"})
    assert "alter_column(migrator, 'user_activity_daily', 'event_count', pw.BigIntegerField(" \
        in source
    if IS_PG:
        assert checkout.sql("SELECT data_type FROM information_schema.columns WHERE "
                            "table_name = 'user_activity_daily' AND column_name = "
                            "'event_count'") == [("bigint",)]


def test_varchar_widened_keeps_its_unique_index(checkout: Checkout) -> None:
    checkout.edit("datalayer/models/features.py",
                  "    email = pw.CharField(max_length=255, unique=True)",
                  "    email = pw.CharField(max_length=500, unique=True)")
    source = cycle(checkout, "waitlist_email_500", {"waitlist"})
    assert "max_length=500, unique=True" in source
    assert "drop_index" not in source and "add_index" not in source
    duplicate = checkout.sql("SELECT email FROM waitlist LIMIT 1")[0][0]
    with pytest.raises(Exception, match="(?i)unique"):
        checkout.sql(f"INSERT INTO waitlist (id, email) VALUES ('w-dup', '{duplicate}')")
