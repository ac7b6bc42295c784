"""Hand-written psycopg2 / sqlite3 twins of the benchmarked library calls.

Each returns exactly the DTOs the library returns (same keys, ISO-8601 UTC
timestamps, same page shape and cursor), written the way a careful engineer would
write them by hand: a plain cursor, ``dict(zip(columns, row))``.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import sqlite3
import uuid
from typing import Any

COLUMNS = (
    "id",
    "user_id",
    "tenant_id",
    "title",
    "description",
    "completed",
    "due_date",
    "created_at",
    "updated_at",
)
SELECT = "SELECT " + ", ".join(COLUMNS) + " FROM todos"
UTC = dt.UTC


def _iso(value: Any) -> Any:
    return None if value is None else value.astimezone(UTC).isoformat()


def _dto(row: tuple[Any, ...]) -> dict[str, Any]:
    d = dict(zip(COLUMNS, row, strict=True))
    d["due_date"] = _iso(d["due_date"])
    d["created_at"] = _iso(d["created_at"])
    d["updated_at"] = _iso(d["updated_at"])
    return d


def _cursor(created_at: str, row_id: str) -> str:
    raw = json.dumps([created_at, row_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[str, str]:
    ts, row_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    return ts, row_id


def pg_get(conn: Any, todo_id: str) -> dict[str, Any] | None:
    with conn.cursor() as cur:
        cur.execute(SELECT + " WHERE id = %s LIMIT 1", (todo_id,))
        row = cur.fetchone()
    return None if row is None else _dto(row)


def pg_list(conn: Any, user_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
    sql = SELECT + " WHERE user_id = %s AND tenant_id IS NULL"
    params: list[Any] = [user_id]
    if cursor:
        sql += " AND (created_at, id) < (%s, %s)"
        params += list(_decode(cursor))
    sql += " ORDER BY created_at DESC, id DESC LIMIT %s"
    with conn.cursor() as cur:
        cur.execute(sql, (*params, limit + 1))
        rows = cur.fetchall()
    items = [_dto(r) for r in rows[:limit]]
    next_cursor = _cursor(items[-1]["created_at"], items[-1]["id"]) if len(rows) > limit else None
    return {"items": items, "next_cursor": next_cursor}


def pg_insert(conn: Any, user_id: str, title: str) -> dict[str, Any]:
    now = dt.datetime.now(UTC)
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO todos (id, user_id, title, completed, created_at, updated_at) "
            "VALUES (%s, %s, %s, false, %s, %s) RETURNING " + ", ".join(COLUMNS),
            (str(uuid.uuid4()), user_id, title, now, now),
        )
        return _dto(cur.fetchone())


def pg_update(conn: Any, todo_id: str, user_id: str, title: str) -> dict[str, Any] | None:
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE todos SET title = %s, updated_at = %s WHERE id = %s AND user_id = %s "
            "RETURNING " + ", ".join(COLUMNS),
            (title, dt.datetime.now(UTC), todo_id, user_id),
        )
        row = cur.fetchone()
    return None if row is None else _dto(row)


def pg_copy(conn: Any, rows: list[tuple[Any, ...]]) -> int:
    buffer = io.StringIO()
    for r in rows:
        buffer.write(
            "\t".join(
                "\\N"
                if v is None
                else (
                    "t"
                    if v is True
                    else "f"
                    if v is False
                    else v.isoformat()
                    if isinstance(v, dt.datetime)
                    else str(v)
                )
                for v in r
            )
            + "\n"
        )
    buffer.seek(0)
    with conn, conn.cursor() as cur:
        cur.copy_expert("COPY todos (" + ", ".join(COLUMNS) + ") FROM STDIN", buffer)
    return len(rows)


def sqlite_connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA foreign_keys = 1")
    return conn


def _sqlite_dto(row: tuple[Any, ...]) -> dict[str, Any]:
    d = dict(zip(COLUMNS, row, strict=True))
    d["completed"] = bool(d["completed"])
    for key in ("due_date", "created_at", "updated_at"):
        v = d[key]
        d[key] = None if v is None else dt.datetime.fromisoformat(v).isoformat()
    return d


def sqlite_get(conn: sqlite3.Connection, todo_id: str) -> dict[str, Any] | None:
    row = conn.execute(SELECT + " WHERE id = ? LIMIT 1", (todo_id,)).fetchone()
    return None if row is None else _sqlite_dto(row)


def sqlite_list(conn: sqlite3.Connection, user_id: str, limit: int) -> dict[str, Any]:
    rows = conn.execute(
        SELECT + " WHERE user_id = ? AND tenant_id IS NULL "
        "ORDER BY created_at DESC, id DESC LIMIT ?",
        (user_id, limit + 1),
    ).fetchall()
    items = [_sqlite_dto(r) for r in rows[:limit]]
    next_cursor = _cursor(items[-1]["created_at"], items[-1]["id"]) if len(rows) > limit else None
    return {"items": items, "next_cursor": next_cursor}
