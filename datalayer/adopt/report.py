"""What ``datalayer adopt`` found, planned and did: the report and the progress hooks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class StepResult:
    label: str
    seconds: float
    rows: int | None = None


class Progress(Protocol):
    def start(self, label: str) -> None: ...

    def done(self, result: StepResult) -> None: ...


@dataclass
class AdoptReport:
    """What adopt found, planned and did (or, with ``dry_run``, would do)."""

    found: str
    variant: str  # "full", "first" or "adopted"
    dry_run: bool = False
    migrations: list[str] = field(default_factory=list)  # recorded as applied
    pending: list[str] = field(default_factory=list)  # when already adopted
    steps: list[StepResult] = field(default_factory=list)
    fixes: list[tuple[str, str, int]] = field(default_factory=list)  # table, rule, rows
    rows_before: dict[str, int] = field(default_factory=dict)  # original tables
    rows_after: dict[str, int] = field(default_factory=dict)  # target tables
    notes: dict[str, list[str]] = field(default_factory=dict)  # per table conversions
    defaulted: dict[str, list[str]] = field(default_factory=dict)
    created_empty: list[str] = field(default_factory=list)
    dropped_empty: list[str] = field(default_factory=list)
    other_tables: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def already_adopted(self) -> bool:
        return self.variant == "adopted"

    @property
    def folded(self) -> int:
        """Delivery log rows folded away (the only rows that do not survive as rows)."""
        return sum(n for table, _, n in self.fixes if table == "notification_deliveries")
