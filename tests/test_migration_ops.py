"""migration_ops keeps its own copies of Dialect, ServerDefault and TimestampTZField.

The copy is deliberate: migration files import migration_ops and nothing else of the
package, so an old migration keeps running after the models move on. These tests keep
the two copies honest: for every server default and every CHECK the models declare, and
for the timestamp column, the frozen copy writes the same SQL on each backend.
"""

from __future__ import annotations

import re
from typing import Any

import peewee
import pytest

import datalayer.migration_ops as ops
from datalayer.models import ALL_MODELS, base

BACKENDS = {
    "postgres": peewee.PostgresqlDatabase(None),
    "sqlite": peewee.SqliteDatabase(None),
}
CHECK = re.compile(r"CONSTRAINT (\w+) CHECK \((.*)\)", re.DOTALL)


def sql(node: Any, backend: str) -> str:
    """Return the SQL ``node`` compiles to on ``backend`` (no connection needed)."""
    text, params = BACKENDS[backend].get_sql_context().sql(node).query()
    assert params == []
    return str(text)


def _server_defaults() -> dict[str, base.ServerDefault]:
    found = {}
    for model in ALL_MODELS:
        for field in model._meta.sorted_fields:
            for node in field.constraints or []:
                if isinstance(node, base.ServerDefault):
                    found[f"{model._meta.table_name}.{field.column_name}"] = node
    return found


def _checks() -> dict[str, Any]:
    found = {}
    for model in ALL_MODELS:
        for node in model._meta.constraints or []:
            text = node.postgres if isinstance(node, base.Dialect) else node.sql
            match = CHECK.fullmatch(text)
            assert match, text
            found[match.group(1)] = node
    return found


SERVER_DEFAULTS = _server_defaults()
CHECKS = _checks()


def test_the_models_declare_defaults_and_checks_to_compare() -> None:
    assert len(SERVER_DEFAULTS) > 20
    assert len(CHECKS) > 20
    assert any(isinstance(node, base.Dialect) for node in CHECKS.values())


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("column", list(SERVER_DEFAULTS))
def test_a_frozen_server_default_writes_the_models_sql(column: str, backend: str) -> None:
    default = SERVER_DEFAULTS[column]
    frozen = ops.ServerDefault(default.postgres, default.sqlite)
    assert sql(frozen, backend) == sql(default, backend)
    assert sql(default, backend).startswith("DEFAULT ")


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("name", list(CHECKS))
def test_the_frozen_check_builder_writes_the_models_check(name: str, backend: str) -> None:
    node = CHECKS[name]
    if isinstance(node, base.Dialect):
        postgres, sqlite = (CHECK.fullmatch(t).group(2) for t in (node.postgres, node.sqlite))
    else:
        postgres = sqlite = CHECK.fullmatch(node.sql).group(2)
    assert sql(ops.check_constraint(name, postgres, sqlite=sqlite), backend) == sql(node, backend)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_a_frozen_dialect_writes_each_backends_text(backend: str) -> None:
    expected = {"postgres": "jsonb_typeof(x)", "sqlite": "json_type(x)"}[backend]
    for cls in (base.Dialect, ops.Dialect):
        assert sql(cls("jsonb_typeof(x)", "json_type(x)"), backend) == expected


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_the_frozen_timestamp_column_is_the_models(backend: str) -> None:
    def create_table(field_class: type[peewee.Field], default: Any) -> str:
        class Stamped(peewee.Model):
            at = field_class(null=True, constraints=[default])

            class Meta:
                database = BACKENDS[backend]
                table_name = "stamped"

        text, _ = Stamped._schema._create_table(safe=False).query()
        return str(text)

    ours = create_table(base.TimestampTZField, base.NOW)
    frozen = create_table(ops.TimestampTZField, ops.ServerDefault(base.NOW.postgres, base.NOW.sqlite))
    assert ours == frozen
    assert "TIMESTAMPTZ" in ours


def test_the_old_name_of_the_check_builder_still_imports() -> None:
    from datalayer.migration_ops import check  # migrations 002 and 003 import it

    assert sql(check("c", "x > 0"), "postgres") == "CONSTRAINT c CHECK (x > 0)"
    assert "check" in ops.__all__ and "check_constraint" in ops.__all__
