"""The ``datalayer`` command: the root group in ``main``, one module per command group."""

from __future__ import annotations

from datalayer.cli.main import main

__all__ = ["main"]
