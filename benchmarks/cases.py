"""Benchmark cases: one operation run through several sides, checked equal, timed interleaved."""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable
from typing import Any

CHUNKS = 10  # a sample's calls alternate between the sides in this many chunks

TARGETS = {
    "get_by_id": 1.5,
    "list_50": 1.5,
    "list_1000": 2.0,
    "insert_one": 1.5,
    "update_one": 1.3,
    "bulk_10000": 1.3,
    "sqlite_get_by_id": 2.0,
    "sqlite_list_50": 2.0,
    "sqlite_list_1000": 2.0,
    "list_50_deep": 1.5,
}


class Case:
    """One operation: the library call, its raw twin (the reference), optional other twins.

    ``sides`` maps a side's name ("library", "raw", "sqlalchemy", …) to a call; ``calls``
    calls make one sample. ``compare`` normalizes results before the equality check
    (e.g. drops generated ids); ``check`` replaces the plain calls for that check.
    """

    def __init__(
        self,
        name: str,
        sides: dict[str, Callable[[], Any]],
        calls: int,
        compare: Callable[[Any], Any] = lambda x: x,
        check: Callable[[], dict[str, Any]] | None = None,
        every: int = 1,
    ) -> None:
        if "raw" not in sides:
            raise ValueError("a case needs its raw twin")
        self.name, self.sides, self.calls, self.compare = name, sides, calls, compare
        self.every = every  # sample on every n-th round only (slow cases)
        self.check = check or (lambda: {side: fn() for side, fn in self.sides.items()})
        self.samples: dict[str, list[float]] = {side: [] for side in sides}
        self._orders = list(itertools.permutations(sides))

    def verify(self) -> None:
        """Assert once, before timing, that every side returns the raw twin's DTOs."""
        results = self.check()
        expected = self.compare(results["raw"])
        for side, result in results.items():
            got = self.compare(result)
            if got != expected:
                raise AssertionError(
                    f"{self.name}: {side} and raw results differ:\n{got!r}\n!=\n{expected!r}"
                )

    def sample(self, rep: int) -> None:
        """Time one sample of each side: ``calls`` calls each, in up to ``CHUNKS`` chunks
        that alternate between the sides (in an order that changes with ``rep`` and the
        chunk), so that every side's sample meets the same machine load."""
        if rep % self.every:
            return
        chunk = max(1, self.calls // CHUNKS)
        spent = dict.fromkeys(self.sides, 0.0)
        done = turn = 0
        while done < self.calls:
            n = min(chunk, self.calls - done)
            turn += 1
            for side in self._orders[(rep // self.every + turn) % len(self._orders)]:
                fn = self.sides[side]
                started = time.perf_counter()
                for _ in range(n):
                    fn()
                spent[side] += time.perf_counter() - started
            done += n
        for side, seconds in spent.items():
            self.samples[side].append(seconds / self.calls * 1e6)

    def medians(self) -> dict[str, float]:
        return {side: statistics.median(us) for side, us in self.samples.items() if us}

    def result(self) -> dict[str, Any]:
        """Medians (µs per call), the library's ratio to raw, and SQLAlchemy's if measured."""
        m = self.medians()
        out: dict[str, Any] = {f"{side}_us": round(us, 1) for side, us in m.items()}
        out["samples"] = len(self.samples["raw"])
        if "library" in m:
            out["ratio"] = round(m["library"] / m["raw"], 3)
            # The median of each round's own ratio: steadier when the machine's load drifts.
            out["paired_ratio"] = round(
                statistics.median(
                    lib / raw
                    for lib, raw in zip(self.samples["library"], self.samples["raw"], strict=True)
                ),
                3,
            )
        if "sqlalchemy" in m:
            out["sqlalchemy_ratio"] = round(m["sqlalchemy"] / m["raw"], 3)
            if "library" in m:
                out["beats_sqlalchemy"] = m["library"] < m["sqlalchemy"]
        if self.name in TARGETS:
            out["target"] = TARGETS[self.name]
            out["meets_target"] = out.get("ratio", 0) <= TARGETS[self.name]
        return out


def run(cases: list[Case], repetitions: int) -> None:
    """Check every case, then time them all, ``repetitions`` rounds, cases interleaved."""
    for case in cases:
        case.verify()
    for rep in range(repetitions):
        for case in cases:
            case.sample(rep)
