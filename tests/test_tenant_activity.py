"""TenantActivityQueries on both backends."""

from __future__ import annotations

import datetime as dt

import pytest
from factories import make_tenant

from datalayer import NotFoundError, TenantActivityQueries, ValidationError
from datalayer.models import TenantActivityDaily, utcnow

pytestmark = pytest.mark.usefixtures("txn")

Activity = TenantActivityQueries
DAY = dt.date(2030, 5, 17)


def test_record_inserts_then_increments() -> None:
    tenant = make_tenant()
    first = Activity.record(tenant.id, day=DAY)
    assert set(first) == {
        "id",
        "tenant_id",
        "date",
        "active_users",
        "event_count",
        "new_members",
        "created_at",
        "updated_at",
    }
    assert (first["tenant_id"], first["date"], first["event_count"]) == (tenant.id, "2030-05-17", 1)
    assert (first["active_users"], first["new_members"]) == (0, 0)
    second = Activity.record(tenant.id, day=DAY, events=4, active_users=2, new_members=1)
    assert second["id"] == first["id"]
    assert (second["event_count"], second["active_users"], second["new_members"]) == (5, 2, 1)
    assert second["updated_at"] >= first["updated_at"]
    assert TenantActivityDaily.select().where(TenantActivityDaily.tenant == tenant.id).count() == 1


def test_record_defaults_to_today_utc() -> None:
    tenant = make_tenant()
    before = utcnow().date()
    row = Activity.record(tenant.id)
    assert row["date"] in {before.isoformat(), utcnow().date().isoformat()}
    assert Activity.record(tenant.id, day="2030-05-17")["date"] == "2030-05-17"


def test_record_refusals_write_nothing() -> None:
    tenant = make_tenant()
    for kwargs, field in [
        ({"events": -1}, "events"),  # named by record()'s arguments
        ({"active_users": -2}, "active_users"),
        ({"new_members": 1.5}, "new_members"),
        ({"events": True}, "events"),
        ({"events": 2**31}, "events"),
        ({"day": dt.datetime(2030, 1, 1, tzinfo=dt.UTC)}, "day"),
        ({"day": "yesterday"}, "day"),
    ]:
        with pytest.raises(ValidationError) as info:
            Activity.record(tenant.id, **kwargs)
        assert field in info.value.messages
    with pytest.raises(NotFoundError):
        Activity.record("no-such-tenant", day=DAY)
    assert TenantActivityDaily.select().count() == 0


def test_list_range_is_inclusive_ordered_and_scoped() -> None:
    tenant, other = make_tenant(), make_tenant()
    for offset in (3, 0, 1, 5, -1):
        Activity.record(tenant.id, day=DAY + dt.timedelta(days=offset), events=offset + 10)
    Activity.record(other.id, day=DAY)
    rows = Activity.list_range(tenant.id, start=DAY, end=DAY + dt.timedelta(days=3))
    assert [r["date"] for r in rows] == ["2030-05-17", "2030-05-18", "2030-05-20"]
    assert [r["event_count"] for r in rows] == [10, 11, 13]
    assert all(r["tenant_id"] == tenant.id for r in rows)
    assert Activity.list_range(tenant.id, start=DAY, end=DAY)[0]["event_count"] == 10
    assert (
        Activity.list_range(tenant.id, start=DAY + dt.timedelta(days=6), end=DAY + dt.timedelta(days=9)) == []
    )
    with pytest.raises(ValidationError) as info:
        Activity.list_range(tenant.id, start=DAY, end=DAY - dt.timedelta(days=1))
    assert "end" in info.value.messages
    with pytest.raises(ValidationError) as info:
        Activity.list_range(tenant.id, start="not a date", end=DAY)  # type: ignore[arg-type]
    assert "start" in info.value.messages
