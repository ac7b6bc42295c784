"""AccountQueries and JwksQueries on both backends."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from factories import make_user

from datalayer import (
    AccountQueries,
    ConflictError,
    JwksQueries,
    NotFoundError,
    ValidationError,
)
from datalayer.models import Account, Jwks
from datalayer.schemas.auth import AccountDTO, JwksDTO

pytestmark = pytest.mark.usefixtures("txn")

T0 = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
SECRETS = {"password", "access_token", "refresh_token", "id_token", "private_key"}


def _accounts() -> int:
    return Account.select().count()


def _keys() -> int:
    return Jwks.select().count()


# --- accounts ---------------------------------------------------------------------------


def test_link_and_find_never_dump_secrets() -> None:
    user = make_user()
    account = AccountQueries.link(
        user.id,
        {
            "provider_id": "github",
            "account_id": "gh-42",
            "access_token": "gho_secret",
            "refresh_token": "r",
            "id_token": "i",
            "scope": "read:user",
            "access_token_expires_at": (T0 + HOUR).isoformat(),
        },
    )
    assert set(account) == set(AccountDTO.__annotations__) and not SECRETS & set(account)
    assert account["user_id"] == user.id and account["scope"] == "read:user"
    assert account["access_token_expires_at"] == (T0 + HOUR).isoformat()
    assert AccountQueries.find_by_provider("github", "gh-42") == account
    assert AccountQueries.find_by_provider("github", "gh-43") is None
    assert AccountQueries.find_by_provider("google", "gh-42") is None
    stored = Account.get_by_id(account["id"])
    assert stored.access_token == "gho_secret"  # stored, just never dumped
    local = AccountQueries.link(
        user.id, {"provider_id": "credential", "account_id": user.id, "password": "scrypt$hash"}
    )
    assert Account.get_by_id(local["id"]).password == "scrypt$hash"


# (data, the field the ValidationError names); "OTHER" stands for another user's id.
LINK_REFUSALS = [
    ({"account_id": "x"}, "provider_id"),
    ({"provider_id": "google"}, "account_id"),
    ({"provider_id": "google", "account_id": ""}, "account_id"),
    ({"provider_id": "google", "account_id": "x", "user_id": "OTHER"}, "user_id"),
    ({"provider_id": "google", "account_id": "x", "id": "mine"}, "id"),
    (
        {"provider_id": "google", "account_id": "x", "refresh_token_expires_at": "2030-01-01T00:00:00"},
        "refresh_token_expires_at",
    ),
]


@pytest.mark.parametrize(("data", "field"), LINK_REFUSALS)
def test_a_refused_link_names_the_field_and_writes_nothing(data: dict[str, Any], field: str) -> None:
    user, other = make_user(), make_user()
    data = {k: other.id if v == "OTHER" else v for k, v in data.items()}
    before = _accounts()
    with pytest.raises(ValidationError) as info:
        AccountQueries.link(user.id, data)
    assert field in info.value.messages, (data, info.value.messages)
    assert _accounts() == before


def test_link_refusals_write_nothing() -> None:
    user, other = make_user(), make_user()
    AccountQueries.link(user.id, {"provider_id": "google", "account_id": "g-1"})
    before = _accounts()
    with pytest.raises(ConflictError):
        AccountQueries.link(other.id, {"provider_id": "google", "account_id": "g-1"})
    with pytest.raises(NotFoundError):
        AccountQueries.link("no-such-user", {"provider_id": "google", "account_id": "g-2"})
    with pytest.raises(ValidationError) as info:
        AccountQueries.link("", {"provider_id": "google", "account_id": "x"})
    assert "user_id" in info.value.messages
    assert _accounts() == before


def test_list_for_user_and_unlink() -> None:
    user, other = make_user(), make_user()
    a = AccountQueries.link(user.id, {"provider_id": "github", "account_id": "1"})
    b = AccountQueries.link(user.id, {"provider_id": "google", "account_id": "2"})
    AccountQueries.link(other.id, {"provider_id": "github", "account_id": "3"})
    assert [x["id"] for x in AccountQueries.list_for_user(user.id)] == [a["id"], b["id"]]
    assert AccountQueries.unlink(other.id, "google") is False  # not theirs
    assert AccountQueries.unlink(user.id, "github") is True
    assert AccountQueries.unlink(user.id, "github") is False
    assert AccountQueries.list_for_user(user.id) == [b]
    assert len(AccountQueries.list_for_user(other.id)) == 1
    assert AccountQueries.list_for_user("no-such-user") == []
    with pytest.raises(ValidationError):
        AccountQueries.unlink(user.id, "")
    with pytest.raises(ValidationError):
        AccountQueries.list_for_user("")
    with pytest.raises(ValidationError):
        AccountQueries.find_by_provider("github", None)  # type: ignore[arg-type]


def test_list_for_user_costs_one_query(query_counter) -> None:
    user = make_user()
    AccountQueries.link(user.id, {"provider_id": "p", "account_id": "0"})
    query_counter.statements.clear()
    assert len(AccountQueries.list_for_user(user.id)) == 1
    one = query_counter.count
    for i in range(1, 100):
        Account.create(user=user, provider_id="p", account_id=str(i))
    query_counter.statements.clear()
    assert len(AccountQueries.list_for_user(user.id)) == 100
    assert query_counter.count == one == 1


# --- signing keys -----------------------------------------------------------------------


def test_jwks_create_and_list_valid() -> None:
    forever = JwksQueries.create(public_key="pub-a", private_key="priv-a")
    assert set(forever) == set(JwksDTO.__annotations__) and "private_key" not in forever
    assert forever["expires_at"] is None
    short = JwksQueries.create(public_key="pub-b", private_key="priv-b", expires_at=T0 + HOUR)
    gone = JwksQueries.create(public_key="pub-c", private_key="priv-c", expires_at=T0)
    valid = JwksQueries.list_valid(now=T0)
    assert [k["id"] for k in valid] == [short["id"], forever["id"]]  # newest first
    assert gone["id"] not in [k["id"] for k in valid]
    assert all("private_key" not in k for k in valid)
    assert [k["id"] for k in JwksQueries.list_valid(now=T0 + HOUR)] == [forever["id"]]
    assert Jwks.get_by_id(forever["id"]).private_key == "priv-a"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("", "priv"), "public_key"),
        (("pub", ""), "private_key"),
        (("pub", None), "private_key"),
        (("pub", "priv", dt.datetime(2030, 1, 1)), "expires_at"),
    ],
)
def test_a_refused_jwks_create_names_the_field_and_writes_nothing(
    args: tuple[Any, ...], field: str
) -> None:
    before = _keys()
    with pytest.raises(ValidationError) as info:
        JwksQueries.create(**dict(zip(("public_key", "private_key", "expires_at"), args, strict=False)))
    assert field in info.value.messages
    assert _keys() == before


def test_list_valid_refuses_a_naive_now() -> None:
    before = _keys()
    with pytest.raises(ValidationError):
        JwksQueries.list_valid(now=dt.datetime(2030, 1, 1))
    assert _keys() == before


def test_rotate_expires_older_keys_after_the_grace() -> None:
    forever = JwksQueries.create(public_key="pub-1", private_key="priv-1")
    late = JwksQueries.create(public_key="pub-2", private_key="priv-2", expires_at=T0 + 10 * HOUR)
    early = JwksQueries.create(public_key="pub-3", private_key="priv-3", expires_at=T0 + dt.timedelta(minutes=5))
    new = JwksQueries.rotate(public_key="pub-new", private_key="priv-new", grace_seconds=3600, now=T0)
    assert new["expires_at"] is None and new["created_at"] == T0.isoformat()
    assert "private_key" not in new
    expiry = {k.id: k.expires_at for k in Jwks.select()}
    assert expiry[forever["id"]] == expiry[late["id"]] == T0 + HOUR
    assert expiry[early["id"]] == T0 + dt.timedelta(minutes=5)  # never extended
    assert Jwks.get_by_id(new["id"]).private_key == "priv-new"
    within = [k["id"] for k in JwksQueries.list_valid(now=T0 + dt.timedelta(minutes=30))]
    assert within[0] == new["id"] and set(within) == {new["id"], forever["id"], late["id"]}
    assert [k["id"] for k in JwksQueries.list_valid(now=T0 + HOUR)] == [new["id"]]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("pub", "priv", -1), "grace_seconds"),
        (("pub", "priv", "3600"), "grace_seconds"),
        (("pub", "priv", True), "grace_seconds"),
        (("pub", "priv", float("inf")), "grace_seconds"),
        (("", "priv", 60), "public_key"),
        (("pub", "", 60), "private_key"),
    ],
)
def test_a_refused_rotate_names_the_field_and_writes_nothing(
    args: tuple[Any, ...], field: str
) -> None:
    JwksQueries.create(public_key="pub", private_key="priv")
    before = _keys()
    public_key, private_key, grace_seconds = args
    with pytest.raises(ValidationError) as info:
        JwksQueries.rotate(
            public_key=public_key, private_key=private_key, grace_seconds=grace_seconds, now=T0
        )
    assert field in info.value.messages
    assert _keys() == before


def test_rotate_refuses_a_naive_now_and_writes_nothing() -> None:
    old = JwksQueries.create(public_key="pub", private_key="priv")
    before = _keys()
    with pytest.raises(ValidationError):
        JwksQueries.rotate(public_key="pub", private_key="priv", grace_seconds=60, now=dt.datetime(2030, 1, 1))
    assert _keys() == before
    assert Jwks.get_by_id(old["id"]).expires_at is None  # the old key was not touched


def test_rotate_with_zero_grace_and_the_clock() -> None:
    old = JwksQueries.create(public_key="pub", private_key="priv")
    new = JwksQueries.rotate(public_key="pub2", private_key="priv2", grace_seconds=0)
    assert [k["id"] for k in JwksQueries.list_valid()] == [new["id"]]
    assert Jwks.get_by_id(old["id"]).expires_at is not None


def test_list_valid_costs_one_query(query_counter) -> None:
    JwksQueries.create(public_key="p", private_key="k")
    query_counter.statements.clear()
    assert len(JwksQueries.list_valid()) == 1
    one = query_counter.count
    for i in range(99):
        Jwks.create(public_key=f"p{i}", private_key="k")
    query_counter.statements.clear()
    assert len(JwksQueries.list_valid()) == 100
    assert query_counter.count == one == 1
