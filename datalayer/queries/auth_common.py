"""Helpers the auth query modules share."""

from __future__ import annotations

import datetime as dt
from typing import Any

import peewee

from datalayer.schemas.base import Dumper, require


def check_text(name: str, value: Any) -> str:
    """Validate a non-empty string argument such as a token, a provider id or an email."""
    return require(  # type: ignore[no-any-return]
        name,
        value,
        lambda v: isinstance(v, str) and 0 < len(v) <= 8192 and "\x00" not in v,
        "Must be a non-empty string.",
    )


def returning_row(query: Any, dumper: Dumper) -> dict[str, Any] | None:
    """Run a write with ``RETURNING`` the dumper's columns; dump its first row, or None."""
    # Read every row: an unfinished cursor would keep SQLite's statement open.
    rows = list(query.returning(*dumper.fields).tuples().execute())
    return dumper.row(rows[0]) if rows else None


def stamp(field: peewee.Field, value: dt.datetime) -> peewee.Value:
    """Wrap a timestamp for use inside an SQL expression, stored as ``field`` stores it."""
    return peewee.Value(value, converter=field.db_value)
