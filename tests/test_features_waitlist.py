"""WaitlistQueries on both backends."""

from __future__ import annotations

import pytest

from datalayer import ValidationError, WaitlistQueries, atomic
from datalayer.models import Waitlist

pytestmark = pytest.mark.usefixtures("txn")

BAD_EMAILS = [
    None,
    42,
    "",
    "   ",
    "not-an-email",
    "two@@example.com",
    "a\x00b@example.com",
    "x" * 250 + "@example.com",  # 262 characters: over the 255 limit
]


def test_join_normalizes_and_is_idempotent_in_any_case() -> None:
    entry, created = WaitlistQueries.join("  Ada.Lovelace@Example.COM ")
    assert created is True
    assert entry["email"] == "ada.lovelace@example.com"
    assert set(entry) == {"id", "email", "created_at"}
    assert entry["created_at"].endswith("+00:00")
    again, created_again = WaitlistQueries.join("ADA.LOVELACE@example.com")
    assert created_again is False
    assert again == entry
    assert Waitlist.select().count() == 1


def test_join_inside_a_callers_transaction_rolls_back_with_it() -> None:
    with atomic() as transaction:
        WaitlistQueries.join("rolled@example.com")
        assert WaitlistQueries.exists("rolled@example.com")
        transaction.rollback()
    assert not WaitlistQueries.exists("rolled@example.com")


@pytest.mark.parametrize("bad", BAD_EMAILS, ids=repr)
def test_join_rejects_invalid_addresses_and_writes_nothing(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        WaitlistQueries.join(bad)  # type: ignore[arg-type]
    assert "email" in info.value.messages
    assert Waitlist.select().count() == 0


@pytest.mark.parametrize(
    "call",
    [WaitlistQueries.find_by_email, WaitlistQueries.exists, WaitlistQueries.remove],
    ids=lambda f: f.__name__,
)
@pytest.mark.parametrize("bad", ["not-an-email", None, "x" * 250 + "@example.com"])
def test_lookups_validate_the_address(call, bad) -> None:
    with pytest.raises(ValidationError) as info:
        call(bad)
    assert "email" in info.value.messages


def test_find_exists_remove_count_in_any_case() -> None:
    entry, _ = WaitlistQueries.join("grace@example.com")
    WaitlistQueries.join("alan@example.com")
    assert WaitlistQueries.find_by_email(" GRACE@Example.com") == entry
    assert WaitlistQueries.find_by_email("nobody@example.com") is None
    assert WaitlistQueries.exists("Grace@Example.com") is True
    assert WaitlistQueries.exists("nobody@example.com") is False
    assert WaitlistQueries.count() == 2
    assert WaitlistQueries.remove("GRACE@example.com") is True
    assert WaitlistQueries.remove("grace@example.com") is False
    assert WaitlistQueries.find_by_email("grace@example.com") is None
    assert WaitlistQueries.count() == 1
    _, created = WaitlistQueries.join("grace@example.com")
    assert created is True


def test_list_pages_newest_first() -> None:
    joined = [WaitlistQueries.join(f"person{i}@example.com")[0] for i in range(7)]
    seen, cursor = [], None
    while True:
        page = WaitlistQueries.list(limit=3, cursor=cursor)
        assert len(page["items"]) <= 3
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(joined))
    assert WaitlistQueries.list()["items"] == seen


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"limit": 0}, "limit"), ({"limit": "5"}, "limit"), ({"cursor": "garbage!"}, "cursor")],
)
def test_list_rejects_bad_page_arguments(kwargs, field) -> None:
    with pytest.raises(ValidationError) as info:
        WaitlistQueries.list(**kwargs)
    assert field in info.value.messages


def test_list_costs_constant_queries(query_counter) -> None:
    WaitlistQueries.join("first@example.com")
    query_counter.statements.clear()
    assert len(WaitlistQueries.list()["items"]) == 1
    one = query_counter.count
    Waitlist.insert_many([{"email": f"bulk{i}@example.com"} for i in range(99)]).execute()
    query_counter.statements.clear()
    assert len(WaitlistQueries.list(limit=100)["items"]) == 100
    assert query_counter.count == one == 1
