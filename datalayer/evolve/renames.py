"""Renames: which dropped + added pairs look like a rename of a column or a table, and
the schema state seen through the renames chosen.

A rename keeps the values; a drop + add loses them. ``makemigrations`` asks about each
candidate on a terminal, or takes the answers from ``--rename`` / ``--no-rename``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from datalayer.evolve.state import FieldState, TableState

__all__ = ["RenameQuestion", "rename_candidates", "renamed_tables", "table_candidates"]


@dataclass(frozen=True)
class RenameQuestion:
    """A table lost one field and gained another of the same shape (``table`` set), or
    the schema lost one table and gained one with the same columns (``table`` None)."""

    table: str | None
    old: str
    new: str

    def __str__(self) -> str:
        return f"{self.table}.{self.old}:{self.new}" if self.table else f"{self.old}:{self.new}"


def rename_candidates(have: Mapping[str, TableState],
                      want: Mapping[str, TableState]) -> list[RenameQuestion]:
    """Return the (table, old, new) field pairs that look like renames."""
    questions = []
    for table, target in want.items():
        source = have.get(table)
        if source is None:
            continue
        gone = [f for n, f in source.fields.items() if n not in target.fields]
        new = [f for n, f in target.fields.items() if n not in source.fields]
        for old in gone:
            for candidate in new:
                if old.column != candidate.column and _compatible(old, candidate):
                    questions.append(RenameQuestion(table, old.name, candidate.name))
    return questions


def _compatible(a: FieldState, b: FieldState) -> bool:
    return a.type_pg == b.type_pg and a.fk is None and b.fk is None


def table_candidates(have: Mapping[str, TableState],
                     want: Mapping[str, TableState]) -> list[RenameQuestion]:
    """Return the (old, new) tables that look like renames: the same column names."""
    gone = [t for t in have.values() if t.name not in want]
    new = [t for t in want.values() if t.name not in have]
    return [RenameQuestion(None, old.name, candidate.name) for old in gone for candidate in new
            if {f.column for f in old.fields.values()} ==
            {f.column for f in candidate.fields.values()}]


def renamed_tables(states: Mapping[str, TableState],
                   tables: Mapping[str, str]) -> dict[str, TableState]:
    """Return ``states`` as they read once ``tables`` (old -> new) are renamed: the
    tables, the indexes named after them, and the foreign keys pointing at them."""
    if not tables:
        return dict(states)
    result = {}
    for name, state in states.items():
        new = tables.get(name, name)
        fields = {n: _pointing(f, tables) for n, f in state.fields.items()}
        indexes = {}
        for index in state.indexes.values():
            if index.implicit and name != new and index.name.startswith(name + "_"):
                index = dataclasses.replace(index, name=new + index.name[len(name):])
            indexes[index.name] = index
        result[new] = dataclasses.replace(state, name=new, fields=fields, indexes=indexes)
    return result


def _pointing(state: FieldState, tables: Mapping[str, str]) -> FieldState:
    if state.fk is None or state.fk[0] not in tables:
        return state
    table, column, on_delete, on_update = state.fk
    return dataclasses.replace(state, fk=(tables[table], column, on_delete, on_update))


