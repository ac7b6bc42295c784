"""``pw_migrate create --auto`` writes what ``datalayer makemigrations`` writes.

peewee_migrate's own generator drops server defaults and renames indexes, so a migration
it writes leaves ``datalayer check`` failing. ``migrations/conf.py`` (which pw_migrate
runs before anything else with ``--directory migrations``) calls ``route_create_auto``:
a ``create --auto`` in the project's migrations folder then runs ``datalayer
makemigrations NAME`` instead, with its questions, refusals and output.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from datalayer.errors import DataLayerError
from datalayer.evolve.paths import migrations_dir

__all__ = ["route_create_auto"]


def route_create_auto() -> None:
    """Route ``Router.create(name, auto=...)`` in the migrations folder to makemigrations
    (other folders, and ``create`` without ``--auto``, keep peewee_migrate's own).
    Idempotent."""
    from peewee_migrate.router import BaseRouter

    original = BaseRouter.create
    if getattr(original, "_datalayer_routed", False):
        return

    def create(self: Any, name: str = "auto", *, auto: Any = False) -> str | None:
        folder = getattr(self, "migrate_dir", None)
        if not auto or folder is None or \
                Path(folder).resolve() != migrations_dir().resolve():
            return original(self, name, auto=auto)
        return _makemigrations(name)

    create._datalayer_routed = True  # type: ignore[attr-defined]  # marks the patch
    BaseRouter.create = create  # type: ignore[method-assign]  # peewee_migrate's, patched


def _makemigrations(name: str) -> str | None:
    from datalayer.evolve.makemigrations import makemigrations_command

    try:
        makemigrations_command.main([name], standalone_mode=False)
    except (DataLayerError, click.ClickException) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    written = sorted(migrations_dir().glob(f"[0-9][0-9][0-9]_{name}.py"))
    return written[-1].stem if written else None
