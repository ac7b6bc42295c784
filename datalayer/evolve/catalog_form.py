"""The normal form both catalog readers produce: what ``datalayer check`` compares."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["IGNORED_TABLES", "Column", "ForeignKey", "TableCatalog", "squeeze"]

# peewee_migrate's own bookkeeping table.
IGNORED_TABLES = frozenset({"migratehistory"})


@dataclass(frozen=True)
class Column:
    """A column: its type (with length or precision), NULL-ability and server DEFAULT."""

    type: str
    not_null: bool
    default: str | None


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key, without its name (the same key may be named differently)."""

    columns: tuple[str, ...]
    table: str
    to: tuple[str, ...]
    on_delete: str
    on_update: str

    def describe(self) -> str:
        """Return the key as DDL (``REFERENCES t (c) ON DELETE … ON UPDATE …``)."""
        return (f"REFERENCES {self.table} ({', '.join(self.to)}) "
                f"ON DELETE {self.on_delete} ON UPDATE {self.on_update}")


@dataclass
class TableCatalog:
    """What the server says about one table."""

    columns: dict[str, Column] = field(default_factory=dict)
    primary_key: tuple[str, ...] = ()
    checks: dict[str, str] = field(default_factory=dict)  # name (or expression) -> expression
    constraints: dict[str, str] = field(default_factory=dict)  # UNIQUE / EXCLUDE: name -> DDL
    foreign_keys: dict[tuple[str, ...], ForeignKey] = field(default_factory=dict)
    indexes: dict[str, str] = field(default_factory=dict)  # name -> normal form
    triggers: dict[str, str] = field(default_factory=dict)  # name -> definition


def squeeze(text: str) -> str:
    """Return SQL text with its whitespace normalised (one space; none inside parens)."""
    text = re.sub(r"\s+", " ", text).strip()
    return text.replace("( ", "(").replace(" )", ")")
