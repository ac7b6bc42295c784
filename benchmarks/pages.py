"""Keyset pages: page 1 against page N of a 50-item list, on a user with many todos.

The cursor for page N is reached by walking pages 1..N-1 through the library (which
also checks the walk: no item twice, none skipped). Page N is then timed against page
1 through the library, the raw twin and SQLAlchemy Core (checked to return the
identical page), and the same page fetched with ``OFFSET`` (checked identical too),
the cost keyset pagination avoids.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchmarks import raw
from benchmarks.cases import Case, run
from benchmarks.operations import bench_user
from datalayer import db
from datalayer.queries import TodoQueries

PAGE_SIZE = 50




def walk_to(user_id: str, page: int) -> str:
    """Follow next_cursor through pages 1..page-1; return the cursor of ``page``."""
    seen: set[str] = set()
    cursor: str | None = None
    for n in range(1, page):
        result = TodoQueries.list_for_user(user_id, limit=PAGE_SIZE, cursor=cursor)
        seen.update(item["id"] for item in result["items"])
        cursor = result["next_cursor"]
        if cursor is None or len(seen) != n * PAGE_SIZE:
            raise AssertionError(f"keyset walk broke at page {n}: {len(seen)} distinct items")
    if cursor is None:
        raise AssertionError("page must be at least 2")
    return cursor


def pg_offset_page(conn: Any, user_id: str, page: int) -> dict[str, Any]:
    """The same page fetched with OFFSET, as the raw twin builds it."""
    sql = (
        raw.SELECT + " WHERE user_id = %s AND tenant_id IS NULL "
        "ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s"
    )
    with conn.cursor() as cur:
        cur.execute(sql, (user_id, PAGE_SIZE + 1, (page - 1) * PAGE_SIZE))
        rows = cur.fetchall()
    items = [raw._dto(r) for r in rows[:PAGE_SIZE]]
    next_cursor = (
        raw._cursor(items[-1]["created_at"], items[-1]["id"]) if len(rows) > PAGE_SIZE else None
    )
    return {"items": items, "next_cursor": next_cursor}


def page_sides(
    conn: Any, twins: Any, user_id: str, cursor: str | None
) -> dict[str, Callable[[], Any]]:
    """The calls fetching one page (``cursor`` None: page 1) on each side."""
    sides: dict[str, Callable[[], Any]] = {
        "library": lambda: TodoQueries.list_for_user(user_id, limit=PAGE_SIZE, cursor=cursor),
        "raw": lambda: raw.pg_list(conn, user_id, PAGE_SIZE, cursor),
    }
    if twins is not None:
        sides["sqlalchemy"] = lambda: twins.list(user_id, PAGE_SIZE, cursor)
    return sides


def summary(
    page: int, todos: int, first: dict[str, Any], deep: dict[str, Any], offset_us: float
) -> dict[str, Any]:
    """Both pages' medians and the page-N / page-1 ratio on each side."""
    deep = {**deep, "offset_us": offset_us}
    out: dict[str, Any] = {
        "page": page,
        "rows_deep": (page - 1) * PAGE_SIZE,
        "user_todos": todos,
        "page_1": first,
        f"page_{page}": deep,
    }
    for side in ("library", "raw", "sqlalchemy"):
        key = f"{side}_us"
        if key in first and key in deep:
            out[f"{side}_ratio"] = round(deep[key] / first[key], 3)
    if "offset_us" in deep:
        out["offset_ratio"] = round(deep["offset_us"] / first["raw_us"], 3)
    return out


def run_pages(conn: Any, twins: Any, repetitions: int, page: int = 1000) -> dict[str, Any]:
    """Make the deep user, walk to ``page``, check and time page 1 against it (``db``: PG)."""
    todos = page * PAGE_SIZE + PAGE_SIZE
    user_id = bench_user(todos)  # personal todos one millisecond apart, newest first
    db.execute_sql("ANALYZE todos")
    cursor = walk_to(user_id, page)
    first = Case("page_1", page_sides(conn, twins, user_id, None), 30)
    deep = Case(f"page_{page}", page_sides(conn, twins, user_id, cursor), 30)
    # The same page by OFFSET: checked identical, timed on its own (it is ~100× slower).
    if pg_offset_page(conn, user_id, page) != raw.pg_list(conn, user_id, PAGE_SIZE, cursor):
        raise AssertionError(f"page {page} by OFFSET differs from the keyset page")
    offset = Case(
        f"page_{page}_offset", {"raw": lambda: pg_offset_page(conn, user_id, page)}, 1, every=2
    )
    run([first, deep, offset], repetitions)
    return summary(page, todos, first.result(), deep.result(), offset.result()["raw_us"])
