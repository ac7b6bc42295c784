"""``datalayer.__all__`` lists every public name: the namespaces, every error class, every
DTO and input TypedDict, every id type and every Literal set (issue 26)."""

from __future__ import annotations

import typing

import datalayer
import datalayer.errors
import datalayer.queries
import datalayer.schemas
import datalayer.types


def test_every_public_name_is_in_datalayer_all() -> None:
    errors = {
        name
        for name, value in vars(datalayer.errors).items()
        if isinstance(value, type) and issubclass(value, datalayer.errors.DataLayerError)
    }
    typed_dicts = {
        name
        for name in datalayer.schemas.__all__
        if typing.is_typeddict(getattr(datalayer.schemas, name))
    }
    wanted = (
        errors
        | typed_dicts
        | set(datalayer.types.__all__)
        | set(datalayer.queries.__all__)
        | {"init_db", "atomic", "db", "Page"}
    )
    assert sorted(wanted - set(datalayer.__all__)) == []
    assert len(datalayer.__all__) == len(set(datalayer.__all__))  # listed once each
    for name in datalayer.__all__:
        assert getattr(datalayer, name) is not None, name
    assert "ConfigurationError" in datalayer.__all__ and "TodoDTO" in datalayer.__all__


def test_id_types_are_plain_str_at_run_time() -> None:
    todo_id = datalayer.TodoId("t1")
    assert type(todo_id) is str and todo_id == "t1"
