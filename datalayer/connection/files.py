"""The embedded SQLite file: created readable and writable by its owner only."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import peewee

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


if TYPE_CHECKING:
    # For the type checker the mixin is the SqliteDatabase it is mixed into; at run
    # time a plain class, before it in the MRO.
    _Sqlite = peewee.SqliteDatabase
else:
    _Sqlite = object


class PrivateSqliteMixin(_Sqlite):
    """SQLite files readable and writable by their owner only (``private_sqlite_file``)."""

    def _connect(self) -> Any:
        private_sqlite_file(self.database)
        return super()._connect()  # type: ignore[misc]  # peewee's private hook, not in its stubs
