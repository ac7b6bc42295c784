"""The connection layer: the database handle bound by ``init_db``, pooling, the routing
context, replicas and their router, ``retrying``, the SQL log, tracing.

Nothing here imports the layers above it (models, schemas, queries, evolve, adopt, cli).
"""

from __future__ import annotations

from datalayer.connection.database import atomic, connection_context, db, init_db, is_postgres
from datalayer.connection.retrying import retrying

__all__ = ["atomic", "connection_context", "db", "init_db", "is_postgres", "retrying"]
