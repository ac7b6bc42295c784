"""Helpers the tests share: the backend, scratch databases, one race helper, a statement counter.

Fixtures live in ``conftest.py``; everything a test imports by name lives here.

With ``DATALAYER_TEST_PGBOUNCER=1`` (PostgreSQL), every URL handed to the library goes
through a private PgBouncer in transaction mode with ``?pooler=transaction`` (the
library's guards on); creating, cloning and dropping databases stays direct.
``direct_url(url)`` gives the direct URL for tests that need a session of their own.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psycopg2
import pytest
from pgbouncer import PgBouncer

from datalayer import db

BACKEND = os.environ.get("DATALAYER_TEST_BACKEND", "sqlite")
PG_ADMIN_URL = os.environ.get(
    "DATALAYER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IS_PG = BACKEND == "postgres"
PGBOUNCER = IS_PG and os.environ.get("DATALAYER_TEST_PGBOUNCER", "") == "1"
# The app role env (tox py311-approle): the library connects as this least-privilege role
# (``datalayer grant-app-role``); migrations and database admin stay with the owner.
APP_ROLE = os.environ.get("DATALAYER_TEST_APP_ROLE", "") if IS_PG else ""

postgres_only = pytest.mark.skipif(not IS_PG, reason="needs PostgreSQL (DATALAYER_TEST_BACKEND)")
SQUAWK_CONFIG = Path(__file__).resolve().parents[1] / ".squawk.toml"  # the project's rules

REPO_ROOT = Path(__file__).resolve().parents[1]


def copy_checkout(root: Path) -> Path:
    """Copy the package, the migrations and setup.cfg to ``root``: a checkout whose models
    a test edits and runs ``datalayer`` in (``PYTHONPATH`` puts it first)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.sqlite3*")
    shutil.copytree(REPO_ROOT / "datalayer", root / "datalayer", ignore=ignore)
    shutil.copytree(REPO_ROOT / "migrations", root / "migrations", ignore=ignore)
    shutil.copy(REPO_ROOT / "setup.cfg", root / "setup.cfg")
    return root


# -- URLs and databases ------------------------------------------------------------------


def pg_direct_url(name: str) -> str:
    """Return the direct URL of database ``name`` on the test server."""
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def pg_url(name: str) -> str:
    """Return the URL the library uses for database ``name`` (through PgBouncer if asked)."""
    if PGBOUNCER:
        return get_pgbouncer().url(name, pooler="transaction")
    if APP_ROLE:
        return as_role(pg_direct_url(name), APP_ROLE)
    return pg_direct_url(name)


def as_role(url: str, role: str) -> str:
    """Return ``url`` connecting as ``role`` (no password: the test server trusts local roles)."""
    parsed = urlparse(url)
    host = parsed.hostname or "127.0.0.1"
    netloc = f"{role}@{host}" + (f":{parsed.port}" if parsed.port else "")
    return parsed._replace(netloc=netloc).geturl()


def db_name(url: str) -> str:
    """Return the database name of a PostgreSQL URL."""
    return urlparse(url).path.lstrip("/")


def direct_url(url: str) -> str:
    """Return the direct (no PgBouncer, no pooler guards) URL of a test database."""
    return pg_direct_url(db_name(url)) if IS_PG else url


_pgbouncer: PgBouncer | None = None


def get_pgbouncer() -> PgBouncer:
    """Return the suite's PgBouncer in front of the test server, started on first use."""
    global _pgbouncer
    if _pgbouncer is None:
        _pgbouncer = PgBouncer(PG_ADMIN_URL, pool_size=3).start()
        atexit.register(_pgbouncer.stop)  # also when no test ran to stop it
    return _pgbouncer


def stop_pgbouncer() -> None:
    """Stop the suite's PgBouncer if one was started (the library's connection first)."""
    if _pgbouncer is not None:
        disconnect()
        _pgbouncer.stop()


def _admin(sql: str) -> None:
    conn = psycopg2.connect(PG_ADMIN_URL)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def create_pg_database(template: str | None = None) -> str:
    """Create an empty (or cloned) PostgreSQL database with a unique name; return its name."""
    name = f"dltest_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return name


def drop_pg_database(name: str) -> None:
    """Drop a test database, disconnecting whoever still uses it."""
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def scratch_database(tmp_path: Path) -> Iterator[str]:
    """Yield the (direct) URL of a new, empty database of the caller's own; drop it after."""
    if not IS_PG:
        yield f"sqlite:///{tmp_path / f'scratch_{uuid.uuid4().hex[:8]}.sqlite3'}"
        return
    name = create_pg_database()
    try:
        yield pg_direct_url(name)
    finally:
        drop_pg_database(name)


def disconnect() -> None:
    """Close this thread's connection of ``db``, if it is bound."""
    if db.obj is not None:
        db.close()


def build_schema(url: str) -> None:
    """Build the schema the way users do: by running the migrations."""
    from datalayer.evolve.migrate import migrate

    if APP_ROLE:  # the owner migrates, then grants the app role what it may do
        from datalayer.evolve.roles import grant_app_role

        migrate(pg_direct_url(db_name(url)))
        grant_app_role(pg_direct_url(db_name(url)), APP_ROLE)
        return
    migrate(url)


# -- squawk ------------------------------------------------------------------------------


def squawk(path: Path, statements: list[str], *, exempt: Collection[str] = ()) -> str:
    """Lint ``statements`` (written to ``path``) with squawk under the project's rules
    (.squawk.toml) and the rules in ``exempt``; return squawk's complaints, "" if none."""
    # On PATH, or beside this Python (a venv used without activating it).
    binary = shutil.which("squawk") or str(Path(sys.executable).with_name("squawk"))
    assert Path(binary).exists(), "squawk (PyPI squawk-cli) is in the test extra"
    # --exclude would replace the config's excluded_rules: exempt the file from its own.
    header = f"-- squawk-ignore-file {', '.join(sorted(exempt))}\n" if exempt else ""
    path.write_text(header + "".join(f"{s.rstrip().rstrip(';')};\n" for s in statements))
    result = subprocess.run([binary, "--config", str(SQUAWK_CONFIG), "--reporter", "gcc",
                             str(path)], capture_output=True, text=True)
    if not result.returncode:
        return ""
    lines = path.read_text().splitlines()
    report = []  # each complaint, then the line of SQL it is about
    for complaint in (result.stdout + result.stderr).splitlines():
        report.append(complaint)
        number = complaint.split(":")[1] if complaint.count(":") > 2 else ""
        if number.isdigit() and int(number) < len(lines):  # gcc's lines count from 0
            report.append(f"    {lines[int(number)][:300]}")
    return "\n".join(report)


# -- Races -------------------------------------------------------------------------------


def race(
    worker: Callable[[int], Any], threads: int = 8, *, capture: bool = False
) -> list[Any]:
    """Run ``worker(i)`` in ``threads`` threads released together; return results in order.

    Each thread connects first (peewee connections are thread-local), so the barrier
    releases statements, not connection set-ups. With ``capture=True`` an exception is
    that thread's result; otherwise the first one is raised here, in the test's thread.
    """
    barrier = threading.Barrier(threads)
    results: list[Any] = [None] * threads
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            db.connect(reuse_if_open=True)
            barrier.wait(timeout=30)
            results[i] = worker(i)
        except threading.BrokenBarrierError as exc:
            errors.append(exc)
        except BaseException as exc:  # reported below, in the test's thread
            if capture and isinstance(exc, Exception):
                results[i] = exc
            else:
                errors.append(exc)
                barrier.abort()
        finally:
            db.close()

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in pool), "a worker hung"
    real = [e for e in errors if not isinstance(e, threading.BrokenBarrierError)]
    if real or errors:
        raise (real or errors)[0]
    return results


# -- Counting statements -----------------------------------------------------------------


class QueryCounter:
    """Counts statements sent through ``db`` while active."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    @property
    def count(self) -> int:
        return len(self.statements)

    def __call__(self, event: Any) -> None:  # peewee query hook
        self.statements.append(event.sql)
