"""Queries of the auth domain."""

from __future__ import annotations

__all__: list[str] = []
