"""Read a PostgreSQL schema from the server's catalog, in its own words.

``format_type``, ``pg_get_expr``, ``pg_get_constraintdef``, ``pg_get_indexdef``,
``pg_get_triggerdef`` and ``pg_get_functiondef``: the server normalises every
expression, so two schemas built from the same DDL read the same.
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

__all__ = ["read_postgres"]

_PG_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL",
               "d": "SET DEFAULT"}

_PG_TABLES = """
    SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = %s AND c.relkind IN ('r', 'p')"""
_PG_COLUMNS = """
    SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
           pg_get_expr(d.adbin, d.adrelid)
    FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = ANY(%s::oid[]) AND a.attnum > 0 AND NOT a.attisdropped"""
_PG_CONSTRAINTS = """
    SELECT k.conrelid, k.conname, k.contype, pg_get_constraintdef(k.oid, true),
           ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY u(n, i)
                 JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i),
           f.relname,
           ARRAY(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY u(n, i)
                 JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i),
           k.confdeltype, k.confupdtype
    FROM pg_constraint k LEFT JOIN pg_class f ON f.oid = k.confrelid
    WHERE k.conrelid = ANY(%s::oid[]) AND k.contype IN ('c', 'f', 'p', 'u', 'x')"""
_PG_INDEXES = """
    SELECT i.indrelid, c.relname, i.indisunique, pg_get_indexdef(i.indexrelid)
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE i.indrelid = ANY(%s::oid[])"""
# What pg_get_indexdef says before the method: the index's and the table's names.
_INDEX_HEAD = re.compile(r"^CREATE (?:UNIQUE )?INDEX .*? ON (?:ONLY )?\S+ USING ")
_PG_TRIGGERS = """
    SELECT t.tgrelid, t.tgname, pg_get_triggerdef(t.oid, true), pg_get_functiondef(t.tgfoid)
    FROM pg_trigger t WHERE t.tgrelid = ANY(%s::oid[]) AND NOT t.tgisinternal"""


def _rows(database: Any, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return list(database.execute_sql(sql, params).fetchall())


def read_postgres(database: Any, schema: str | None) -> dict[str, TableCatalog]:
    if schema is None:
        schema = _rows(database, "SELECT current_schema()")[0][0]
    names = {oid: name for oid, name in _rows(database, _PG_TABLES, schema)
             if name not in IGNORED_TABLES}
    tables = {oid: TableCatalog() for oid in names}
    oids = list(names)
    # Objects of this schema print qualified when the schema is not first on the path.
    unqualify = re.compile(r'(?<![\w"])(?:' + re.escape(schema) + r'|"'
                           + re.escape(schema.replace('"', '""')) + r'")\.')
    for oid, column, kind, not_null, default in _rows(database, _PG_COLUMNS, oids):
        tables[oid].columns[column] = Column(kind, bool(not_null), default)
    for row in _rows(database, _PG_CONSTRAINTS, oids):
        _pg_constraint(tables[row[0]], row, unqualify)
    for oid, name, unique, definition in _rows(database, _PG_INDEXES, oids):
        # "btree (a, b DESC) WHERE (…)": method, keys with their order and operator
        # classes, INCLUDE columns and predicate, as the server prints them.
        form = _INDEX_HEAD.sub("", unqualify.sub("", definition))
        tables[oid].indexes[name] = ("UNIQUE " if unique else "") + form
    for oid, name, definition, function in _rows(database, _PG_TRIGGERS, oids):
        text = unqualify.sub("", definition) + "\n" + unqualify.sub("", function.strip())
        tables[oid].triggers[name] = text
    return {names[oid]: table for oid, table in tables.items()}


def _pg_constraint(table: TableCatalog, row: tuple[Any, ...], unqualify: re.Pattern[str]) -> None:
    _, name, kind, definition, columns, ref_table, ref_columns, on_delete, on_update = row
    definition = unqualify.sub("", definition)
    if kind == "c":
        table.checks[name] = squeeze(re.sub(r"^CHECK\s*", "", definition))
    elif kind == "f":
        key = ForeignKey(tuple(columns), ref_table, tuple(ref_columns),
                         _PG_ACTIONS[on_delete], _PG_ACTIONS[on_update])
        table.foreign_keys[key.columns] = key
    elif kind == "p":
        table.primary_key = tuple(columns)
    else:  # UNIQUE / EXCLUDE: their index is listed too
        table.constraints[name] = squeeze(definition)
