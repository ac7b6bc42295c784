"""DTOs of the admin domain."""

from __future__ import annotations

__all__: list[str] = []
