"""The notification flags in force for a user: shared by ``PreferenceQueries.resolve`` and
``NotificationQueries.notify``."""

from __future__ import annotations

from typing import Any

from datalayer.models import NotificationPreference
from datalayer.queries.base import read
from datalayer.schemas.notifications import (
    DEFAULT_PREFERENCES,
    PREFERENCE_FLAGS,
    ResolvedNotificationPreferenceDTO,
)

Pref = NotificationPreference


def resolve_preferences(user_id: str, tenant_id: str | None) -> ResolvedNotificationPreferenceDTO:
    """Return the flags in force for the user (in ``tenant_id``), in one query; ids checked."""
    scope = Pref.tenant.is_null()
    if tenant_id is not None:
        scope = scope | (Pref.tenant == tenant_id)
    flags = [getattr(Pref, name) for name in PREFERENCE_FLAGS]
    # The tenant's row sorts before the global one: (tenant_id IS NULL) is false for it.
    query: Any = (
        Pref.select(Pref.tenant, *flags)
        .where((Pref.user == user_id) & scope)
        .order_by(Pref.tenant.is_null())
        .limit(1)
        .tuples()
    )
    with read():
        row = next(iter(query), None)
    if row is None:
        values, source = dict(DEFAULT_PREFERENCES), "default"
    else:
        values = {name: bool(v) for name, v in zip(PREFERENCE_FLAGS, row[1:], strict=True)}
        source = "global" if row[0] is None else "tenant"
    # The flags are spread from PREFERENCE_FLAGS: keys mypy cannot see in a dict[str, bool].
    return {"user_id": user_id, "tenant_id": tenant_id, **values, "source": source}  # type: ignore[typeddict-item]  # see above


__all__ = ["resolve_preferences"]
