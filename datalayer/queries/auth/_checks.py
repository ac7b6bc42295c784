"""Helpers the auth query modules share."""

from __future__ import annotations

from typing import Any

from datalayer.schemas.base import require


def check_text(name: str, value: Any) -> str:
    """Validate a non-empty string argument such as a token, a provider id or an email."""
    return require(  # type: ignore[no-any-return]
        name,
        value,
        lambda v: isinstance(v, str) and 0 < len(v) <= 8192 and "\x00" not in v,
        "Must be a non-empty string.",
    )
