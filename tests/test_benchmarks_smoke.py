"""The benchmark's twins return exactly the library's DTOs (the check it makes before timing).

No timings are asserted: this only proves that what benchmarks/run.py compares is
like for like — for each operation, the library, the hand-written raw driver twin and
(when SQLAlchemy 2 is installed) the SQLAlchemy Core twin return identical DTOs — and
that the keyset walk and the claim run's checks hold on a small scale.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from factories import make_user
from helpers import IS_PG, postgres_only

# benchmarks/ is not part of the installed package: import it from the source tree
# (appended, so the installed ``datalayer`` keeps precedence under tox).
sys.path.append(str(Path(__file__).resolve().parents[1]))

from benchmarks import claim, pages, raw  # noqa: E402
from benchmarks import operations as bench  # noqa: E402
from benchmarks.cases import Case  # noqa: E402
from datalayer.models import NotificationDelivery, Todo  # noqa: E402

PG_OPERATIONS = {
    "get_by_id",
    "list_50",
    "list_50_deep",
    "list_1000",
    "insert_one",
    "update_one",
    "bulk_10000",
}


def _cases(url: str, twins: Any) -> tuple[list[Case], Any]:
    """The benchmark's cases for this backend, on a user with 2,000 todos, and their conn."""
    user_id = bench.bench_user(2_000)
    if IS_PG:
        conn = bench.pg_connect(url)
        return bench.postgres_cases(conn, user_id, bench.bench_user(0), True, twins), conn
    conn = raw.sqlite_connect(url.removeprefix("sqlite:///"))
    return bench.sqlite_cases(conn, user_id, twins), conn


def _verify_all(url: str, twins: Any) -> set[str]:
    cases, conn = _cases(url, twins)
    try:
        for case in cases:
            case.verify()  # raises AssertionError naming the side that differs
    finally:
        conn.close()
    expected = {"library", "raw"} | ({"sqlalchemy"} if twins is not None else set())
    assert all(set(case.sides) == expected for case in cases)
    return {case.name for case in cases}


def test_library_and_raw_twins_return_identical_dtos(fresh_db: str) -> None:
    names = _verify_all(fresh_db, None)
    if IS_PG:
        assert names == PG_OPERATIONS
        # bulk_10000's check loaded 10,000 rows per side, counted as they arrived
        assert Todo.select().where(Todo.title == "bulk").count() == 20_000
    else:
        assert names == {"sqlite_get_by_id", "sqlite_list_50", "sqlite_list_1000"}


def test_sqlalchemy_core_twins_return_identical_dtos(fresh_db: str) -> None:
    pytest.importorskip("sqlalchemy", minversion="2")
    from benchmarks import sqla

    twins = sqla.Twins(fresh_db)
    try:
        _verify_all(fresh_db, twins)
    finally:
        twins.close()


def test_a_differing_twin_is_caught() -> None:
    case = Case("demo", {"library": lambda: {"a": 1}, "raw": lambda: {"a": 2}}, 1)
    with pytest.raises(AssertionError, match="library and raw results differ"):
        case.verify()


@postgres_only
def test_keyset_walk_and_offset_page_agree(fresh_db: str) -> None:
    conn = bench.pg_connect(fresh_db)
    try:
        result = pages.run_pages(conn, None, repetitions=1, page=5)
    finally:
        conn.close()
    assert result["rows_deep"] == 200 and result["user_todos"] == 300
    assert result["page_5"]["offset_us"] > 0 and "library_ratio" in result


def test_claim_run_drains_the_queue_once(fresh_db: str) -> None:
    for _ in range(3):
        make_user()
    result = claim.run_claim(fresh_db, 300, workers=2)
    assert result["ok"] and result["deliveries"] == 300
    assert sum(result["per_worker"]) == 300
    sent = NotificationDelivery.select().where(NotificationDelivery.status == "sent").count()
    assert sent == 300
