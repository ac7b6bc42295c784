"""Real concurrency for the race tests: threads on connections of their own, released together."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from datalayer import db


def race(worker: Callable[[int], Any], threads: int = 8) -> list[Any]:
    """Run ``worker(i)`` in ``threads`` threads released together; return results in order."""
    barrier = threading.Barrier(threads)
    results: list[Any] = [None] * threads
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = worker(i)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            db.close()

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in pool), "a worker hung"
    if errors:
        raise errors[0]
    return results
