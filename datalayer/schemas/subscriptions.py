"""DTOs of the subscriptions domain."""

from __future__ import annotations

__all__: list[str] = []
