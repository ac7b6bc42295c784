"""The dict results are TypedDicts whose keys are exactly what the functions return, so a
user's mypy catches a misspelled key (issue 26): stats(), export()."""

from __future__ import annotations

import pytest

from datalayer import DeliveryQueries, DeliveryStats, UserExport, UserQueries

pytestmark = pytest.mark.usefixtures("txn")


def _keys(typed_dict: type) -> set[str]:
    return set(typed_dict.__required_keys__) | set(typed_dict.__optional_keys__)


def test_stats_returns_exactly_the_delivery_stats_keys() -> None:
    stats = DeliveryQueries.stats()
    assert set(stats) == _keys(DeliveryStats)
    assert set(stats["by_status"]) == {"pending", "processing", "sent", "failed", "skipped"}


def test_export_returns_exactly_the_user_export_keys() -> None:
    user = UserQueries.create({"name": "Ada", "email": "ada@example.com"})
    exported = UserQueries.export(user["id"])
    assert set(exported) == _keys(UserExport)
    assert exported["user"] == [user]
