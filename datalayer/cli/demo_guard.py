"""What ``datalayer demo`` runs on: a database of its own, or one holding nothing else."""

from __future__ import annotations

from typing import Any

from datalayer.connection.database import build_database
from datalayer.models import ALL_MODELS

__all__ = ["DEMO_ADMIN", "DEMO_EMAILS", "DEMO_URL", "foreign_data"]

# The demo's own database (relative to the working directory), used unless --database.
DEMO_URL = "sqlite:///datalayer-demo.sqlite3"
DEMO_EMAILS = ("ada@example.com", "grace@example.com")
DEMO_ADMIN = "ops@example.com"
DEMO_ROOT = "root@example.com"  # the first admin (datalayer admin bootstrap), who grants ops
# What the demo writes into the tables a real database fills first: anything else there
# is someone's data. "{p}" is the backend's parameter marker.
_NOT_DEMO: dict[str, tuple[str, tuple[str, ...]]] = {
    "user": ('SELECT count(*) FROM "user" WHERE email NOT IN ({p}, {p})', DEMO_EMAILS),
    "waitlist": ('SELECT count(*) FROM "waitlist" WHERE email NOT IN ({p}, {p})', DEMO_EMAILS),
    "tenants": ('SELECT count(*) FROM "tenants" WHERE name NOT LIKE {p}', ("Demo team %",)),
    "admin_users": ('SELECT count(*) FROM "admin_users" WHERE email NOT IN ({p}, {p})',
                    (DEMO_ADMIN, DEMO_ROOT)),
}


def foreign_data(url: str) -> list[str]:
    """Return what the database at ``url`` holds that the demo did not write (empty: safe).

    Tables that are not the library's, and rows of users, waitlist entries, tenants and
    admin users other than the demo's. Reads only.
    """
    database: Any = build_database(url)  # peewee's execute_sql is untyped
    database.connect()
    try:
        ours = {model._meta.table_name for model in ALL_MODELS} | {"migratehistory"}
        tables = [t for t in database.get_tables() if not t.startswith("sqlite_")]
        found = [f"table {table}" for table in tables if table not in ours]
        for table, (sql, params) in _NOT_DEMO.items():
            if table in tables:
                query = sql.format(p=database.param)
                count = database.execute_sql(query, params).fetchone()[0]
                if count:
                    found.append(f"{count:,} row(s) in {table}")
        return found
    finally:
        database.close()
