"""SessionQueries and VerificationQueries on both backends."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from factories import make_user

from datalayer import (
    ConflictError,
    NotFoundError,
    SessionQueries,
    ValidationError,
    VerificationQueries,
)
from datalayer.models import Session, Verification
from datalayer.schemas.auth import SessionDTO, VerificationDTO

pytestmark = pytest.mark.usefixtures("txn")

T0 = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def _sessions() -> int:
    return Session.select().count()


def _verifications() -> int:
    return Verification.select().count()


# --- sessions ---------------------------------------------------------------------------


def test_session_create_and_find_valid_never_dumps_the_token() -> None:
    user = make_user()
    session = SessionQueries.create(user.id, token="tok-1", expires_at=T0 + HOUR, ip_address="10.0.0.1", user_agent="pytest")
    assert set(session) == set(SessionDTO.__annotations__) and "token" not in session
    assert session["user_id"] == user.id and session["ip_address"] == "10.0.0.1"
    assert session["expires_at"] == (T0 + HOUR).isoformat()
    assert SessionQueries.find_valid("tok-1", now=T0) == session
    assert SessionQueries.find_valid("tok-1", now=T0 + HOUR - dt.timedelta(microseconds=1)) == session
    assert SessionQueries.find_valid("tok-1", now=T0 + HOUR) is None  # expires_at <= now
    assert SessionQueries.find_valid("other", now=T0) is None
    plain = SessionQueries.create(user.id, token="tok-2", expires_at=T0 + HOUR)
    assert plain["ip_address"] is None and plain["user_agent"] is None


def test_find_valid_uses_the_clock_by_default() -> None:
    user = make_user()
    now = dt.datetime.now(dt.UTC)
    SessionQueries.create(user.id, token="live", expires_at=now + HOUR)
    SessionQueries.create(user.id, token="dead", expires_at=now - dt.timedelta(seconds=1))
    assert SessionQueries.find_valid("live") is not None
    assert SessionQueries.find_valid("dead") is None


def test_session_create_refusals_write_nothing() -> None:
    user = make_user()
    SessionQueries.create(user.id, token="taken", expires_at=T0)
    before = _sessions()
    with pytest.raises(ConflictError):
        SessionQueries.create(user.id, token="taken", expires_at=T0 + HOUR)
    with pytest.raises(NotFoundError):
        SessionQueries.create("no-such-user", token="fresh", expires_at=T0)
    assert _sessions() == before


# (user_id, token, expires_at[, ip_address]), the field named; "USER" is a real user's id.
@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("USER", "", T0), "token"),
        (("USER", None, T0), "token"),
        (("USER", "t\x00", T0), "token"),
        (("USER", "t", dt.datetime(2030, 1, 1)), "expires_at"),  # naive
        (("USER", "t", "soon"), "expires_at"),
        (("USER", "t", T0, 123), "ip_address"),
        (("", "t", T0), "user_id"),
    ],
)
def test_a_refused_session_create_names_the_field_and_writes_nothing(
    args: tuple[Any, ...], field: str
) -> None:
    user = make_user()
    before = _sessions()
    user_id, *options = args
    with pytest.raises(ValidationError) as info:
        SessionQueries.create(
            user.id if user_id == "USER" else user_id,
            **dict(zip(("token", "expires_at", "ip_address"), options, strict=False)),
        )
    assert field in info.value.messages, (args, info.value.messages)
    assert _sessions() == before


def test_find_valid_refuses_bad_arguments() -> None:
    with pytest.raises(ValidationError) as info:
        SessionQueries.find_valid("")
    assert "token" in info.value.messages
    with pytest.raises(ValidationError) as info:
        SessionQueries.find_valid("tok", now=dt.datetime(2030, 1, 1))
    assert "now" in info.value.messages


def test_revoke_and_revoke_all() -> None:
    user, other = make_user(), make_user()
    for i in range(3):
        SessionQueries.create(user.id, token=f"u{i}", expires_at=T0 + HOUR)
    SessionQueries.create(other.id, token="o0", expires_at=T0 + HOUR)
    assert SessionQueries.revoke("u0") is True
    assert SessionQueries.revoke("u0") is False
    assert SessionQueries.find_valid("u0", now=T0) is None
    assert SessionQueries.revoke_all_for_user(user.id) == 2
    assert SessionQueries.revoke_all_for_user(user.id) == 0
    assert SessionQueries.find_valid("o0", now=T0) is not None
    with pytest.raises(ValidationError):
        SessionQueries.revoke("")
    with pytest.raises(ValidationError):
        SessionQueries.revoke_all_for_user(None)  # type: ignore[arg-type]


def test_session_delete_expired() -> None:
    user = make_user()
    SessionQueries.create(user.id, token="old", expires_at=T0 - HOUR)
    SessionQueries.create(user.id, token="edge", expires_at=T0)
    SessionQueries.create(user.id, token="new", expires_at=T0 + HOUR)
    assert SessionQueries.delete_expired(now=T0) == 2
    assert SessionQueries.delete_expired(now=T0) == 0
    assert SessionQueries.find_valid("new", now=T0) is not None
    with pytest.raises(ValidationError):
        SessionQueries.delete_expired(now=dt.datetime(2030, 1, 1))


def test_sessions_go_with_their_user() -> None:
    user = make_user()
    SessionQueries.create(user.id, token="bye", expires_at=T0 + HOUR)
    user.delete_instance()
    assert SessionQueries.find_valid("bye", now=T0) is None


# --- verifications ----------------------------------------------------------------------


def test_verification_create_never_dumps_the_value() -> None:
    row = VerificationQueries.create("email:a@example.com", "123456", expires_at=T0 + HOUR)
    assert set(row) == set(VerificationDTO.__annotations__) and "value" not in row
    assert row["identifier"] == "email:a@example.com"
    assert row["expires_at"] == (T0 + HOUR).isoformat()


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("", "v", T0), "identifier"),
        (("id", "", T0), "value"),
        (("id", None, T0), "value"),
        (("id", "v", None), "expires_at"),
        (("id", "v", dt.datetime(2030, 1, 1)), "expires_at"),
        (("id\x00", "v", T0), "identifier"),
    ],
)
def test_verification_create_refusals_write_nothing(args: tuple[Any, ...], field: str) -> None:
    before = _verifications()
    identifier, value, expires_at = args
    with pytest.raises(ValidationError) as info:
        VerificationQueries.create(identifier, value, expires_at=expires_at)
    assert field in info.value.messages, (args, info.value.messages)
    assert _verifications() == before


def test_consume_is_single_use() -> None:
    VerificationQueries.create("reset:u1", "abc", expires_at=T0 + HOUR)
    VerificationQueries.create("reset:u2", "abc", expires_at=T0 + HOUR)
    assert VerificationQueries.consume("reset:u1", "wrong", now=T0) is False
    assert VerificationQueries.consume("reset:other", "abc", now=T0) is False
    assert VerificationQueries.consume("reset:u1", "abc", now=T0) is True
    assert VerificationQueries.consume("reset:u1", "abc", now=T0) is False
    assert VerificationQueries.consume("reset:u2", "abc", now=T0) is True  # its own row


def test_consume_is_false_once_expired() -> None:
    VerificationQueries.create("otp:x", "999", expires_at=T0)
    assert VerificationQueries.consume("otp:x", "999", now=T0) is False  # expires_at <= now
    assert VerificationQueries.consume("otp:x", "999", now=T0 - dt.timedelta(seconds=1)) is True
    VerificationQueries.create("otp:y", "111", expires_at=dt.datetime.now(dt.UTC) + HOUR)
    assert VerificationQueries.consume("otp:y", "111") is True


@pytest.mark.parametrize(
    ("args", "field"),
    [(("", "1"), "identifier"), (("otp:z", ""), "value"), (("otp:z", 1), "value")],
)
def test_consume_refuses_bad_arguments(args: tuple[Any, ...], field: str) -> None:
    VerificationQueries.create("otp:z", "1", expires_at=T0 + HOUR)
    with pytest.raises(ValidationError) as info:
        VerificationQueries.consume(*args, now=T0)
    assert field in info.value.messages
    assert VerificationQueries.consume("otp:z", "1", now=T0) is True  # still there


def test_consume_refuses_a_naive_now() -> None:
    VerificationQueries.create("otp:z", "1", expires_at=T0 + HOUR)
    with pytest.raises(ValidationError):
        VerificationQueries.consume("otp:z", "1", now=dt.datetime(2030, 1, 1))
    assert VerificationQueries.consume("otp:z", "1", now=T0) is True  # still there


def test_verification_delete_expired() -> None:
    VerificationQueries.create("a", "1", expires_at=T0 - HOUR)
    VerificationQueries.create("b", "2", expires_at=T0)
    VerificationQueries.create("c", "3", expires_at=T0 + HOUR)
    assert VerificationQueries.delete_expired(now=T0) == 2
    assert VerificationQueries.delete_expired(now=T0) == 0
    assert VerificationQueries.consume("c", "3", now=T0) is True
    with pytest.raises(ValidationError):
        VerificationQueries.delete_expired(now="yesterday")  # type: ignore[arg-type]
