"""Least privilege on PostgreSQL: the app role scripts and workers connect as.

Two roles (docs/security.md):

- the **owner** owns the tables and runs the migrations (``datalayer migrate``); it can
  drop the audit trail's triggers, so the application should not connect as it;
- the **app role** (``grant_app_role``, the ``datalayer grant-app-role NAME`` command):
  SELECT, INSERT, UPDATE and DELETE on every table, INSERT and SELECT only on
  ``admin_audit_log``, SELECT only on the migration history, no DDL (it owns nothing and
  cannot create in the schema). Through it, ``DROP TRIGGER``, UPDATE, DELETE and
  TRUNCATE on the audit log fail whatever the triggers say.

Grants name the tables that exist, so run it again after each migration (it is
idempotent). ``UserQueries.erase`` redacts audit rows, which the app role may not:
erasure runs with the owner's credentials (``datalayer user erase``).
"""

from __future__ import annotations

import re
from typing import Any

from psycopg2 import sql

from datalayer.connection.database import build_database
from datalayer.errors import ConfigurationError, translate_errors

__all__ = ["AUDIT_TABLE", "grant_app_role"]

AUDIT_TABLE = "admin_audit_log"
_HISTORY_TABLE = "migratehistory"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _statements(name: str, tables: list[str], password: str | None) -> list[sql.Composed]:
    role = sql.Identifier(name)
    login = (
        sql.SQL("LOGIN PASSWORD {}").format(sql.Literal(password)) if password else sql.SQL("LOGIN")
    )
    plain = [t for t in tables if t not in (AUDIT_TABLE, _HISTORY_TABLE)]
    statements = [
        sql.SQL("ALTER ROLE {} NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS {}").format(
            role, login
        ),
        sql.SQL("REVOKE ALL ON SCHEMA public FROM {}").format(role),
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role),
        sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(role),
        sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(role),
    ]
    if plain:
        names = sql.SQL(", ").join(sql.Identifier(t) for t in plain)
        statements.append(
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(names, role)
        )
    if AUDIT_TABLE in tables:
        statements.append(
            sql.SQL("GRANT SELECT, INSERT ON {} TO {}").format(sql.Identifier(AUDIT_TABLE), role)
        )
    if _HISTORY_TABLE in tables:
        statements.append(
            sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(_HISTORY_TABLE), role)
        )
    return statements


def grant_app_role(url: str | None, name: str, *, password: str | None = None) -> list[str]:
    """Create the app role ``name`` (or update it) with its grants on the database at
    ``url`` (run as the owner); return the statements run, the password masked."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigurationError(
            f"the app role's name must be a lower-case SQL identifier, not {name!r}"
        )
    database = build_database(url)
    if not getattr(database, "is_pg", False):
        raise ConfigurationError("app roles are a PostgreSQL feature: SQLite has no roles")
    try:
        with translate_errors(), database.atomic():
            cursor: Any = database.cursor()
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(name)))
            cursor.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
            )
            tables = [row[0] for row in cursor.fetchall()]
            done = []
            for statement in _statements(name, tables, password):
                cursor.execute(statement)
                done.append(statement.as_string(cursor.connection))
            # No DDL: before PostgreSQL 15 every role (PUBLIC) may create in ``public``.
            cursor.execute("SELECT has_schema_privilege(%s, 'public', 'CREATE')", (name,))
            if cursor.fetchone()[0]:
                cursor.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
                done.append("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    finally:
        database.close()
    return [re.sub(r"PASSWORD '.*'", "PASSWORD '***'", s) for s in done]
