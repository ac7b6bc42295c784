"""Where the migrations are: shared by ``migrate`` and ``makemigrations`` (neither imports
the other for it)."""

from __future__ import annotations

from pathlib import Path

from datalayer.connection.schema_version import shipped_folder
from datalayer.errors import MigrationError

__all__ = ["migrations_dir", "unshipped_migrations"]


def migrations_dir() -> Path:
    """Return the folder holding the migrations.

    Run from a checkout (an editable install, or the source tree on ``sys.path``), it is
    the checkout's ``migrations/``, where ``makemigrations`` writes; installed from a
    wheel, it is the shipped ``datalayer.migrations``. (The rule lives in the connection
    layer, whose once-per-process check compares the database with the same folder.)
    """
    folder = shipped_folder()
    if folder is None:
        raise MigrationError("cannot find the migrations: datalayer.migrations is not installed")
    return folder


def unshipped_migrations(folder: Path | None = None) -> list[str]:
    """Return migrations in ``folder`` (default: ./migrations) this datalayer does not run.

    The install trap: a checkout installed with ``pip install .`` runs the migrations
    copied into site-packages at install time, not the ones written since.
    """
    folder = folder or Path.cwd() / "migrations"
    shipped = migrations_dir()
    if not folder.is_dir() or folder.resolve() == shipped.resolve():
        return []
    names = {p.stem for p in shipped.glob("[0-9][0-9][0-9]_*.py")}
    return sorted(p.stem for p in folder.glob("[0-9][0-9][0-9]_*.py") if p.stem not in names)
