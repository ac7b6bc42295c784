"""Queries of the tenant domain."""

from __future__ import annotations

__all__: list[str] = []
