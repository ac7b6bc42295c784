"""Argument validation the auth query modules share."""

from __future__ import annotations

from typing import Any

from datalayer import arguments


def required_text(name: str, value: Any) -> str:
    """Validate a non-empty string argument such as a token, a provider id or an email."""
    return arguments.text(name, value, min_length=1, max_length=8192)
