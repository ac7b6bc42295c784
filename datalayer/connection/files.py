"""The embedded SQLite file: created readable and writable by its owner only."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["PrivateSqliteMixin", "private_sqlite_file"]


def private_sqlite_file(database: str) -> None:
    """Create the SQLite file 0600 (whatever the umask) before SQLite opens it.

    SQLite creates the ``-wal`` and ``-shm`` files with the main file's mode, so
    session tokens stored in any of them are readable by their owner only. An existing
    file keeps its mode; ``:memory:`` and ``file:`` URIs are left to SQLite.
    """
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        fd = os.open(database, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError:
        return  # no such folder, no right to write: SQLite reports it in its own words
    try:
        os.fchmod(fd, 0o600)  # os.open's mode is masked by the umask; this is not
    finally:
        os.close(fd)


class PrivateSqliteMixin:
    """SQLite files readable and writable by their owner only (``private_sqlite_file``)."""

    def _connect(self) -> Any:
        private_sqlite_file(self.database)  # type: ignore[attr-defined]
        return super()._connect()  # type: ignore[misc]
