"""Read a SQLite schema from ``sqlite_master`` and the pragmas, in the server's words.

Columns (type, NOT NULL, DEFAULT), primary keys, foreign keys with their actions and
indexes come from the pragmas; CHECKs, which no pragma lists, are read off the CREATE
TABLE text SQLite stores; partial and expression indexes and triggers from their
stored text. Quotes around plain identifiers and whitespace are normalised away, so
``"title"`` and ``title`` read the same.
"""

from __future__ import annotations

import re
from typing import Any

from datalayer.evolve.catalog_form import (
    IGNORED_TABLES,
    Column,
    ForeignKey,
    TableCatalog,
    squeeze,
)

__all__ = ["read_sqlite", "split_items"]

_QUOTED = re.compile(r'"([A-Za-z_][A-Za-z0-9_]*)"|`([A-Za-z_][A-Za-z0-9_]*)`'
                     r"|\[([A-Za-z_][A-Za-z0-9_]*)\]")
_CHECK = re.compile(r"(?:CONSTRAINT\s+(\S+)\s+)?\bCHECK\s*\(", re.IGNORECASE)
_TABLE_CLAUSE = re.compile(r"(CONSTRAINT\s+\S+\s+)?(PRIMARY\s+KEY|UNIQUE|FOREIGN\s+KEY)\b",
                           re.IGNORECASE)


def normal(text: str) -> str:
    """Return SQL text with plain identifiers unquoted and whitespace squeezed."""
    return squeeze(_QUOTED.sub(lambda m: m.group(1) or m.group(2) or m.group(3), text))


def _pragma(database: Any, pragma: str, name: str) -> list[tuple[Any, ...]]:
    quoted = '"' + name.replace('"', '""') + '"'
    return list(database.execute_sql(f"PRAGMA {pragma}({quoted})").fetchall())


def read_sqlite(database: Any) -> dict[str, TableCatalog]:
    """Return every table of a SQLite database but its own and peewee_migrate's."""
    master = database.execute_sql(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
    ).fetchall()
    tables = {name: _table(database, name, sql) for kind, name, _, sql in master
              if kind == "table" and name not in IGNORED_TABLES}
    index_sql = {name: sql for kind, name, _, sql in master if kind == "index" and sql}
    for name, table in tables.items():
        for _, index, unique, _, _ in _pragma(database, "index_list", name):
            table.indexes[index] = _index(database, index, bool(unique), index_sql.get(index))
    for kind, name, table_name, sql in master:
        if kind == "trigger" and table_name in tables:
            tables[table_name].triggers[name] = normal(sql)
    return tables


def _table(database: Any, name: str, sql: str) -> TableCatalog:
    table = TableCatalog()
    keyed = []
    for _, column, kind, not_null, default, pk, _ in _pragma(database, "table_xinfo", name):
        table.columns[column] = Column(squeeze(kind.upper()), bool(not_null),
                                       squeeze(default) if default is not None else None)
        if pk:
            keyed.append((pk, column))
    table.primary_key = tuple(column for _, column in sorted(keyed))
    table.checks = _checks(sql)
    grouped: dict[int, list[tuple[Any, ...]]] = {}
    for row in _pragma(database, "foreign_key_list", name):
        grouped.setdefault(row[0], []).append(row)
    for rows in grouped.values():
        rows.sort(key=lambda r: r[1])
        parent = rows[0][2]
        to = tuple(r[4] for r in rows) if all(r[4] for r in rows) else _primary_key(database,
                                                                                     parent)
        key = ForeignKey(tuple(r[3] for r in rows), parent, to, rows[0][6], rows[0][5])
        table.foreign_keys[key.columns] = key
    return table


def _primary_key(database: Any, table: str) -> tuple[str, ...]:
    keyed = sorted((row[5], row[1]) for row in _pragma(database, "table_xinfo", table) if row[5])
    return tuple(column for _, column in keyed)


def _checks(sql: str) -> dict[str, str]:
    """Return the CHECKs of a CREATE TABLE text: name (or, unnamed, expression) -> expression."""
    _, _, rest = sql.partition("(")
    body = rest[:rest.rindex(")")]
    checks: dict[str, str] = {}
    for item in split_items(body):
        stripped = item.strip()
        if _TABLE_CLAUSE.match(stripped):
            continue
        for match in _CHECK.finditer(stripped):
            if _inside_quotes(stripped, match.start()):
                continue
            expression = normal(_parenthesised(stripped, match.end()))
            label = match.group(1)
            checks[label.strip('"`[]') if label else expression] = expression
    return checks


def _inside_quotes(text: str, position: int) -> bool:
    return text[:position].count("'") % 2 == 1


def _parenthesised(text: str, start: int) -> str:
    """Return the text from ``start`` up to the parenthesis that closes the one before it."""
    depth, quote, i = 1, "", start
    while i < len(text):
        char = text[i]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return text[start:i]
        i += 1
    return text[start:]


def split_items(body: str) -> list[str]:
    """Split a CREATE TABLE body on its top-level commas (not inside () or quotes)."""
    items, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(body):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"`[":
            quote = "]" if char == "[" else char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            items.append(body[start:i])
            start = i + 1
    return [*items, body[start:]]


def _index(database: Any, name: str, unique: bool, sql: str | None) -> str:
    """Return an index's normal form: ``[UNIQUE ](keys)[ WHERE predicate]``."""
    prefix = "UNIQUE " if unique else ""
    if sql is None:  # made by a UNIQUE / PRIMARY KEY clause: no text of its own
        columns = [row[2] for row in _pragma(database, "index_xinfo", name) if row[5]]
        return f"{prefix}({', '.join(columns)})"
    match = re.search(r"\bON\s+(?:\"[^\"]+\"|`[^`]+`|\[[^\]]+\]|\S+?)\s*\(", sql, re.IGNORECASE)
    if match is None:
        return prefix + normal(sql)
    keys = _parenthesised(sql, match.end())
    rest = sql[match.end() + len(keys) + 1:].strip()
    where = re.sub(r"^WHERE\s+", "", rest, flags=re.IGNORECASE)
    return f"{prefix}({normal(keys)})" + (f" WHERE {normal(where)}" if where else "")
