"""The operations generated migrations call, beside peewee_migrate's own ``migrator`` API.

``datalayer makemigrations`` writes migrations that import this package and nothing else
of datalayer: never the models, so an old migration still runs after the models move
on. Treat everything here as frozen: change a helper's behaviour and every migration
that calls it changes too. Add a new helper instead.

Each helper does two things, like peewee_migrate's own operations: it updates the
migration state (``migrator.orm``, which the next migration and ``makemigrations`` read)
and it queues the SQL, written for the backend the migration runs on. Where SQLite's
ALTER TABLE cannot make a change, the table is rebuilt from the model the state holds
(``rebuild``, SQLite's 12-step procedure). peewee_migrate's ``add_index`` /
``drop_index`` cannot name an index, give it a ``WHERE`` or an expression, or drop one a
model declared with ``Model.index(...)``; the ones here can.
"""

from __future__ import annotations

from datalayer.migration_ops.base import (
    CONCURRENTLY,
    Dialect,
    ServerDefault,
    Step,
    TimestampTZField,
    check,
    check_constraint,
)
from datalayer.migration_ops.columns import (
    add_column,
    add_not_null,
    alter_column,
    drop_column,
    drop_not_null,
)
from datalayer.migration_ops.constraints import (
    Trigger,
    add_check,
    add_trigger,
    drop_check,
    drop_trigger,
    run_sql,
    set_default,
)
from datalayer.migration_ops.indexes import add_index, drop_index
from datalayer.migration_ops.rebuild import RebuildError
from datalayer.migration_ops.tables import rename_table

__all__ = [
    "CONCURRENTLY",
    "Dialect",
    "RebuildError",
    "ServerDefault",
    "Step",
    "TimestampTZField",
    "Trigger",
    "add_check",
    "add_column",
    "add_index",
    "add_not_null",
    "add_trigger",
    "alter_column",
    "check",
    "check_constraint",
    "drop_check",
    "drop_column",
    "drop_index",
    "drop_not_null",
    "drop_trigger",
    "rename_table",
    "run_sql",
    "set_default",
]
