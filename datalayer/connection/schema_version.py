"""Is the database behind the installed migrations? Checked once per process and database.

``init_db()`` marks the database it binds; the first connection it opens runs one
``SELECT name FROM migratehistory`` and compares the names with the migration files this
datalayer ships. When some are missing it warns once — a ``UserWarning`` pointing at the
caller's line and a WARNING record on the ``datalayer.connection`` logger — naming
``datalayer migrate``. Later connections, later ``init_db()`` calls on the same database
and forked children ask nothing more.

This sits below ``evolve`` (which runs the migrations) and imports none of it: the
shipped names are read from the files, as ``datalayer.evolve.paths`` finds them.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
import warnings
from pathlib import Path
from types import FrameType
from typing import Any

from datalayer.connection.sql_log import timed

__all__ = ["MIGRATE_TABLE", "SchemaBehindWarning", "check_once", "pending_names",
           "shipped_folder", "shipped_names"]

# peewee_migrate's bookkeeping table (peewee_migrate.models.MIGRATE_TABLE).
MIGRATE_TABLE = "migratehistory"

logger = logging.getLogger("datalayer.connection")

_checked: set[str] = set()
_lock = threading.Lock()


class SchemaBehindWarning(UserWarning):
    """The database lacks migrations this datalayer ships: run ``datalayer migrate``."""


def shipped_folder() -> Path | None:
    """Return the folder of the migrations this datalayer runs (None: not found).

    From a checkout (an editable install, or the source tree on ``sys.path``) it is the
    checkout's ``migrations/``; installed from a wheel, the shipped ``datalayer.migrations``.
    """
    root = Path(__file__).resolve().parents[2]
    if (root / "setup.cfg").is_file() and (root / "migrations" / "__init__.py").is_file():
        return root / "migrations"
    spec = importlib.util.find_spec("datalayer.migrations")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if Path(location).is_dir():
            return Path(location)
    source_tree = root / "migrations"
    return source_tree if source_tree.is_dir() else None


def shipped_names() -> list[str]:
    """Return the names of the shipped migrations, in order (``001_initial``, …)."""
    folder = shipped_folder()
    if folder is None:
        return []
    return sorted(path.stem for path in folder.glob("[0-9][0-9][0-9]_*.py"))


def pending_names(database: Any) -> list[str]:
    """Return the shipped migrations ``database`` has not applied (one query)."""
    sql = f'SELECT name FROM "{MIGRATE_TABLE}"'

    def run() -> list[Any]:
        # A cursor of its own: in the SQL log, but not among the statements that the
        # application's query hooks count (it is the library's, not theirs).
        cursor = database.cursor()
        try:
            cursor.execute(sql)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    try:
        rows = timed(sql, run, log=getattr(database, "log_sql", False),
                     slow_ms=getattr(database, "slow_query_ms", None))
        applied = {row[0] for row in rows}
    except Exception:  # noqa: BLE001 - no bookkeeping table: nothing applied yet
        applied = set()
    return [name for name in shipped_names() if name not in applied]


def check_once(database: Any, key: str) -> None:
    """Warn if ``database`` is behind, the first time ``key`` is seen in this process."""
    with _lock:
        if key in _checked:
            return
        _checked.add(key)
    try:
        pending = pending_names(database)
    except Exception:  # noqa: BLE001 - a check must never break the caller's connection
        return
    if not pending:
        return
    message = (f"the database {key} is {len(pending)} migration(s) behind this datalayer "
               f"({', '.join(pending)} not applied): run `datalayer migrate`")
    logger.warning(message)
    warnings.warn(message, SchemaBehindWarning, stacklevel=_caller_level())


def _caller_level() -> int:
    """The stack level of the first frame outside datalayer, peewee and playhouse."""
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not module.startswith(("datalayer.", "peewee", "playhouse")):
            return level
        frame, level = frame.f_back, level + 1
    return 1
