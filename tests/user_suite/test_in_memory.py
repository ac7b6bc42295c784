"""``init_db("sqlite:///:memory:")`` then ``migrate()``: one in-memory database, migrated."""

from __future__ import annotations

from datalayer import UserQueries, init_db
from datalayer.testing import migrate


def test_migrate_runs_on_init_dbs_in_memory_database() -> None:
    init_db("sqlite:///:memory:")
    assert migrate("sqlite:///:memory:")  # the migrations it applied
    user = UserQueries.create({"name": "Ada", "email": "ada@example.com"})
    assert UserQueries.find_by_id(user["id"]) == user
    assert migrate() == []  # the same database: nothing left to apply
