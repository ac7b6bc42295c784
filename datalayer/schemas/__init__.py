"""marshmallow schemas, one module per domain: select / create / update per table.

Select schemas are named after the table's model (``TodoSchema``), writes
``CreateTodoSchema`` / ``UpdateTodoSchema``; ``TodoDTO`` is the TypedDict of a dump.
"""

from __future__ import annotations

from datalayer.schemas import admin, auth, features, notifications, subscriptions, tenant
from datalayer.schemas.admin import *  # noqa: F403
from datalayer.schemas.auth import *  # noqa: F403
from datalayer.schemas.base import Dumper, model_schema, writable_schema
from datalayer.schemas.features import *  # noqa: F403
from datalayer.schemas.notifications import *  # noqa: F403
from datalayer.schemas.subscriptions import *  # noqa: F403
from datalayer.schemas.tenant import *  # noqa: F403

__all__ = [
    "Dumper",
    "model_schema",
    "writable_schema",
    *auth.__all__,
    *tenant.__all__,
    *notifications.__all__,
    *subscriptions.__all__,
    *features.__all__,
    *admin.__all__,
]
