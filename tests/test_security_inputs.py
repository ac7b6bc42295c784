"""Issue 23, "Files and sizes": the SQLite file's mode, a length cap on every text
input, and emails normalized (NFKC) before the uniqueness check."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import marshmallow
import pytest
from factories import make_user

from datalayer import (
    ConflictError,
    NotificationQueries,
    UserQueries,
    ValidationError,
    WaitlistQueries,
    db,
    init_db,
    schemas,
)
from datalayer.arguments import KEY_MAX, TEXT_MAX
from datalayer.models import ALL_MODELS, Notification
from datalayer.schemas.base import Text, field_for, is_indexed


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("umask_022")
def test_sqlite_file_and_its_wal_and_shm_are_private(tmp_path: Path) -> None:
    path = tmp_path / "datalayer.sqlite3"
    database = init_db(f"sqlite:///{path}")
    try:
        database.execute_sql("CREATE TABLE t (a TEXT)")
        database.execute_sql("INSERT INTO t VALUES ('token')")
        files = sorted(p.name for p in tmp_path.iterdir())
        assert files == ["datalayer.sqlite3", "datalayer.sqlite3-shm", "datalayer.sqlite3-wal"]
        for name in files:
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    finally:
        database.close()
        db.initialize(None)


@pytest.mark.usefixtures("umask_022")
def test_an_existing_sqlite_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    path.touch(mode=0o640)
    os.chmod(path, 0o640)
    database = init_db(f"sqlite:///{path}")
    try:
        database.execute_sql("CREATE TABLE t (a TEXT)")
        assert stat.S_IMODE(path.stat().st_mode) == 0o640  # the owner chose it
    finally:
        database.close()
        db.initialize(None)


@pytest.mark.usefixtures("txn")
def test_a_5_mb_batch_key_is_a_validation_error_naming_it() -> None:
    user = make_user()
    before = Notification.select().count()
    with pytest.raises(ValidationError) as caught:
        NotificationQueries.notify(user.id, type="direct_message", title="t", body="b", batch_key="k" * 5_000_000)
    assert "batch_key" in caught.value.messages
    with pytest.raises(ValidationError) as caught:
        NotificationQueries.notify(user.id, type="direct_message", title="t", body="b", batch_key="k" * (KEY_MAX + 1))
    assert "batch_key" in caught.value.messages
    assert Notification.select().count() == before
    NotificationQueries.notify(user.id, type="direct_message", title="t", body="b", batch_key="k" * KEY_MAX)


@pytest.mark.usefixtures("txn")
def test_an_overlong_body_is_a_validation_error_naming_it() -> None:
    user = make_user()
    with pytest.raises(ValidationError) as caught:
        NotificationQueries.notify(user.id, type="direct_message", title="t", body="b" * (TEXT_MAX + 1))
    assert "body" in caught.value.messages


def _text_fields() -> Iterator[tuple[str, str, marshmallow.fields.Field]]:
    for name in schemas.__all__:
        schema = getattr(schemas, name)
        if not (isinstance(schema, type) and issubclass(schema, marshmallow.Schema)):
            continue
        for field_name, field in schema._declared_fields.items():
            if isinstance(field, Text) and not field.dump_only:
                yield name, field_name, field


def test_every_text_field_of_every_schema_refuses_overlong_text() -> None:
    checked = 0
    for schema_name, field_name, field in _text_fields():
        with pytest.raises(marshmallow.ValidationError, match="at most"):
            field.deserialize("x" * (TEXT_MAX + 1))
        assert schema_name and field_name
        checked += 1
    assert checked > 50  # the walk found the schemas' text fields


def test_every_indexed_text_column_has_the_key_limit() -> None:
    # PostgreSQL refuses a btree entry over 2,704 bytes; SQLite would store it.
    found = 0
    for model in ALL_MODELS:
        for pw_field in model._meta.sorted_fields:
            if is_indexed(pw_field) and type(pw_field).__name__ == "TextField":
                found += 1
                with pytest.raises(marshmallow.ValidationError):
                    field_for(pw_field).deserialize("a@b.co" + "x" * KEY_MAX)
    assert found >= 10


@pytest.mark.usefixtures("txn")
def test_a_fullwidth_look_alike_email_conflicts() -> None:
    UserQueries.create({"name": "Ada", "email": "ada@example.com"})
    with pytest.raises(ConflictError):
        UserQueries.create({"name": "Not Ada", "email": "ａｄａ@example.com"})
    found = UserQueries.find_by_email("ＡＤＡ@example.com")
    assert found is not None and found["email"] == "ada@example.com"


@pytest.mark.usefixtures("txn")
def test_the_waitlist_normalizes_look_alikes_too() -> None:
    _, added = WaitlistQueries.join("ｅａｒｌｙ@example.com")
    assert added
    _, added = WaitlistQueries.join("early@example.com")
    assert not added
