"""Where the migrations are: shared by ``migrate`` and ``makemigrations`` (neither imports
the other for it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from datalayer.errors import MigrationError

__all__ = ["migrations_dir", "unshipped_migrations"]


def migrations_dir() -> Path:
    """Return the folder holding the migrations.

    Run from a checkout (an editable install, or the source tree on ``sys.path``), it is
    the checkout's ``migrations/``, where ``makemigrations`` writes; installed from a
    wheel, it is the shipped ``datalayer.migrations``.
    """
    root = Path(__file__).resolve().parents[2]
    if (root / "setup.cfg").is_file() and (root / "migrations" / "__init__.py").is_file():
        return root / "migrations"
    spec = importlib.util.find_spec("datalayer.migrations")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if Path(location).is_dir():
            return Path(location)
    source_tree = Path(__file__).resolve().parents[2] / "migrations"
    if source_tree.is_dir():
        return source_tree
    raise MigrationError("cannot find the migrations: datalayer.migrations is not installed")


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
