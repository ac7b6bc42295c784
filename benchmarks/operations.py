"""The operations timed on each backend: the library call and its twins, as ``Case``s.

Raw twins: benchmarks/raw.py; SQLAlchemy Core twins: benchmarks/sqla.py (optional).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import psycopg2

from benchmarks import raw
from benchmarks.cases import Case
from datalayer.connection.bulk import copy_rows
from datalayer.connection.database import driver_url
from datalayer.models import Todo, User, new_id, utcnow
from datalayer.queries import TodoQueries
from datalayer.queries.base import encode_cursor


def bench_user(personal_todos: int) -> str:
    """A user with ``personal_todos`` personal todos (for the list pages)."""
    user = User.create(name="Bench User", email=f"bench-{uuid.uuid4().hex[:8]}@example.test")
    now = utcnow()
    rows = (
        (
            new_id(),
            user.id,
            None,
            f"todo {n}",
            None,
            n % 3 == 0,
            None,
            now - dt.timedelta(milliseconds=n),
            now,
        )
        for n in range(personal_todos)
    )
    copy_rows(Todo, raw.COLUMNS, rows)
    return str(user.id)


def _ignore_generated(dto: Any) -> Any:
    return {k: v for k, v in dto.items() if k not in ("id", "created_at", "updated_at")}


def _with(
    sides: dict[str, Callable[[], Any]], twins: Any, sqla_fn: Callable[[], Any]
) -> dict[str, Callable[[], Any]]:
    return {**sides, "sqlalchemy": sqla_fn} if twins is not None else sides


def pg_connect(url: str) -> Any:
    """The raw twins' psycopg2 connection (autocommit: one statement, one transaction)."""
    conn = psycopg2.connect(driver_url(url))  # without ?pooler=…, which psycopg2 rejects
    conn.autocommit = True
    return conn


def postgres_cases(
    conn: Any, user_id: str, writer_id: str, quick: bool, twins: Any = None
) -> list[Case]:
    """The PostgreSQL operations on ``db``; ``conn``: the raw twins' connection
    (``pg_connect``); ``twins``: a ``sqla.Twins`` for the third column, or None.

    Reads and updates go to ``user_id``'s todos; inserts and bulk loads add todos to
    ``writer_id``, so the lists read the same rows (and plans) in every repetition.
    """
    some = [t.id for t in Todo.select(Todo.id).where(Todo.user == user_id).limit(200)]
    ids = iter(some * 100_000)
    deep = list(
        Todo.select(Todo.created_at, Todo.id)
        .where((Todo.user == user_id) & Todo.tenant.is_null())
        .order_by(Todo.created_at.desc(), Todo.id.desc())
        .offset(len(some) * 5)
        .limit(1)
        .tuples()
    )
    deep_cursor = encode_cursor(*deep[0]) if deep else None
    titles = iter(f"title {n}" for n in range(10**9))
    s = twins

    def bulk_rows() -> list[tuple[Any, ...]]:
        now = utcnow()
        return [
            (new_id(), writer_id, None, "bulk", None, False, None, now, now) for _ in range(10_000)
        ]

    def bulk_dicts() -> list[dict[str, Any]]:
        now = utcnow()
        return [
            {
                "id": new_id(),
                "user_id": writer_id,
                "tenant_id": None,
                "title": "bulk",
                "description": None,
                "completed": False,
                "due_date": None,
                "created_at": now,
                "updated_at": now,
            }
            for _ in range(10_000)
        ]

    def lists(limit: int, cursor: str | None) -> dict[str, Callable[[], Any]]:
        return _with(
            {
                "library": lambda: TodoQueries.list_for_user(user_id, limit=limit, cursor=cursor),
                "raw": lambda: raw.pg_list(conn, user_id, limit, cursor),
            },
            s,
            lambda: s.list(user_id, limit, cursor),
        )

    def bulk_arrived() -> dict[str, Any]:
        """Each side's load, counted by the rows that arrived (not by what it returns)."""
        arrived = {}
        for side, load in bulk.items():
            before = Todo.select().where(Todo.user == writer_id).count()
            load()
            arrived[side] = Todo.select().where(Todo.user == writer_id).count() - before
        return arrived

    def same_update() -> dict[str, Any]:
        out = {
            "library": TodoQueries.update(some[0], user_id, {"title": "same"}),
            "raw": raw.pg_update(conn, some[0], user_id, "same"),
        }
        if s is not None:
            out["sqlalchemy"] = s.update(some[0], user_id, "same")
        return out

    bulk = _with(
        {
            "library": lambda: copy_rows(Todo, raw.COLUMNS, bulk_rows()),
            "raw": lambda: raw.pg_copy(conn, bulk_rows()),
        },
        s,
        lambda: s.bulk(bulk_dicts()),
    )
    return [
        Case(
            "get_by_id",
            _with(
                {
                    "library": lambda: TodoQueries.find_by_id(some[0]),
                    "raw": lambda: raw.pg_get(conn, some[0]),
                },
                s,
                lambda: s.get(some[0]),
            ),
            200,
        ),
        Case("list_50", lists(50, None), 30),
        Case("list_50_deep", lists(50, deep_cursor), 30),
        Case("list_1000", lists(1000, None), 3),
        Case(
            "insert_one",
            _with(
                {
                    "library": lambda: TodoQueries.create(writer_id, {"title": "new todo"}),
                    "raw": lambda: raw.pg_insert(conn, writer_id, "new todo"),
                },
                s,
                lambda: s.insert(writer_id, "new todo"),
            ),
            50,
            compare=_ignore_generated,
        ),
        Case(
            "update_one",
            _with(
                {
                    "library": lambda: TodoQueries.update(
                        next(ids), user_id, {"title": next(titles)}
                    ),
                    "raw": lambda: raw.pg_update(conn, next(ids), user_id, next(titles)),
                },
                s,
                lambda: s.update(next(ids), user_id, next(titles)),
            ),
            50,
            compare=lambda d: {k: v for k, v in d.items() if k != "updated_at"},
            check=same_update,
        ),
        Case("bulk_10000", bulk, 1, check=bulk_arrived, every=2 if quick else 3),
    ]


def sqlite_cases(conn: Any, user_id: str, twins: Any = None) -> list[Case]:
    """The SQLite reads on ``db``; ``conn``: the raw twins' ``raw.sqlite_connect`` to the file."""
    some = Todo.select(Todo.id).where(Todo.user == user_id).first().id
    s = twins
    return [
        Case(
            "sqlite_get_by_id",
            _with(
                {
                    "library": lambda: TodoQueries.find_by_id(some),
                    "raw": lambda: raw.sqlite_get(conn, some),
                },
                s,
                lambda: s.get(some),
            ),
            500,
        ),
        *(
            Case(
                f"sqlite_list_{n}",
                _with(
                    {
                        "library": lambda n=n: TodoQueries.list_for_user(user_id, limit=n),
                        "raw": lambda n=n: raw.sqlite_list(conn, user_id, n),
                    },
                    s,
                    lambda n=n: s.list(user_id, n, None),
                ),
                calls,
            )
            for n, calls in ((50, 50), (1000, 3))
        ),
    ]
