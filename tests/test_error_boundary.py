"""The error boundary: every ``XxxQueries`` namespace is decorated ``@error_boundary``.

Database failures (peewee's errors, the drivers' own, the pool's) leave a public function
as ``DataLayerError``s; the library's own exceptions (a bug) and a wrong call propagate
as they are, never disguised as a ``ValidationError``. ``retrying`` retries by class:
``SerializationError`` (40001, 40P01) and ``ConnectionLostError``.
"""

from __future__ import annotations

import inspect

import pytest
from factories import make_user
from helpers import postgres_only

import datalayer
from datalayer import ConflictError, DataLayerError, ValidationError, db, retrying
from datalayer.errors import ConfigurationError, SerializationError, error_boundary
from datalayer.queries.auth import users as users_module

NAMESPACES = {name: getattr(datalayer, name) for name in datalayer.__all__ if name.endswith("Queries")}


@error_boundary
class ProbeQueries:
    """A namespace of the test's own, behind the same boundary as the library's."""

    @staticmethod
    def library_bug(value: object) -> int:
        return len(value)  # type: ignore[arg-type]  # a TypeError for a non-sequence

    @staticmethod
    def duplicate(email: str) -> None:
        with db.atomic():
            make_user(email=email)
            make_user(email=email)

    @staticmethod
    def raw_driver_error() -> None:
        cursor = db.connection().cursor()  # the driver's own cursor: no peewee wrapper
        cursor.execute("SELECT * FROM no_such_table_here")

    @staticmethod
    def fail_with(code: str) -> None:
        db.execute_sql(f"DO $$ BEGIN RAISE EXCEPTION 'lost' USING ERRCODE = '{code}'; END $$")


def test_the_namespaces_are_all_found() -> None:
    assert len(NAMESPACES) >= 25


@pytest.mark.parametrize("name", list(NAMESPACES))
def test_the_boundary_is_declared_on_the_namespace(name: str) -> None:
    namespace = NAMESPACES[name]
    assert inspect.getsource(namespace).startswith("@error_boundary\nclass ")
    public = [a for a, v in vars(namespace).items() if not a.startswith("_")
              and isinstance(v, staticmethod)]
    assert public
    assert [a for a in public if not getattr(getattr(namespace, a), "__datalayer_guarded__",
                                             False)] == []


def test_a_library_bug_is_not_disguised_as_bad_input() -> None:
    with pytest.raises(TypeError, match="has no len"):
        ProbeQueries.library_bug(5)


def test_a_bug_inside_a_real_namespace_propagates(txn, monkeypatch) -> None:
    def broken(name: str, value: object) -> str:
        raise TypeError("a bug in the library")

    monkeypatch.setattr(users_module.arguments, "email", broken)
    with pytest.raises(TypeError, match="a bug in the library"):
        datalayer.UserQueries.find_by_email("someone@example.com")


def test_a_wrong_call_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        ProbeQueries.duplicate()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        datalayer.UserQueries.find_by_id("u1", "extra")  # type: ignore[call-arg]


def test_a_database_failure_is_translated(txn) -> None:
    with pytest.raises(ConflictError) as info:
        ProbeQueries.duplicate("twice@example.com")
    assert not isinstance(info.value, SerializationError)
    assert info.value.__cause__ is not None


def test_a_raw_driver_error_is_translated(txn) -> None:
    # In a savepoint, rolled back by the error: PostgreSQL's transaction stays usable.
    with pytest.raises(ConfigurationError, match="run `datalayer migrate`") as info, db.atomic():
        ProbeQueries.raw_driver_error()
    assert type(info.value.__cause__).__module__.split(".")[0] in {"psycopg2", "sqlite3"}
    assert not isinstance(info.value, ValidationError)


@postgres_only
@pytest.mark.parametrize("code", ["40001", "40P01"])
def test_serialization_failures_and_deadlocks_are_one_class_retrying_retries(
    fresh_db, code: str
) -> None:
    with pytest.raises(SerializationError) as info:
        ProbeQueries.fail_with(code)
    assert isinstance(info.value, ConflictError) and isinstance(info.value, DataLayerError)

    calls: list[int] = []

    def unit() -> str:
        calls.append(1)
        if len(calls) == 1:
            ProbeQueries.fail_with(code)  # translated inside: retrying matches the class
        return "done"

    assert retrying(unit, base_delay=0.001) == "done"
    assert len(calls) == 2


@postgres_only
def test_retrying_does_not_retry_other_conflicts(fresh_db) -> None:
    calls: list[int] = []

    def unit() -> None:
        calls.append(1)
        ProbeQueries.fail_with("23505")  # unique_violation: retrying cannot help

    with pytest.raises(ConflictError) as info:
        retrying(unit, base_delay=0.001)
    assert not isinstance(info.value, SerializationError)
    assert len(calls) == 1
