"""SQLAlchemy 2 Core twins of the benchmarked library calls (an optional dependency).

Each returns exactly the DTOs the library returns, built from Core's rows with the very
conversions the raw twins use (``raw._dto`` / ``raw._sqlite_dto``), so the difference
measured is the driver layer. Statements are built once with ``bindparam`` (Core's
compiled cache then skips recompiling) and run on a connection held open in AUTOCOMMIT,
as the library and the raw twins run single statements; the bulk load runs in one
transaction, ``conn.execute(insert(todos), rows)`` (executemany, batched by Core's
"insertmanyvalues").

Import this module only after checking that SQLAlchemy is installed (``available()``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from benchmarks import raw
from datalayer.connection.database import driver_url

UTC = dt.UTC


def available() -> bool:
    """Tell whether SQLAlchemy 2 is importable (the module imports it)."""
    return int(sa.__version__.split(".")[0]) >= 2


def todos_table(sqlite: bool) -> sa.Table:
    """``todos`` declared as stored: timestamptz on PostgreSQL, ISO text on SQLite."""
    stamp: Any = sa.String() if sqlite else sa.DateTime(timezone=True)
    return sa.Table(
        "todos",
        sa.MetaData(),
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("tenant_id", sa.String()),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("description", sa.String()),
        sa.Column("completed", sa.Boolean(), nullable=False),
        sa.Column("due_date", stamp),
        sa.Column("created_at", stamp, nullable=False),
        sa.Column("updated_at", stamp, nullable=False),
    )


class Twins:
    """The Core statements, prepared once for one engine, and the calls that run them."""

    def __init__(self, url: str) -> None:
        self.sqlite = url.startswith("sqlite")
        url = driver_url(url)  # without ?pooler=…, which psycopg2 rejects
        self.engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))
        self.conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self.dto = raw._sqlite_dto if self.sqlite else raw._dto
        t = self.todos = todos_table(self.sqlite)
        c = t.c
        order = (c.created_at.desc(), c.id.desc())
        personal = (c.user_id == sa.bindparam("user_id")) & c.tenant_id.is_(None)
        after = sa.tuple_(c.created_at, c.id) < sa.tuple_(
            sa.bindparam("after_ts", type_=c.created_at.type), sa.bindparam("after_id")
        )
        self.get_stmt = sa.select(t).where(c.id == sa.bindparam("id")).limit(1)
        self.list_stmt = sa.select(t).where(personal).order_by(*order).limit(sa.bindparam("lim"))
        self.list_after_stmt = (
            sa.select(t).where(personal & after).order_by(*order).limit(sa.bindparam("lim"))
        )
        self.insert_stmt = sa.insert(t).returning(*c)
        self.update_stmt = (
            sa.update(t)
            .where((c.id == sa.bindparam("b_id")) & (c.user_id == sa.bindparam("b_user_id")))
            .values(title=sa.bindparam("b_title"), updated_at=sa.bindparam("b_now"))
            .returning(*c)
        )

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()

    def get(self, todo_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(self.get_stmt, {"id": todo_id}).first()
        return None if row is None else self.dto(row)

    def list(self, user_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {"user_id": user_id, "lim": limit + 1}
        stmt = self.list_stmt
        if cursor:
            ts, params["after_id"] = raw._decode(cursor)
            params["after_ts"] = ts if self.sqlite else dt.datetime.fromisoformat(ts)
            stmt = self.list_after_stmt
        rows = self.conn.execute(stmt, params).all()
        dto = self.dto
        items = [dto(r) for r in rows[:limit]]
        next_cursor = (
            raw._cursor(items[-1]["created_at"], items[-1]["id"]) if len(rows) > limit else None
        )
        return {"items": items, "next_cursor": next_cursor}

    def insert(self, user_id: str, title: str) -> dict[str, Any]:
        now = dt.datetime.now(UTC)
        row = self.conn.execute(
            self.insert_stmt,
            {
                "id": str(uuid.uuid4()),
                "user_id": user_id,
                "title": title,
                "completed": False,
                "created_at": now,
                "updated_at": now,
            },
        ).one()
        return self.dto(row)

    def update(self, todo_id: str, user_id: str, title: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            self.update_stmt,
            {
                "b_id": todo_id,
                "b_user_id": user_id,
                "b_title": title,
                "b_now": dt.datetime.now(UTC),
            },
        ).first()
        return None if row is None else self.dto(row)

    def bulk(self, rows: list[dict[str, Any]]) -> int:
        """Insert the rows (dicts keyed by column) in one transaction; return the count.

        (Under insertmanyvalues ``rowcount`` is the last batch's: the benchmark's check
        counts the rows that arrived instead.)
        """
        with self.engine.begin() as conn:
            conn.execute(sa.insert(self.todos), rows)
        return len(rows)
